package store

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckSIPDomainName(t *testing.T) {
	reserved := []string{"sip.parley.example", "Media.Parley.Example."}
	for _, c := range []struct {
		in, want string // want "" means refused
	}{
		{"pbx.example.com", "pbx.example.com"},
		{"  PBX.Example.COM.  ", "pbx.example.com"},
		{"pbx.test", "pbx.test"},
		{"a-b.c-d.example", "a-b.c-d.example"},
		{"1pbx.example", "1pbx.example"},
		{"example", "example"},
		{strings.Repeat("a", 63) + ".example", strings.Repeat("a", 63) + ".example"},
		{strings.Repeat("abcdefghi.", 24) + "example", strings.Repeat("abcdefghi.", 24) + "example"},
		{"", ""},
		{".", ""},
		{"127.0.0.1", ""},
		{"0.0.0.0", ""},
		{"192.168.1.1.", ""},
		{"2130706433", ""},
		{"127.1", ""},
		{"0x7f.0.0.1", ""},
		{"::1", ""},
		{"[::1]", ""},
		{"[2001:db8::1]", ""},
		{"::ffff:127.0.0.1", ""},
		{"fe80::1%eth0", ""},
		{"[pbx.example]", ""},
		{"localhost", ""},
		{"LocalHost.", ""},
		{"pbx.localhost", ""},
		{"a.b.localhost.", ""},
		{"notlocalhost", "notlocalhost"},
		{"bad domain", ""},
		{"under_score.example", ""},
		{"pbx.example:5060", ""},
		{"pbx.example/x", ""},
		{"pbx..example", ""},
		{".pbx.example", ""},
		{"pbx.example..", ""},
		{"-pbx.example", ""},
		{"pbx-.example", ""},
		{"pbx.-example", ""},
		{"pbx.éxample", ""},
		{strings.Repeat("a", 64) + ".example", ""},
		{strings.Repeat("abcdefghi.", 26) + "example", ""},
		{"sip.parley.example", ""},
		{"SIP.PARLEY.EXAMPLE.", ""},
		{"media.parley.example", ""},
		{"other.parley.example", "other.parley.example"},
	} {
		got, err := CheckSIPDomainName(c.in, reserved)
		if c.want == "" {
			if err == nil || !errors.Is(err, ErrDomainNameRefused) || !errors.Is(err, ErrInvalid) {
				t.Errorf("CheckSIPDomainName(%q) = %q, %v; want refused", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("CheckSIPDomainName(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
