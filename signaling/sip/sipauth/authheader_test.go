package sipauth

import (
	"errors"
	"hash"
	"strings"
	"testing"

	"github.com/parleyhq/parley/signaling/sip/internal/sipmsg"
)

func TestParseAuthorization(t *testing.T) {
	tests := []struct {
		in      string
		scheme  string
		params  map[string]string
		token   string
		wantErr bool
	}{
		{in: `Digest username="alice", realm="parley", nonce="abc", uri="sip:pbx.test", response="0123", qop=auth, nc=00000001, cnonce="xyz", algorithm=MD5`,
			scheme: "digest", params: map[string]string{"username": "alice", "realm": "parley", "nonce": "abc", "uri": "sip:pbx.test", "response": "0123", "qop": "auth", "nc": "00000001", "cnonce": "xyz", "algorithm": "MD5"}},
		{in: `digest USERNAME="a\"b",realm=x`, scheme: "digest", params: map[string]string{"username": `a"b`, "realm": "x"}},
		{in: "Bearer eyJhbGciOi.eyJzdWIi.sig-_~+/==", scheme: "bearer", token: "eyJhbGciOi.eyJzdWIi.sig-_~+/=="},
		{in: `Digest username="a", username="b"`, wantErr: true},
		{in: `Digest username="unterminated`, wantErr: true},
		{in: `Digest username`, wantErr: true},
		{in: `Digest username=`, wantErr: true},
		{in: `Digest a=1 b=2`, wantErr: true},
		{in: `Basic YWxhZGRpbjpvcGVuc2VzYW1l`, wantErr: true},
		{in: `Bearer two words`, wantErr: true},
		{in: `Bearer`, wantErr: true},
		{in: "Digest username=\"a\x01\"", wantErr: true},
		{in: "Digest " + strings.Repeat("a", MaxAuthHeaderBytes), wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseAuthorization(tt.in)
		if tt.wantErr {
			if !errors.Is(err, errAuthSyntax) {
				t.Errorf("%q: err %v, want syntax error", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if got.Scheme != tt.scheme || got.Token != tt.token || len(got.Params) != len(tt.params) {
			t.Errorf("%q: got %+v", tt.in, got)
			continue
		}
		for k, v := range tt.params {
			if got.Params[k] != v {
				t.Errorf("%q: %s = %q, want %q", tt.in, k, got.Params[k], v)
			}
		}
	}
}

func TestQuoteRoundTrip(t *testing.T) {
	for _, s := range []string{"plain", `with "quotes"`, `back\slash`, ""} {
		got, err := parseAuthParams("x=" + sipmsg.Quote(s))
		if err != nil || got["x"] != s {
			t.Errorf("%q: got %q %v", s, got["x"], err)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add(`Digest username="alice", realm="parley", nonce="abc", uri="sip:pbx.test", response="0123", qop=auth, nc=00000001, cnonce="xyz"`)
	f.Add(`Bearer abc.def.ghi`)
	f.Add(`Digest a="\\\""`)
	f.Fuzz(func(t *testing.T, in string) {
		a, err := parseAuthorization(in)
		if err != nil {
			if !errors.Is(err, errAuthSyntax) {
				t.Fatalf("error does not wrap errAuthSyntax: %v", err)
			}
			return
		}
		switch a.Scheme {
		case "bearer":
			if !isToken68(a.Token) {
				t.Fatalf("accepted token %q", a.Token)
			}
		case "digest":
			if len(a.Params) == 0 {
				t.Fatal("digest without params")
			}
			// Re-rendering the params quoted must parse back to the same values.
			var parts []string
			for k, v := range a.Params {
				parts = append(parts, k+"="+sipmsg.Quote(v))
			}
			again, err := parseAuthorization("Digest " + strings.Join(parts, ", "))
			if err != nil {
				t.Fatalf("re-render of %q: %v", in, err)
			}
			for k, v := range a.Params {
				if again.Params[k] != v {
					t.Fatalf("%s: %q != %q", k, again.Params[k], v)
				}
			}
		default:
			t.Fatalf("scheme %q", a.Scheme)
		}
	})
}

func TestNoncesAndDigestVectors(t *testing.T) {
	// RFC 7616 §3.9.1 SHA-256 example, with the SIP method in A2 replaced by GET.
	p := map[string]string{
		"username": "Mufasa", "realm": "http-auth@example.org", "uri": "/dir/index.html",
		"algorithm": "SHA-256", "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "nc": "00000001",
		"cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "qop": "auth",
	}
	ha2 := hexHash(mustHasher("SHA-256"), "GET", p["uri"])
	ha1 := "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
	got := hexHash(mustHasher("SHA-256"), ha1, p["nonce"], p["nc"], p["cnonce"], p["qop"], ha2)
	if got != "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1" {
		t.Fatalf("RFC 7616 SHA-256 response = %s", got)
	}
	// MD5 example from the same section.
	md5HA1 := hexHash(mustHasher("MD5"), "Mufasa", "http-auth@example.org", "Circle of Life")
	got = hexHash(mustHasher("MD5"), md5HA1, p["nonce"], p["nc"], p["cnonce"], p["qop"], hexHash(mustHasher("MD5"), "GET", p["uri"]))
	if got != "8ca523f5e9506fed4657c9700eebdbec" {
		t.Fatalf("RFC 7616 MD5 response = %s", got)
	}
}

func mustHasher(alg string) func() hash.Hash {
	h, ok := hasher(alg)
	if !ok {
		panic(alg)
	}
	return h
}
