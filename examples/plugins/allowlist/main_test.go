package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/plugins"
)

// TestLoadedThroughCatalog builds this example, installs it in a plugin
// directory pinned by its sha256, and admits through it via the host's
// admission client.
func TestLoadedThroughCatalog(t *testing.T) {
	dir := t.TempDir()
	pdir := filepath.Join(dir, "plugins")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(pdir, "allowlist")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	allowed, other := "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	if err := os.WriteFile(bin+".txt", []byte("# accounts admitted\n"+allowed+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := plugins.HashFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	cfg := plugins.DefaultConfig()
	cfg.Dir = pdir
	cfg.External = []plugins.External{{Name: "allowlist", Kind: "admission", File: "allowlist", SHA256: sum}}
	cfg.Use = map[string]string{"admission": "allowlist"}
	cat, err := plugins.NewCatalog(cfg, nil, plugins.Command{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := plugins.NewSupervisor(cfg, cat, plugins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sup.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st := sup.Status()
	if len(st) != 1 || st[0].Version != "0.1.0" || st[0].Builtin || st[0].State != plugins.StateRunning {
		t.Fatalf("status = %+v", st)
	}
	acfg := admission.DefaultConfig()
	acfg.Holder = "test"
	client, err := admission.NewClient(sup, acfg, admission.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	client.Start(ctx)
	defer client.Close(ctx)

	tests := []struct {
		account string
		allow   bool
	}{
		{allowed, true},
		{other, false},
	}
	for _, tc := range tests {
		for _, r := range []admission.Resource{admission.ResourceAPI, admission.ResourceCalls, admission.ResourceCallsCPS} {
			for i := range 40 { // beyond one leased block
				rel, err := client.Acquire(ctx, tc.account, r)
				var d *admission.Denial
				switch {
				case tc.allow && err != nil:
					t.Fatalf("%s %s #%d: %v", tc.account, r, i, err)
				case !tc.allow && (!errors.As(err, &d) || d.Limit != 0 || d.Unavailable):
					t.Fatalf("%s %s: got %v, want a denial with limit 0", tc.account, r, err)
				case tc.allow:
					defer rel()
				}
			}
		}
	}
	// A binary that no longer matches its pin is refused on the next start.
	if err := os.Remove(bin); err != nil { // unlink: the running one keeps its inode
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sup2, err := plugins.NewSupervisor(cfg, cat, plugins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sup2.Close()
	if err := sup2.Start(ctx); err == nil {
		t.Fatal("tampered plugin started")
	}
}
