package partners_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/internal/sqlite"
	"github.com/parleyhq/parley/plugins/builtin/partners"
	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
)

const aud = "https://parley.example.com"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	srv     *partners.Server
	clk     *clock
	partner *partnersv1.Partner
	other   *partnersv1.Partner
	hmac    []byte
	ed      ed25519.PrivateKey
	rsa     *rsa.PrivateKey
	rsaPEM  []byte
}

func newServer(t testing.TB) (*partners.Server, *clock) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "partners.db"), partners.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	return partners.NewServer(db, clk.Now, 30*time.Second), clk
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	srv, clk := newServer(t)
	f := &fixture{srv: srv, clk: clk, hmac: []byte(strings.Repeat("k", 40))}
	for _, p := range []**partnersv1.Partner{&f.partner, &f.other} {
		res, err := srv.CreatePartner(ctx, &partnersv1.CreatePartnerRequest{FriendlyName: "Acme", AllowedOrigins: []string{"https://app.acme.test"}})
		if err != nil {
			t.Fatal(err)
		}
		*p = res.Partner
	}
	_, f.ed, _ = ed25519.GenerateKey(rand.Reader)
	rsaOnce.Do(func() { rsaKey, _ = rsa.GenerateKey(rand.Reader, 2048) })
	f.rsa = rsaKey
	edPub, _ := x509.MarshalPKIXPublicKey(f.ed.Public())
	rsaPub, _ := x509.MarshalPKIXPublicKey(&f.rsa.PublicKey)
	f.rsaPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaPub})
	for _, k := range []*partnersv1.AddKeyRequest{
		{PartnerSid: f.partner.Sid, Kid: "h1", Type: "hmac", Material: f.hmac},
		{PartnerSid: f.partner.Sid, Kid: "e1", Type: "ed25519", Material: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: edPub})},
		{PartnerSid: f.partner.Sid, Kid: "r1", Type: "rsa", Material: f.rsaPEM},
		{PartnerSid: f.partner.Sid, Kid: "old", Type: "hmac", Material: f.hmac},
	} {
		if _, err := srv.AddKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.RevokeKey(ctx, &partnersv1.RevokeKeyRequest{PartnerSid: f.partner.Sid, Kid: "old"}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) claims(sub string) jwt.MapClaims {
	now := f.clk.Now()
	return jwt.MapClaims{"iss": f.partner.Sid, "sub": sub, "aud": aud, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": sid.Secret(16)}
}

func sign(t testing.TB, m jwt.SigningMethod, kid string, c jwt.MapClaims, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyAssertion(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	acct := sid.New(sid.Account)
	mine := &partnersv1.Account{Sid: acct, Exists: true, OwnerPartnerSid: f.partner.Sid, Status: "active"}
	with := func(mod func(jwt.MapClaims)) jwt.MapClaims { c := f.claims(acct); mod(c); return c }
	replayed := sign(t, jwt.SigningMethodHS256, "h1", f.claims(acct), f.hmac)
	if r, _ := f.srv.VerifyAssertion(ctx, &partnersv1.VerifyAssertionRequest{PartnerSid: f.partner.Sid, Assertion: replayed, Audience: aud, Account: mine}); !r.Valid {
		t.Fatalf("first use refused: %s %s", r.Reason, r.Detail)
	}
	noneTok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, f.claims(acct)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	noneTokKid := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, f.claims(acct))
		tok.Header["kid"] = "h1"
		s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		return s
	}()
	tests := []struct {
		name      string
		assertion string
		account   *partnersv1.Account
		partner   string
		reason    string
	}{
		{name: "good HMAC", assertion: sign(t, jwt.SigningMethodHS256, "h1", f.claims(acct), f.hmac)},
		{name: "good Ed25519", assertion: sign(t, jwt.SigningMethodEdDSA, "e1", f.claims(acct), f.ed)},
		{name: "good RSA", assertion: sign(t, jwt.SigningMethodRS256, "r1", f.claims(acct), f.rsa)},
		{name: "good with trailing slash in aud", assertion: sign(t, jwt.SigningMethodHS256, "h1", with(func(c jwt.MapClaims) { c["aud"] = []string{aud + "/"} }), f.hmac)},
		{name: "expired", assertion: sign(t, jwt.SigningMethodHS256, "h1", with(func(c jwt.MapClaims) {
			c["iat"] = f.clk.Now().Add(-3 * time.Minute).Unix()
			c["exp"] = f.clk.Now().Add(-time.Minute).Unix()
		}), f.hmac), reason: partnersv1.ReasonExpired},
		{name: "future iat", assertion: sign(t, jwt.SigningMethodHS256, "h1", with(func(c jwt.MapClaims) {
			c["iat"] = f.clk.Now().Add(2 * time.Minute).Unix()
			c["exp"] = f.clk.Now().Add(4 * time.Minute).Unix()
		}), f.hmac), reason: partnersv1.ReasonIssuedInFuture},
		{name: "lifetime over five minutes", assertion: sign(t, jwt.SigningMethodHS256, "h1", with(func(c jwt.MapClaims) {
			c["exp"] = f.clk.Now().Add(time.Hour).Unix()
		}), f.hmac), reason: partnersv1.ReasonLifetimeTooLong},
		{name: "wrong aud", assertion: sign(t, jwt.SigningMethodHS256, "h1", with(func(c jwt.MapClaims) { c["aud"] = "https://evil.example" }), f.hmac), reason: partnersv1.ReasonWrongAudience},
		{name: "wrong kid", assertion: sign(t, jwt.SigningMethodHS256, "nope", f.claims(acct), f.hmac), reason: partnersv1.ReasonUnknownKid},
		{name: "no kid", assertion: sign(t, jwt.SigningMethodHS256, "", f.claims(acct), f.hmac), reason: partnersv1.ReasonUnknownKid},
		{name: "revoked key", assertion: sign(t, jwt.SigningMethodHS256, "old", f.claims(acct), f.hmac), reason: partnersv1.ReasonKeyRevoked},
		{name: "HS256 signed with the RSA public key as secret", assertion: sign(t, jwt.SigningMethodHS256, "r1", f.claims(acct), f.rsaPEM), reason: partnersv1.ReasonAlgNotAllowed},
		{name: "alg none", assertion: noneTok, reason: partnersv1.ReasonAlgNotAllowed},
		{name: "alg none with a kid", assertion: noneTokKid, reason: partnersv1.ReasonAlgNotAllowed},
		{name: "HS512", assertion: sign(t, jwt.SigningMethodHS512, "h1", f.claims(acct), f.hmac), reason: partnersv1.ReasonAlgNotAllowed},
		{name: "bad signature", assertion: sign(t, jwt.SigningMethodHS256, "h1", f.claims(acct), []byte(strings.Repeat("x", 40))), reason: partnersv1.ReasonBadSignature},
		{name: "Ed25519 signed by another key", assertion: func() string {
			_, other, _ := ed25519.GenerateKey(rand.Reader)
			return sign(t, jwt.SigningMethodEdDSA, "e1", f.claims(acct), other)
		}(), reason: partnersv1.ReasonBadSignature},
		{name: "replayed jti", assertion: replayed, reason: partnersv1.ReasonReplayed},
		{name: "account of another partner", assertion: sign(t, jwt.SigningMethodHS256, "h1", f.claims(acct), f.hmac),
			account: &partnersv1.Account{Sid: acct, Exists: true, OwnerPartnerSid: f.other.Sid, Status: "active"}, reason: partnersv1.ReasonAccountNotOwned},
		{name: "account of no partner", assertion: sign(t, jwt.SigningMethodHS256, "h1", f.claims(acct), f.hmac),
			account: &partnersv1.Account{Sid: acct, Exists: true, Status: "active"}, reason: partnersv1.ReasonAccountNotOwned},
		{name: "suspended account", assertion: sign(t, jwt.SigningMethodHS256, "h1", f.claims(acct), f.hmac),
			account: &partnersv1.Account{Sid: acct, Exists: true, OwnerPartnerSid: f.partner.Sid, Status: "suspended"}, reason: partnersv1.ReasonAccountInactive},
		{name: "unknown account", assertion: sign(t, jwt.SigningMethodHS256, "h1", f.claims(acct), f.hmac),
			account: &partnersv1.Account{Sid: acct}, reason: partnersv1.ReasonUnknownAccount},
		{name: "host looked up another account than sub", assertion: sign(t, jwt.SigningMethodHS256, "h1", f.claims(acct), f.hmac),
			account: &partnersv1.Account{Sid: sid.New(sid.Account), Exists: true, OwnerPartnerSid: f.partner.Sid, Status: "active"}, reason: partnersv1.ReasonUnknownAccount},
		{name: "iss of another partner", assertion: sign(t, jwt.SigningMethodHS256, "h1", with(func(c jwt.MapClaims) { c["iss"] = f.other.Sid }), f.hmac), reason: partnersv1.ReasonWrongIssuer},
		{name: "posted to another partner", assertion: sign(t, jwt.SigningMethodHS256, "h1", f.claims(acct), f.hmac), partner: f.other.Sid, reason: partnersv1.ReasonUnknownKid},
		{name: "unknown partner", assertion: sign(t, jwt.SigningMethodHS256, "h1", f.claims(acct), f.hmac), partner: sid.New(sid.Partner), reason: partnersv1.ReasonUnknownPartner},
		{name: "missing jti", assertion: sign(t, jwt.SigningMethodHS256, "h1", with(func(c jwt.MapClaims) { delete(c, "jti") }), f.hmac), reason: partnersv1.ReasonMissingClaim},
		{name: "missing exp", assertion: sign(t, jwt.SigningMethodHS256, "h1", with(func(c jwt.MapClaims) { delete(c, "exp") }), f.hmac), reason: partnersv1.ReasonMissingClaim},
		{name: "unknown feature", assertion: sign(t, jwt.SigningMethodHS256, "h1", with(func(c jwt.MapClaims) { c["features"] = []string{"billing"} }), f.hmac), reason: partnersv1.ReasonBadFeatures},
		{name: "garbage", assertion: "not.a.jwt", reason: partnersv1.ReasonMalformed},
		{name: "two parts", assertion: "eyJhbGciOiJIUzI1NiJ9.e30", reason: partnersv1.ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.account
			if a == nil {
				a = mine
			}
			p := tc.partner
			if p == "" {
				p = f.partner.Sid
			}
			r, err := f.srv.VerifyAssertion(ctx, &partnersv1.VerifyAssertionRequest{PartnerSid: p, Assertion: tc.assertion, Audience: aud, Account: a})
			if err != nil {
				t.Fatal(err)
			}
			if tc.reason == "" {
				if !r.Valid || r.AccountSid != acct || r.PartnerSid != f.partner.Sid {
					t.Fatalf("refused: %s (%s)", r.Reason, r.Detail)
				}
				return
			}
			if r.Valid || r.Reason != tc.reason {
				t.Fatalf("valid=%v reason=%q (%s), want %q", r.Valid, r.Reason, r.Detail, tc.reason)
			}
		})
	}
}

func TestFeaturesNarrowed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	acct := sid.New(sid.Account)
	c := f.claims(acct)
	c["features"] = []string{"calls", "usage"}
	r, _ := f.srv.VerifyAssertion(ctx, &partnersv1.VerifyAssertionRequest{PartnerSid: f.partner.Sid, Assertion: sign(t, jwt.SigningMethodHS256, "h1", c, f.hmac), Audience: aud,
		Account: &partnersv1.Account{Sid: acct, Exists: true, OwnerPartnerSid: f.partner.Sid, Status: "active"}})
	if !r.Valid || strings.Join(r.Features, ",") != "calls,usage" {
		t.Fatalf("features = %v (%s)", r.Features, r.Reason)
	}
}

func TestPortalTokenSingleUse(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	acct := sid.New(sid.Account)
	tok, err := f.srv.CreateSession(ctx, &partnersv1.CreateSessionRequest{PartnerSid: f.partner.Sid, AccountSid: acct, TtlMs: 120_000})
	if err != nil {
		t.Fatal(err)
	}
	if got := time.UnixMilli(tok.ExpiresUnixMs).Sub(f.clk.Now()); got > 60*time.Second {
		t.Fatalf("token lives %s, want ≤ 60s", got)
	}
	r, err := f.srv.RedeemSession(ctx, &partnersv1.RedeemSessionRequest{Token: tok.Token})
	if err != nil || !r.Valid || r.Session.AccountSid != acct || r.Session.PartnerSid != f.partner.Sid {
		t.Fatalf("redeem: %v %+v", err, r)
	}
	again, _ := f.srv.RedeemSession(ctx, &partnersv1.RedeemSessionRequest{Token: tok.Token})
	if again.Valid || again.Reason != "used" {
		t.Fatalf("second redeem: %+v", again)
	}
	if _, err := f.srv.GetSession(ctx, &partnersv1.GetSessionRequest{SessionId: r.SessionId}); err != nil {
		t.Fatal(err)
	}
	late, _ := f.srv.CreateSession(ctx, &partnersv1.CreateSessionRequest{PartnerSid: f.partner.Sid, AccountSid: acct})
	f.clk.Add(61 * time.Second)
	if r, _ := f.srv.RedeemSession(ctx, &partnersv1.RedeemSessionRequest{Token: late.Token}); r.Valid || r.Reason != "expired" {
		t.Fatalf("late redeem: %+v", r)
	}
	if r, _ := f.srv.RedeemSession(ctx, &partnersv1.RedeemSessionRequest{Token: "nope"}); r.Valid || r.Reason != "unknown" {
		t.Fatalf("unknown redeem: %+v", r)
	}
	// A suspended partner's sessions end.
	st := partnersv1.StatusSuspended
	if _, err := f.srv.UpdatePartner(ctx, &partnersv1.UpdatePartnerRequest{Sid: f.partner.Sid, Status: &st}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.GetSession(ctx, &partnersv1.GetSessionRequest{SessionId: r.SessionId}); err == nil {
		t.Fatal("session of a suspended partner still open")
	}
}

func TestPartnerValidation(t *testing.T) {
	srv, _ := newServer(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  *partnersv1.CreatePartnerRequest
		ok   bool
	}{
		{"ok", &partnersv1.CreatePartnerRequest{FriendlyName: "A", AllowedOrigins: []string{"https://a.test", "http://127.0.0.1:8080"}}, true},
		{"no name", &partnersv1.CreatePartnerRequest{}, false},
		{"origin with path", &partnersv1.CreatePartnerRequest{FriendlyName: "A", AllowedOrigins: []string{"https://a.test/x"}}, false},
		{"wildcard origin", &partnersv1.CreatePartnerRequest{FriendlyName: "A", AllowedOrigins: []string{"https://*.a.test"}}, false},
		{"CSP injection", &partnersv1.CreatePartnerRequest{FriendlyName: "A", AllowedOrigins: []string{"https://a.test; script-src *"}}, false},
		{"unknown feature", &partnersv1.CreatePartnerRequest{FriendlyName: "A", Features: []string{"billing"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := srv.CreatePartner(ctx, tc.req)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	res, _ := srv.CreatePartner(ctx, &partnersv1.CreatePartnerRequest{FriendlyName: "A"})
	for _, tc := range []struct {
		name, typ string
		material  []byte
	}{
		{"short hmac", "hmac", []byte("short")},
		{"bad pem", "rsa", []byte("nope")},
		{"unknown type", "dsa", []byte(strings.Repeat("k", 40))},
	} {
		if _, err := srv.AddKey(ctx, &partnersv1.AddKeyRequest{PartnerSid: res.Partner.Sid, Kid: "k", Type: tc.typ, Material: tc.material}); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if _, err := srv.Authenticate(ctx, &partnersv1.AuthenticateRequest{PartnerSid: res.Partner.Sid, Secret: res.ApiSecret}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Authenticate(ctx, &partnersv1.AuthenticateRequest{PartnerSid: res.Partner.Sid, Secret: "wrong"}); err == nil {
		t.Fatal("wrong secret accepted")
	}
}

func FuzzVerifyAssertion(f *testing.F) {
	fx := newFixture(f)
	acct := sid.New(sid.Account)
	f.Add(sign(f, jwt.SigningMethodHS256, "h1", fx.claims(acct), fx.hmac))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("...")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := fx.srv.VerifyAssertion(context.Background(), &partnersv1.VerifyAssertionRequest{PartnerSid: fx.partner.Sid, Assertion: s, Audience: aud,
			Account: &partnersv1.Account{Sid: acct, Exists: true, OwnerPartnerSid: fx.partner.Sid, Status: "active"}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Valid == (r.Reason != "") {
			t.Fatalf("valid=%v reason=%q", r.Valid, r.Reason)
		}
	})
}
