package app

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestAssertion(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	cfg := Config{ParleyURL: "https://parley.example", PartnerSid: "PN1", AccountSid: "AC1", Kid: "k1", SigningKey: priv, Features: []string{"calls"}}
	now := time.Now()
	a, err := Assertion(cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Assertion(cfg, now)
	var c jwt.MapClaims
	tok, err := jwt.NewParser(jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithAudience("https://parley.example"), jwt.WithIssuer("PN1"), jwt.WithSubject("AC1")).
		ParseWithClaims(a, &c, func(*jwt.Token) (any, error) { return pub, nil })
	if err != nil {
		t.Fatal(err)
	}
	exp, _ := c.GetExpirationTime()
	iat, _ := c.GetIssuedAt()
	var other jwt.MapClaims
	_, _, _ = jwt.NewParser().ParseUnverified(b, &other)
	switch {
	case tok.Header["kid"] != "k1":
		t.Errorf("kid %v", tok.Header["kid"])
	case exp.Sub(iat.Time) > 5*time.Minute:
		t.Errorf("lifetime %s", exp.Sub(iat.Time))
	case c["jti"] == "" || c["jti"] == other["jti"]:
		t.Errorf("jti %v and %v", c["jti"], other["jti"])
	}
}
