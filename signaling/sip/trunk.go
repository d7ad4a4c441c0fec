package sip

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/presence"
)

// Trunk connects Parley to a SIP carrier. <Dial><Number> goes out through
// URI (answering the carrier's Digest challenge with Username and Password
// when it asks), and INVITEs from InboundSources reach the server's incoming
// numbers without authentication — the carrier vouches for its callers, as
// carriers do.
type Trunk struct {
	// URI is where numbers are sent: "sip:carrier.example.net:5060;transport=tcp".
	// The dialled number becomes its user part. Empty: numbers cannot be dialled.
	URI      string `yaml:"uri"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// InboundSources lists the carrier's addresses, comma-separated IPs or
	// CIDR prefixes. Empty: every INVITE must authenticate.
	InboundSources string `yaml:"inbound_sources"`
}

// trunk is a Trunk parsed and checked.
type trunk struct {
	uri       sip.Uri
	transport string // udp, tcp or tls
	dest      string // host:port requests go to
	username  string
	password  string
	sources   []netip.Prefix
}

func parseTrunk(t Trunk) (*trunk, error) {
	out := &trunk{username: t.Username, password: t.Password}
	for _, s := range strings.Split(t.InboundSources, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("sip config: trunk inbound source %q: not an IP or CIDR prefix", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out.sources = append(out.sources, p.Masked())
	}
	if t.URI == "" {
		return out, nil
	}
	if err := sip.ParseUri(t.URI, &out.uri); err != nil || out.uri.Host == "" {
		return nil, fmt.Errorf("sip config: trunk uri %q: want sip:host[:port][;transport=udp|tcp|tls]", t.URI)
	}
	out.transport = presence.TransportUDP
	if out.uri.UriParams != nil {
		if tp, ok := out.uri.UriParams.Get("transport"); ok {
			out.transport = strings.ToLower(tp)
		}
	}
	if out.uri.IsEncrypted() && out.transport == presence.TransportTCP {
		out.transport = presence.TransportTLS
	}
	switch out.transport {
	case presence.TransportUDP, presence.TransportTCP, presence.TransportTLS:
	default:
		return nil, fmt.Errorf("sip config: trunk uri %q: transport %q (want udp, tcp or tls)", t.URI, out.transport)
	}
	port := out.uri.Port
	if port == 0 {
		port = sip.DefaultPort(out.transport)
	}
	out.dest = net.JoinHostPort(out.uri.Host, strconv.Itoa(port))
	return out, nil
}

// dials reports whether numbers can be dialled.
func (t *trunk) dials() bool { return t != nil && t.dest != "" }

// trusts reports whether an INVITE from ip comes from the carrier.
func (t *trunk) trusts(ip string) bool {
	if t == nil || len(t.sources) == 0 {
		return false
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range t.sources {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// binding is the pseudo-binding the dialer rings for a number: the number at
// the carrier, reached over the trunk's transport.
func (t *trunk) binding(accountSid, number string) presence.Binding {
	u := sip.Uri{Scheme: t.uri.Scheme, User: number, Host: t.uri.Host, Port: t.uri.Port}
	if t.transport != presence.TransportUDP {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", t.transport)
	}
	return presence.Binding{AccountSid: accountSid, Identity: number, Key: "trunk", Contact: u.String(),
		Transport: t.transport, Source: t.dest}
}

// callerNumber is how a carrier's caller appears in webhooks: the From
// user when it looks like a number, else the whole From URI.
func callerNumber(from *sip.FromHeader) string {
	if from == nil {
		return ""
	}
	u := from.Address.User
	if u != "" && strings.Trim(u, "+0123456789") == "" {
		return u
	}
	return sanitize(from.Address.String())
}
