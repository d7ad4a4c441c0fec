package sip

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestAddressOf(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"client:alice", "sip:alice@parley.test"},
		{"sip:bob@pbx.test", "sip:bob@pbx.test"},
		{"sip:bob@pbx.test:5070", "sip:bob@pbx.test:5070"},
		{"client:ops team", "sip:ops%20team@parley.test"},
		{"client:a\r\nX-Evil: 1", "sip:a%0D%0AX-Evil%3A%201@parley.test"},
		{"+15551234567", "sip:+15551234567@parley.test"},
		{"sip:bad@ho st", "sip:bad@parley.test"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			u := addressOf(tc.in, "parley.test")
			if got := u.String(); got != tc.want {
				t.Fatalf("addressOf(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzAddressOf: whatever address the REST API or a webhook gives, the From
// header built from it is one line that parses back as a SIP URI.
func FuzzAddressOf(f *testing.F) {
	for _, s := range []string{"client:alice", "sip:bob@pbx.test", "sip:a@b:1;transport=tcp", "client:x\r\ny", "sip:<>@\"", "sips:%00@[::1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		u := addressOf(id, "parley.test")
		h := &sip.FromHeader{Address: u, Params: sip.NewParams()}
		v := h.Value()
		if strings.ContainsAny(v, "\r\n\x00") {
			t.Fatalf("header value %q from %q", v, id)
		}
		var back sip.Uri
		if err := sip.ParseUri(u.String(), &back); err != nil {
			t.Fatalf("%q → %q does not parse: %v", id, u.String(), err)
		}
	})
}
