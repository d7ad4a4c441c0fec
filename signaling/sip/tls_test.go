package sip

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

func TestTLSFromCertFiles(t *testing.T) {
	cert, err := selfSigned("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "", func(c *Config) { c.CertFile, c.KeyFile = certFile, keyFile })
	if got := e.srv.tlsConf.Certificates[0].Certificate[0]; string(got) != string(cert.Certificate[0]) {
		t.Fatal("server did not load the configured certificate")
	}
	for _, tp := range []string{"tls", "wss"} {
		c := e.newClient(tp)
		if res := c.register("alice", testPassword, []string{"<sip:alice@x.invalid;transport=" + tp + ">"}); res.StatusCode != 200 {
			t.Fatalf("%s: %d", tp, res.StatusCode)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := map[string]func(*Config){
		"min above max":     func(c *Config) { c.MinExpires, c.MaxExpires = 600, 60 },
		"cert without key":  func(c *Config) { c.CertFile = "x.pem" },
		"bad algorithm":     func(c *Config) { c.DigestAlgorithms = []string{"SHA-1"} },
		"quote in realm":    func(c *Config) { c.Realm = `a"b` },
		"no listener":       func(c *Config) { c.UDP, c.TCP, c.TLS, c.WS, c.WSS = "", "", "", "", "" },
		"sub min above max": func(c *Config) { c.MinSubscribeExpires, c.MaxSubscribeExpires = 900, 60 },
	}
	for name, mutate := range tests {
		cfg := DefaultConfig()
		mutate(&cfg)
		if _, err := cfg.withDefaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if s, err := New(DefaultConfig(), Deps{}); err == nil || s != nil {
		t.Fatal("New accepted missing dependencies")
	}
}
