package presence

import (
	"errors"
	"strings"
	"testing"
)

func TestIdentityStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{ClientIdentity("alice"), "client:alice"},
		{ClientIdentity("ops team"), "client:ops team"},
		{SIPIdentity("alice", "PBX.Example.com"), "sip:alice@pbx.example.com"},
		{Identity{Kind: KindClient, User: "bob"}.String(), "client:bob"},
		{Identity{Kind: KindSIP, User: "Bob", Host: "Pbx.Test"}.String(), "sip:Bob@pbx.test"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestParseIdentity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Identity
		ok   bool
	}{
		{"client:alice", Identity{Kind: KindClient, User: "alice"}, true},
		{"client:a@b", Identity{Kind: KindClient, User: "a@b"}, true},
		{"client:sip:x", Identity{Kind: KindClient, User: "sip:x"}, true},
		{"sip:alice@pbx.test", Identity{Kind: KindSIP, User: "alice", Host: "pbx.test"}, true},
		{"sip:alice@PBX.test", Identity{Kind: KindSIP, User: "alice", Host: "PBX.test"}, true},
		{"sip:a@b@c", Identity{Kind: KindSIP, User: "a", Host: "b@c"}, true},
		{"client:", Identity{Kind: KindClient}, false},
		{"sip:alice", Identity{Kind: KindSIP, User: "alice"}, false},
		{"sip:@pbx.test", Identity{Kind: KindSIP, Host: "pbx.test"}, false},
		{"sip:alice@", Identity{Kind: KindSIP, User: "alice"}, false},
		{"sips:alice@pbx.test", Identity{}, false},
		{"+15551234567", Identity{}, false},
		{"alice", Identity{}, false},
		{"", Identity{}, false},
		{"Client:alice", Identity{}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseIdentity(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("ParseIdentity(%q) = %+v, %v; want %+v, ok %v", tc.in, got, err, tc.want, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrNotIdentity) {
				t.Fatalf("error %v does not wrap ErrNotIdentity", err)
			}
		})
	}
}

// FuzzParseIdentity: what parses prints back to an identity that parses to
// the same thing (the domain lower-cased); what does not parse has a Kind
// only when it carries an identity's prefix.
func FuzzParseIdentity(f *testing.F) {
	for _, s := range []string{"client:alice", "sip:alice@pbx.test", "sip:a@B@c", "client:", "sip:x", "sips:a@b", "+1555", "client:\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseIdentity(s)
		if err != nil {
			if !errors.Is(err, ErrNotIdentity) {
				t.Fatalf("%q: error %v does not wrap ErrNotIdentity", s, err)
			}
			prefixed := strings.HasPrefix(s, "client:") || strings.HasPrefix(s, "sip:")
			if (id.Kind != "") != prefixed {
				t.Fatalf("%q: kind %q on error", s, id.Kind)
			}
			return
		}
		if id.Kind != KindClient && id.Kind != KindSIP || id.User == "" || (id.Kind == KindSIP) == (id.Host == "") {
			t.Fatalf("%q parsed to %+v", s, id)
		}
		back, err := ParseIdentity(id.String())
		want := id
		want.Host = strings.ToLower(id.Host)
		if err != nil || back != want {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, id, id.String(), back, err)
		}
		if id.Kind == KindClient && id.String() != s {
			t.Fatalf("%q printed as %q", s, id.String())
		}
	})
}
