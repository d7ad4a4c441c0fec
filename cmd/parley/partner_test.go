package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPartnerCLI(t *testing.T) {
	dir := t.TempDir()
	p := runJSON(t, dir, "partner", "create", "--name", "Acme", "--origin", "https://app.acme.test", "--origin", "http://127.0.0.1:3000", "--feature", "presence", "--feature", "calls")
	sid, _ := p["sid"].(string)
	if !strings.HasPrefix(sid, "PN") || p["api_secret"] == "" || len(p["allowed_origins"].([]any)) != 2 || len(p["features"].([]any)) != 2 {
		t.Fatalf("create: %v", p)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(priv.Public())
	pub := filepath.Join(dir, "k.pub")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if k := runJSON(t, dir, "partner", "key", "add", sid, "--kid", "k1", "--type", "ed25519", "--public-key-file", pub); k["kid"] != "k1" {
		t.Fatalf("key add: %v", k)
	}
	if k := runJSON(t, dir, "partner", "key", "add", sid, "--kid", "h1", "--type", "hmac"); len(k["secret"].(string)) < 32 {
		t.Fatalf("hmac key add: %v", k)
	}
	if k := runJSON(t, dir, "partner", "key", "revoke", sid, "h1"); k["revoked"] != true {
		t.Fatalf("revoke: %v", k)
	}
	if u := runJSON(t, dir, "partner", "update", sid, "--status", "suspended"); u["status"] != "suspended" || len(u["keys"].([]any)) != 2 {
		t.Fatalf("update: %v", u)
	}
	if out := run(t, dir, "partner", "list"); !strings.Contains(out, sid) || !strings.Contains(out, "suspended") {
		t.Fatalf("list: %s", out)
	}
	// Bad input is refused with a message.
	var stderr bytes.Buffer
	cmd := parleyCmd(dir, "partner", "create", "--name", "Bad", "--origin", "https://x.test/path")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "not an origin") {
		t.Fatalf("bad origin accepted: %v %s", err, stderr.String())
	}
}

// Beside a running server, `parley partner` goes through the server's
// partners plugin (its control socket), so the server sees the change at
// once whatever plugin serves partners; when the server has partner
// delegation disabled, the command starts the plugin itself.
func TestPartnerCLIBesideServer(t *testing.T) {
	const operator = "operator-token-for-the-cli-test"
	for _, tc := range []struct {
		name, yaml string
		enabled    bool
	}{
		{"server runs partners", "", true},
		{"server has partners disabled", "plugins:\n  use:\n    partners: \"\"\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("PARLEY_PARTNERS_OPERATOR_TOKEN", operator)
			if tc.yaml != "" {
				file := filepath.Join(dir, "parley.yaml")
				if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
				t.Setenv("PARLEY_CONFIG", file)
			}
			srv := startServer(t, dir)
			p := runJSON(t, dir, "partner", "create", "--name", "Acme", "--origin", "https://app.acme.test")
			sid, _ := p["sid"].(string)
			if !strings.HasPrefix(sid, "PN") || p["api_secret"] == "" {
				t.Fatalf("create: %v", p)
			}
			if out := run(t, dir, "partner", "list"); !strings.Contains(out, sid) {
				t.Fatalf("list: %s", out)
			}
			if tc.enabled {
				if code, body := get(t, srv.base+"/v1/Partners/"+sid, "operator", operator); code != 200 || !strings.Contains(body, `"friendly_name":"Acme"`) {
					t.Fatalf("the server does not see the partner: %d %s", code, body)
				}
			}
			var stderr bytes.Buffer
			cmd := parleyCmd(dir, "partner", "create", "--name", "Bad", "--origin", "https://x.test/path")
			cmd.Stderr = &stderr
			if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "not an origin") {
				t.Fatalf("bad origin accepted: %v %s", err, stderr.String())
			}
		})
	}
}
