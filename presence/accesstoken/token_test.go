package accesstoken

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	twjwt "github.com/twilio/twilio-go/client/jwt"
)

const (
	acct   = "AC0123456789abcdef0123456789abcdef"
	keySid = "SK0123456789abcdef0123456789abcdef"
	secret = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-0000"
	app    = "AP0123456789abcdef0123456789abcdef"
)

// keyTable is a map-backed Keys for unit tests of the verifier logic; the
// SQLite-backed implementation is tested in store and end to end.
type keyTable map[string]SigningKey

func (k keyTable) SigningKey(_ context.Context, sid string) (SigningKey, error) {
	if key, ok := k[sid]; ok {
		return key, nil
	}
	return SigningKey{}, fmt.Errorf("%w: %s", ErrUnknownKey, sid)
}

func keys() keyTable {
	return keyTable{keySid: {Sid: keySid, AccountSid: acct, Secret: secret, AccountActive: true}}
}

func twilioToken(t *testing.T, identity string, ttl float64) string {
	t.Helper()
	tok := twjwt.CreateAccessToken(twjwt.AccessTokenParams{
		AccountSid: acct, SigningKeySid: keySid, Secret: secret, Identity: identity, Ttl: ttl,
	})
	tok.AddGrant(&twjwt.VoiceGrant{
		Incoming: twjwt.Incoming{Allow: true},
		Outgoing: twjwt.Outgoing{ApplicationSid: app, ApplicationParams: map[string]any{"lang": "en"}},
	})
	s, err := tok.ToJwt()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTwilioGoMintsParleyVerifies: a token from the well-known helper library
// verifies unchanged, with its grants.
func TestTwilioGoMintsParleyVerifies(t *testing.T) {
	v := &Verifier{Keys: keys()}
	c, err := v.Verify(context.Background(), twilioToken(t, "alice", 3600))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Grants.Identity != "alice" || !c.Grants.IncomingAllowed() || c.Grants.OutgoingApplication() != app {
		t.Fatalf("grants = %+v", c.Grants)
	}
	if c.AccountSid != acct || c.KeySid != keySid || !strings.HasPrefix(c.ID, keySid+"-") {
		t.Fatalf("claims = %+v", c)
	}
	if got := c.Grants.Voice.Outgoing.Params["lang"]; got != "en" {
		t.Fatalf("params = %v", c.Grants.Voice.Outgoing.Params)
	}
}

// TestParleyMintsTwilioGoVerifies: the helper library decodes and verifies our
// tokens, and for the same inputs in the same second both produce the same bytes.
func TestParleyMintsTwilioGoVerifies(t *testing.T) {
	for attempt := 0; attempt < 3; attempt++ {
		before := time.Now().Unix()
		ours, err := Mint(MintParams{AccountSid: acct, KeySid: keySid, Secret: secret, Identity: "alice",
			Incoming: true, OutgoingApp: app, OutgoingParams: map[string]any{"lang": "en"}, TTL: time.Hour, Now: time.Unix(before, 0)})
		if err != nil {
			t.Fatal(err)
		}
		theirs := twilioToken(t, "alice", 3600)
		if time.Now().Unix() != before {
			continue // a second boundary passed between the two mints; try again
		}
		if ours != theirs {
			t.Fatalf("tokens differ:\nparley: %s\ntwilio: %s", decode(t, ours), decode(t, theirs))
		}
		parsed, err := (&twjwt.Jwt{}).FromJwt(ours, secret)
		if err != nil {
			t.Fatalf("twilio-go FromJwt: %v", err)
		}
		if parsed.Issuer != keySid || parsed.Subject != acct || parsed.DecodedHeaders["cty"] != ContentType {
			t.Fatalf("twilio-go decoded %+v", parsed)
		}
		if _, err := (&twjwt.Jwt{}).FromJwt(ours, "wrong secret"); err == nil {
			t.Fatal("twilio-go accepted our token with the wrong secret")
		}
		return
	}
	t.Fatal("could not mint both tokens within one second")
}

func decode(t *testing.T, tok string) string {
	parts := strings.Split(tok, ".")
	var out []string
	for _, p := range parts[:2] {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return strings.Join(out, " ")
}

// sign builds arbitrary tokens for the rejection table.
func sign(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyRejections(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": keySid, "sub": acct, "jti": keySid + "-1", "nbf": float64(now.Unix() - 10),
			"exp": float64(now.Unix() + 3600), "grants": map[string]any{"identity": "alice", "voice": map[string]any{"incoming": map[string]any{"allow": true}}}}
	}
	with := func(k string, v any) jwt.MapClaims { c := good(); c[k] = v; return c }
	cty := map[string]any{"cty": ContentType}
	revoked := keys()
	rk := revoked[keySid]
	rk.Revoked = true
	revoked[keySid] = rk
	inactive := keys()
	ik := inactive[keySid]
	ik.AccountActive = false
	inactive[keySid] = ik

	tests := []struct {
		name  string
		keys  keyTable
		token string
		want  error
	}{
		{"good", keys(), sign(t, jwt.SigningMethodHS256, []byte(secret), cty, good()), nil},
		{"expired", keys(), sign(t, jwt.SigningMethodHS256, []byte(secret), cty, with("exp", float64(now.Unix()-1))), ErrExpired},
		{"not yet valid", keys(), sign(t, jwt.SigningMethodHS256, []byte(secret), cty, with("nbf", float64(now.Unix()+60))), ErrNotYetValid},
		{"wrong signature", keys(), sign(t, jwt.SigningMethodHS256, []byte("other secret"), cty, good()), ErrSignature},
		{"wrong cty", keys(), sign(t, jwt.SigningMethodHS256, []byte(secret), map[string]any{"cty": "JWT"}, good()), ErrContentType},
		{"no cty", keys(), sign(t, jwt.SigningMethodHS256, []byte(secret), nil, good()), ErrContentType},
		{"HS512", keys(), sign(t, jwt.SigningMethodHS512, []byte(secret), cty, good()), ErrAlgorithm},
		{"alg none", keys(), sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, cty, good()), ErrAlgorithm},
		{"unknown key", keys(), sign(t, jwt.SigningMethodHS256, []byte(secret), cty, with("iss", "SKffffffffffffffffffffffffffffffff")), ErrUnknownKey},
		{"revoked key", revoked, sign(t, jwt.SigningMethodHS256, []byte(secret), cty, good()), ErrKeyRevoked},
		{"account mismatch", keys(), sign(t, jwt.SigningMethodHS256, []byte(secret), cty, with("sub", "ACffffffffffffffffffffffffffffffff")), ErrAccountMismatch},
		{"inactive account", inactive, sign(t, jwt.SigningMethodHS256, []byte(secret), cty, good()), ErrAccountInactive},
		{"lifetime too long", keys(), sign(t, jwt.SigningMethodHS256, []byte(secret), cty, with("exp", float64(now.Unix()+25*3600))), ErrLifetimeTooLong},
		{"no exp", keys(), sign(t, jwt.SigningMethodHS256, []byte(secret), cty, func() jwt.MapClaims { c := good(); delete(c, "exp"); return c }()), ErrMalformed},
		{"garbage", keys(), "not.a.jwt", ErrMalformed},
		{"empty", keys(), "", ErrMalformed},
		{"oversized", keys(), strings.Repeat("a", MaxTokenBytes+1), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &Verifier{Keys: tt.keys, Now: func() time.Time { return now }}
			_, err := v.Verify(context.Background(), tt.token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
			// Each failure carries exactly one reason.
			n := 0
			for _, r := range reasons {
				if errors.Is(err, r) {
					n++
				}
			}
			if n != 1 || Reason(err) == "" {
				t.Fatalf("error %v matches %d reasons (Reason %q)", err, n, Reason(err))
			}
		})
	}
}

func TestGrants(t *testing.T) {
	tok, err := Mint(MintParams{AccountSid: acct, KeySid: keySid, Secret: secret, Identity: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := (&Verifier{Keys: keys()}).Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Grants.IncomingAllowed() || c.Grants.OutgoingApplication() != "" || c.Grants.Identity != "bob" {
		t.Fatalf("grants = %+v", c.Grants)
	}
	if _, err := Mint(MintParams{AccountSid: acct, KeySid: keySid, Secret: secret, TTL: 25 * time.Hour}); err == nil {
		t.Fatal("minted a 25h token")
	}
	if _, err := Mint(MintParams{AccountSid: acct, KeySid: keySid}); err == nil {
		t.Fatal("minted without a secret")
	}
}

func FuzzVerify(f *testing.F) {
	tok, _ := Mint(MintParams{AccountSid: acct, KeySid: keySid, Secret: secret, Identity: "alice", Incoming: true})
	f.Add(tok)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	v := &Verifier{Keys: keys()}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := v.Verify(context.Background(), s)
		if err == nil {
			// Anything that verifies must have been signed with the secret.
			if c.KeySid != keySid || c.AccountSid != acct {
				t.Fatalf("verified foreign claims %+v", c)
			}
			return
		}
		if Reason(err) == "" {
			t.Fatalf("error without a reason: %v", err)
		}
	})
}
