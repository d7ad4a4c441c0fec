// Command partner-app is a tiny partner web app that embeds the Parley
// account portal: the thing a partner copies. See README.md.
package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleyhq/parley/examples/partner-app/app"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	env := func(k string) (string, error) {
		if v := os.Getenv(k); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("%s is required (see README.md)", k)
	}
	var cfg app.Config
	var keyFile, addr string
	var err error
	for _, v := range []struct {
		name string
		dst  *string
	}{{"PARLEY_URL", &cfg.ParleyURL}, {"PARTNER_SID", &cfg.PartnerSid}, {"PARTNER_SECRET", &cfg.APISecret},
		{"PARTNER_KID", &cfg.Kid}, {"PARTNER_KEY_FILE", &keyFile}, {"ACCOUNT_SID", &cfg.AccountSid}} {
		if *v.dst, err = env(v.name); err != nil {
			return err
		}
	}
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	k, err := jwt.ParseEdPrivateKeyFromPEM(raw)
	if err != nil {
		return fmt.Errorf("signing key %s: %w", keyFile, err)
	}
	var ok bool
	if cfg.SigningKey, ok = k.(ed25519.PrivateKey); !ok {
		return errors.New("signing key: not an Ed25519 private key")
	}
	cfg.CustomerName = os.Getenv("CUSTOMER_NAME")
	if addr = os.Getenv("ADDR"); addr == "" {
		addr = "127.0.0.1:3000"
	}
	log.Printf("partner app on http://%s (portal from %s)", addr, cfg.ParleyURL)
	srv := &http.Server{Addr: addr, Handler: app.Handler(cfg), ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}
