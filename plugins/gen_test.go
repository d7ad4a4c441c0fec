package plugins_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedCodeIsFresh regenerates the protocol code into a temp dir and
// compares it with the committed files.
func TestGeneratedCodeIsFresh(t *testing.T) {
	if os.Getenv("PARLEY_SKIP_GEN_CHECK") == "1" {
		t.Skip("PARLEY_SKIP_GEN_CHECK=1")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command("sh", filepath.Join(root, "scripts", "gen-proto.sh"), out)
	cmd.Dir = root
	msg, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(msg), "not found") {
			t.Fatalf("cannot check generated code: %s\nrun `make deps` (protobuf-compiler, protoc-gen-go, protoc-gen-go-grpc) or set PARLEY_SKIP_GEN_CHECK=1", msg)
		}
		t.Fatalf("gen-proto.sh: %v\n%s", err, msg)
	}
	generated, err := filepath.Glob(filepath.Join(out, "plugins", "proto", "*", "v1", "*.pb.go"))
	if err != nil || len(generated) == 0 {
		t.Fatalf("nothing generated (%v)", err)
	}
	committed, _ := filepath.Glob(filepath.Join(root, "plugins", "proto", "*", "v1", "*.pb.go"))
	if len(committed) != len(generated) {
		t.Fatalf("%d committed *.pb.go files, %d generated: run make gen", len(committed), len(generated))
	}
	for _, g := range generated {
		rel, _ := filepath.Rel(out, g)
		want, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatalf("%s: %v (run make gen)", rel, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run make gen", rel)
		}
	}
}
