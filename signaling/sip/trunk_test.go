package sip

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestParseTrunk(t *testing.T) {
	tests := []struct {
		name      string
		in        Trunk
		err       string
		dest      string
		transport string
		trusted   []string
		untrusted []string
	}{
		{name: "empty", in: Trunk{}, untrusted: []string{"127.0.0.1"}},
		{name: "udp default port", in: Trunk{URI: "sip:carrier.test"}, dest: "carrier.test:5060", transport: "udp"},
		{name: "tcp", in: Trunk{URI: "sip:10.0.0.1:5080;transport=TCP"}, dest: "10.0.0.1:5080", transport: "tcp"},
		{name: "sips is tls", in: Trunk{URI: "sips:carrier.test;transport=tcp"}, dest: "carrier.test:5061", transport: "tls"},
		{name: "bad transport", in: Trunk{URI: "sip:carrier.test;transport=sctp"}, err: "transport"},
		{name: "no host", in: Trunk{URI: "carrier"}, err: "trunk uri"},
		{name: "sources", in: Trunk{InboundSources: "192.0.2.0/24, 198.51.100.7,::1"},
			trusted: []string{"192.0.2.1", "192.0.2.255", "198.51.100.7", "::1", "::ffff:192.0.2.9"}, untrusted: []string{"192.0.3.1", "198.51.100.8", "x"}},
		{name: "bad source", in: Trunk{InboundSources: "192.0.2.0/33"}, err: "inbound source"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := parseTrunk(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tr.dest != tc.dest || tr.transport != tc.transport || tr.dials() != (tc.dest != "") {
				t.Fatalf("dest %q transport %q dials %v", tr.dest, tr.transport, tr.dials())
			}
			for _, ip := range tc.trusted {
				if !tr.trusts(ip) {
					t.Errorf("%s not trusted", ip)
				}
			}
			for _, ip := range tc.untrusted {
				if tr.trusts(ip) {
					t.Errorf("%s trusted", ip)
				}
			}
			if tr.dials() {
				b := tr.binding("AC1", "+15550100")
				var u sip.Uri
				if err := sip.ParseUri(b.Contact, &u); err != nil || u.User != "+15550100" || b.Source != tc.dest || b.Transport != tc.transport {
					t.Fatalf("binding %+v (%v)", b, err)
				}
			}
		})
	}
	var nilTrunk *trunk
	if nilTrunk.trusts("127.0.0.1") || nilTrunk.dials() {
		t.Fatal("nil trunk trusts or dials")
	}
}

func TestCallerNumber(t *testing.T) {
	for _, c := range []struct{ user, host, want string }{
		{"+15551230000", "carrier", "+15551230000"},
		{"5551230000", "carrier", "5551230000"},
		{"alice", "carrier.test", "sip:alice@carrier.test"},
	} {
		from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: c.user, Host: c.host}}
		if got := callerNumber(from); got != c.want {
			t.Errorf("callerNumber(%s) = %q, want %q", c.user, got, c.want)
		}
	}
	if callerNumber(nil) != "" {
		t.Error("nil From")
	}
}
