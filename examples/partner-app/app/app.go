// Package app is the example partner web app: a partner's own customer
// dashboard that embeds the Parley account portal. It signs partner
// assertions (Ed25519 here; HMAC-SHA256 and RSA work the same way) and
// exchanges them for single-use portal URLs on the partner's backend, so
// neither the partner's API secret nor its signing key ever reach the browser.
package app

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Config is what a partner knows: where Parley is, its partner credentials
// and signing key, and (here, fixed) which Parley account the signed-in
// customer has.
type Config struct {
	// ParleyURL is Parley's public URL: the assertion's audience, where the
	// backend asks for portal URLs and where the browser loads the embed snippet.
	ParleyURL  string
	PartnerSid string
	APISecret  string
	// Kid names SigningKey among the partner's keys registered in Parley.
	Kid        string
	SigningKey ed25519.PrivateKey
	// AccountSid is the signed-in customer's Parley account. A real app
	// looks it up from its own session.
	AccountSid   string
	CustomerName string
	// Features, when set, narrows the portal to these features.
	Features []string
	// HTTPClient defaults to one with a 10 s timeout.
	HTTPClient *http.Client
}

// Handler serves the dashboard page and POST /parley/portal-url.
func Handler(cfg Config) http.Handler {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	cfg.ParleyURL = strings.TrimRight(cfg.ParleyURL, "/")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, map[string]string{"Parley": cfg.ParleyURL, "Customer": cfg.CustomerName})
	})
	mux.HandleFunc("POST /parley/portal-url", func(w http.ResponseWriter, r *http.Request) {
		// A real app checks its own session (and a CSRF token) here.
		u, err := PortalURL(cfg)
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"url": u})
	})
	return mux
}

// Assertion signs a partner assertion for the account: iss = partner,
// sub = account, aud = Parley's URL, two minutes of validity, a fresh jti.
func Assertion(cfg Config, now time.Time) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("jti: %w", err)
	}
	claims := jwt.MapClaims{
		"iss": cfg.PartnerSid, "sub": cfg.AccountSid, "aud": cfg.ParleyURL,
		"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": hex.EncodeToString(jti[:]),
	}
	if len(cfg.Features) > 0 {
		claims["features"] = cfg.Features
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = cfg.Kid
	s, err := tok.SignedString(cfg.SigningKey)
	if err != nil {
		return "", fmt.Errorf("sign assertion: %w", err)
	}
	return s, nil
}

// PortalURL signs an assertion and exchanges it for a single-use portal URL.
func PortalURL(cfg Config) (string, error) {
	a, err := Assertion(cfg, time.Now())
	if err != nil {
		return "", err
	}
	req, err := http.NewRequest(http.MethodPost, cfg.ParleyURL+"/v1/Partners/"+url.PathEscape(cfg.PartnerSid)+"/PortalSessions",
		bytes.NewBufferString(url.Values{"Assertion": {a}}.Encode()))
	if err != nil {
		return "", fmt.Errorf("portal session request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(cfg.PartnerSid, cfg.APISecret)
	client := cfg.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("portal session: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("portal session: %s: %s", res.Status, body)
	}
	var out struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.URL == "" {
		return "", fmt.Errorf("portal session: unexpected answer %s", body)
	}
	return out.URL, nil
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme Cloud — Phone system</title>
<style>
  body { margin: 0; font: 14px/1.5 system-ui, sans-serif; background: #eef1f5; color: #1d2433; }
  .bar { background: #0f172a; color: #fff; padding: 14px 28px; display: flex; align-items: center; gap: 28px; }
  .bar b { font-size: 16px; letter-spacing: .02em; }
  .bar a { color: #cbd5e1; text-decoration: none; font-size: 13px; }
  .bar a.on { color: #fff; }
  .bar .me { margin-left: auto; color: #cbd5e1; font-size: 13px; }
  .wrap { max-width: 1100px; margin: 24px auto; padding: 0 24px; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  p.lead { margin: 0 0 18px; color: #5b6475; }
  .card { background: #fff; border-radius: 14px; box-shadow: 0 1px 3px rgba(0,0,0,.08); overflow: hidden; }
</style>
</head>
<body>
<div class="bar"><b>Acme Cloud</b><a href="#">Overview</a><a class="on" href="#">Phone system</a><a href="#">Billing</a><span class="me">{{.Customer}}</span></div>
<div class="wrap">
  <h1>Phone system</h1>
  <p class="lead">Your phones, calls and usage, live.</p>
  <div class="card" id="parley-portal"></div>
</div>
<script src="{{.Parley}}/embed/parley-embed.js"></script>
<script>
  window.portal = ParleyEmbed.mount(document.getElementById("parley-portal"), {
    fetchPortalUrl: async () => {
      const res = await fetch("/parley/portal-url", { method: "POST" });
      if (!res.ok) throw new Error("could not open the portal");
      return (await res.json()).url;
    },
    onError: (err) => console.error("portal:", err),
  });
</script>
</body>
</html>
`))
