package accesstoken

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// libraryVerify is the verifier as it was written on golang-jwt (before
// Verify parsed tokens itself): the oracle the fuzz tests below compare
// Verify's verdicts with.
func libraryVerify(v *Verifier, ctx context.Context, token string) (Claims, error) {
	if len(token) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenBytes)
	}
	type tokenClaims struct {
		jwt.RegisteredClaims
		Grants Grants `json:"grants"`
	}
	var key SigningKey
	var tc tokenClaims
	parser := jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithJSONNumber())
	_, err := parser.ParseWithClaims(token, &tc, func(t *jwt.Token) (any, error) {
		if alg, _ := t.Header["alg"].(string); alg != "HS256" {
			return nil, fmt.Errorf("%w: %q (want HS256)", ErrAlgorithm, t.Header["alg"])
		}
		if cty, _ := t.Header["cty"].(string); cty != ContentType {
			return nil, fmt.Errorf("%w: got %q", ErrContentType, t.Header["cty"])
		}
		if tc.Issuer == "" {
			return nil, fmt.Errorf("%w: no iss claim", ErrMalformed)
		}
		k, err := v.Keys.SigningKey(ctx, tc.Issuer)
		if err != nil {
			return nil, err
		}
		key = k
		return []byte(k.Secret), nil
	})
	if err != nil {
		for _, r := range reasons {
			if errors.Is(err, r) {
				return Claims{}, err
			}
		}
		if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			return Claims{}, fmt.Errorf("%w", ErrSignature)
		}
		return Claims{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if key.Revoked {
		return Claims{}, ErrKeyRevoked
	}
	if tc.Subject != key.AccountSid {
		return Claims{}, ErrAccountMismatch
	}
	if !key.AccountActive {
		return Claims{}, ErrAccountInactive
	}
	if tc.ExpiresAt == nil {
		return Claims{}, fmt.Errorf("%w: no exp claim", ErrMalformed)
	}
	now := v.Now()
	c := Claims{ID: tc.ID, KeySid: tc.Issuer, AccountSid: tc.Subject, Expires: tc.ExpiresAt.Time, Grants: tc.Grants}
	start := now
	if tc.NotBefore != nil {
		c.NotBefore = tc.NotBefore.Time
		start = c.NotBefore
	} else if tc.IssuedAt != nil {
		start = tc.IssuedAt.Time
	}
	if !now.Before(c.Expires.Add(v.Leeway)) {
		return Claims{}, ErrExpired
	}
	if !c.NotBefore.IsZero() && now.Add(v.Leeway).Before(c.NotBefore) {
		return Claims{}, ErrNotYetValid
	}
	if c.Expires.Sub(start) > MaxTTL {
		return Claims{}, ErrLifetimeTooLong
	}
	return c, nil
}

// sameVerdict fails t unless Verify and the library agree on token: the same
// reason, or the same claims. One difference is by design: a header whose
// alg is not a string naming an algorithm the library knows is "malformed"
// for the library and "algorithm" for Verify.
func sameVerdict(t *testing.T, v *Verifier, token string) {
	t.Helper()
	ctx := context.Background()
	got, gotErr := v.Verify(ctx, token)
	want, wantErr := libraryVerify(v, ctx, token)
	g, w := Reason(gotErr), Reason(wantErr)
	if gotErr != nil && g == "" {
		t.Fatalf("Verify error without a reason: %v", gotErr)
	}
	if g == "algorithm" && w == "malformed" {
		return
	}
	if g != w {
		t.Fatalf("token %q: Verify says %q (%v), the library %q (%v)", token, g, gotErr, w, wantErr)
	}
	if gotErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("token %q: claims differ:\n Verify  %+v\n library %+v", token, got, want)
	}
}

var fixedNow = time.Unix(1_800_000_000, 0)

// signed signs any header and claims text with the test secret.
func signed(header, claims string) string {
	enc := base64.RawURLEncoding
	s := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	sig, _ := jwt.SigningMethodHS256.Sign(s, []byte(secret))
	return s + "." + enc.EncodeToString(sig)
}

const canonicalHeaderJSON = `{"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}`

func goodClaims() string {
	return fmt.Sprintf(`{"exp":%d,"grants":{"identity":"alice","voice":{"incoming":{"allow":true},"outgoing":{"application_sid":"%s","params":{"n":1.50}}}},"iss":"%s","jti":"%s-1","nbf":%d,"sub":"%s"}`,
		fixedNow.Unix()+3600, app, keySid, keySid, fixedNow.Unix()-10, acct)
}

// FuzzVerifyMatchesLibrary: arbitrary strings get the library's verdict.
func FuzzVerifyMatchesLibrary(f *testing.F) {
	tok, _ := Mint(MintParams{AccountSid: acct, KeySid: keySid, Secret: secret, Identity: "alice", Incoming: true, Now: fixedNow})
	for _, s := range []string{tok, "", "a.b.c", "a.b.c.d", "..", "eyJhbGciOiJub25lIn0.e30.", signed(canonicalHeaderJSON, goodClaims()),
		signed(`{"alg":"HS256","cty":"twilio-fpa;v=1"}`, goodClaims()), signed(`{"alg":"RS256","cty":"twilio-fpa;v=1"}`, goodClaims())} {
		f.Add(s)
	}
	v := &Verifier{Keys: keys(), Now: func() time.Time { return fixedNow }}
	f.Fuzz(func(t *testing.T, s string) { sameVerdict(t, v, s) })
}

// FuzzVerifySignedClaims: any header and claims text, correctly signed, gets
// the library's verdict; this reaches every check after the signature.
func FuzzVerifySignedClaims(f *testing.F) {
	f.Add(canonicalHeaderJSON, goodClaims())
	f.Add(`{"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT","kid":"x"}`, goodClaims())
	f.Add(canonicalHeaderJSON, `{"iss":"`+keySid+`","sub":"`+acct+`","exp":"1800003600","iat":1800000000.75}`)
	f.Add(canonicalHeaderJSON, `{"iss":"`+keySid+`","sub":"`+acct+`","exp":1800003600.9,"nbf":null} trailing`)
	f.Add(canonicalHeaderJSON, `{"iss":"`+keySid+`","sub":"`+acct+`","exp":1800090000}`)
	f.Add(canonicalHeaderJSON, `{"iss":"`+keySid+`","sub":"AC1","exp":1800003600}`)
	f.Add(canonicalHeaderJSON, `{"iss":7}`)
	f.Add(`{"alg":"none"}`, `{}`)
	v := &Verifier{Keys: keys(), Now: func() time.Time { return fixedNow }}
	f.Fuzz(func(t *testing.T, header, claims string) {
		if len(header)+len(claims) > MaxTokenBytes/2 {
			return
		}
		sameVerdict(t, v, signed(header, claims))
	})
}

// TestVerifyMatchesLibrary runs the seeds and the rejection table through
// both verifiers.
func TestVerifyMatchesLibrary(t *testing.T) {
	v := &Verifier{Keys: keys(), Now: func() time.Time { return fixedNow }}
	for _, c := range []string{goodClaims(), `{}`, `[]`, `{"iss":""}`, `{"iss":"SKnope","exp":1}`,
		`{"iss":"` + keySid + `","sub":"` + acct + `","exp":1800003600,"grants":{"voice":{"incoming":{"allow":"yes"}}}}`} {
		sameVerdict(t, v, signed(canonicalHeaderJSON, c))
	}
}

// BenchmarkVerify is the Bearer registrar's token check, against the
// library-based verifier it replaced, in the same run.
//
//	go test ./presence/accesstoken -run '^$' -bench Verify
func BenchmarkVerify(b *testing.B) {
	tok, _ := Mint(MintParams{AccountSid: acct, KeySid: keySid, Secret: secret, Identity: "alice", Incoming: true, Now: fixedNow})
	v := &Verifier{Keys: keys(), Now: func() time.Time { return fixedNow }}
	ctx := context.Background()
	b.Run("parley", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("golang-jwt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := libraryVerify(v, ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzParseClaims: whatever parseClaims accepts, encoding/json decodes to
// the same claims.
func FuzzParseClaims(f *testing.F) {
	f.Add(goodClaims())
	f.Add(`{"iss":"a","grants":{"voice":{"outgoing":{"application_sid":"AP1"}}},"exp":1e3,"nbf":-0.5}`)
	f.Add(` { "iat" : 0 , "sub":"x" } `)
	f.Add(`{"iss":"a","iss":"b"}`)
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseClaims([]byte(s))
		if !ok {
			return
		}
		want, err := decodeClaims([]byte(s))
		if err != nil {
			t.Fatalf("parseClaims accepted %q, encoding/json: %v", s, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n parseClaims %+v\n json        %+v", s, got, want)
		}
	})
}
