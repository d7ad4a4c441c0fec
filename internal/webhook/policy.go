package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// PolicyOptions configure a Policy. The zero value refuses every
// non-public address.
type PolicyOptions struct {
	// Allow lists networks that tenant URLs may reach although the default
	// refuses them (webhooks.allow_networks), e.g. 127.0.0.0/8 for an
	// application on the same host. Cloud metadata addresses stay refused.
	Allow []netip.Prefix
	// MaxRedirects is how many redirects a fetch follows: 0 means 5, a
	// negative number none.
	MaxRedirects int
	// Resolver resolves host names (default net.DefaultResolver).
	Resolver Resolver
	// DialTimeout bounds one connection attempt (default 10s).
	DialTimeout time.Duration
	// TLSConfig, when set, is used for https (e.g. a private CA's roots).
	TLSConfig *tls.Config
}

// DefaultMaxRedirects is how many redirects a fetch follows by default.
const DefaultMaxRedirects = 5

// Policy is the egress policy for tenant-supplied URLs; see the package
// documentation. It is safe for concurrent use; build it once and share it
// (it owns the connection pool).
type Policy struct {
	allow        []netip.Prefix
	maxRedirects int
	resolver     Resolver
	dialer       net.Dialer
	transport    *http.Transport
}

// NewPolicy builds a policy.
func NewPolicy(o PolicyOptions) *Policy {
	p := &Policy{maxRedirects: o.MaxRedirects, resolver: o.Resolver}
	for _, pfx := range o.Allow {
		p.allow = append(p.allow, normalizePrefix(pfx))
	}
	switch {
	case p.maxRedirects == 0:
		p.maxRedirects = DefaultMaxRedirects
	case p.maxRedirects < 0:
		p.maxRedirects = 0
	}
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	p.dialer = net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second, Control: p.control}
	p.transport = &http.Transport{
		Proxy:                  nil, // a proxy from the environment would dial on the policy's behalf, unchecked
		DialContext:            p.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    2, // net/http's default, as webhooks had before the policy
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  30 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		TLSClientConfig:        o.TLSConfig.Clone(),
	}
	return p
}

// normalizePrefix masks a prefix and writes an IPv4-mapped one as IPv4, so
// that it matches the unmapped addresses refusal looks at.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// ParseNetworks parses CIDRs (or single addresses, taken as /32 or /128)
// for PolicyOptions.Allow.
func ParseNetworks(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if pfx, err := netip.ParsePrefix(s); err == nil {
			if pfx.Addr().Zone() != "" {
				return nil, fmt.Errorf("network %q: zones are not allowed", s)
			}
			out = append(out, pfx)
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("network %q: want a CIDR like 127.0.0.0/8 or an address", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Allowed reports whether the policy lets a tenant URL reach a, and if not,
// why.
func (p *Policy) Allowed(a netip.Addr) (bool, string) {
	why := p.refusal(a)
	return why == "", why
}

// CheckURL parses a tenant-supplied URL and refuses what the policy never
// fetches: schemes other than http and https, URLs without a host, hosts
// written as IPv4 numbers in a non-standard form (2130706433, 0x7f.1, 0,
// 127.1) and IP literals in a refused range. Credentials in the URL
// (user:pw@host) are kept: the HTTP client sends them as Basic
// authentication, and they play no part in where the request goes. Host
// names pass here; their addresses are checked when connecting.
func (p *Policy) CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, refused(CodeInvalidURL, "the URL cannot be parsed")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, refused(CodeInvalidURL, "%s: only http and https URLs are fetched", schemeOf(u))
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, refused(CodeInvalidURL, "the URL has no host; want an absolute http(s) URL")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, refused(CodeInvalidURL, "port %q is not a port number", port)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, refused(CodeInvalidURL, "the URL has an empty port")
	}
	if err := p.checkHost(u.Hostname()); err != nil {
		return nil, err
	}
	return u, nil
}

func schemeOf(u *url.URL) string {
	if u.Scheme == "" {
		return "a relative URL"
	}
	return "scheme " + strconv.Quote(u.Scheme)
}

// checkHost refuses a URL's host before any lookup: IP literals in a refused
// range, odd IPv4 spellings and characters no host name has.
func (p *Policy) checkHost(host string) error {
	if host == "" {
		return refused(CodeInvalidURL, "the URL has no host")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return refused(CodeInvalidURL, "host %s: IPv6 zones are not allowed", a.WithZone(""))
		}
		if why := p.refusal(a); why != "" {
			return refused(CodeInvalidURL, "host %s is %s; an operator can allow it with webhooks.allow_networks", a, why)
		}
		return nil
	}
	if strings.ContainsAny(host, ":[]") {
		return refused(CodeInvalidURL, "host %q is not a valid IPv6 literal", host)
	}
	name := strings.TrimSuffix(host, ".")
	if name == "" || strings.HasPrefix(name, ".") || strings.Contains(name, "..") {
		return refused(CodeInvalidURL, "host %q has an empty label", host)
	}
	if endsInNumber(name) {
		// WHATWG URL parsers, browsers and getaddrinfo read such a host as
		// an IPv4 address (2130706433 = 0x7f.1 = 127.0.0.1); only the
		// dotted-decimal form is accepted, which ParseAddr took above.
		return refused(CodeInvalidURL, "host %q is an IPv4 address in a non-standard form; write it as a.b.c.d", host)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r >= 0x80
		if !ok || r == 0xFFFD {
			return refused(CodeInvalidURL, "host %q contains a character no host name has", host)
		}
	}
	return nil
}

// endsInNumber is the WHATWG URL standard's test for a host to be parsed as
// an IPv4 address: its last label is decimal digits or 0x-prefixed hex.
func endsInNumber(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if last == "" {
		return false
	}
	if allIn(last, "0123456789") {
		return true
	}
	if len(last) >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') {
		return allIn(last[2:], "0123456789abcdefABCDEF")
	}
	return false
}

func allIn(s, set string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(set, s[i]) < 0 {
			return false
		}
	}
	return true
}

// DialContext connects to address (host:port) for the HTTP transport: it
// resolves the host, drops every address the policy refuses and dials the
// remaining ones in turn, by address — the connection goes where the check
// looked. A host whose addresses are all refused is a *RefusedError.
func (p *Policy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, refused(CodeInvalidURL, "address %q: %v", address, err)
	}
	portNum, err := strconv.ParseUint(port, 10, 16)
	if err != nil || portNum == 0 {
		return nil, refused(CodeInvalidURL, "port %q is not a port number", port)
	}
	var addrs []netip.Addr
	literal := false
	if a, err := netip.ParseAddr(host); err == nil {
		addrs, literal = []netip.Addr{a}, true
	} else {
		if err := p.checkHost(host); err != nil {
			return nil, err
		}
		lookup := "ip"
		switch network {
		case "tcp4":
			lookup = "ip4"
		case "tcp6":
			lookup = "ip6"
		}
		if addrs, err = p.resolver.LookupNetIP(ctx, lookup, host); err != nil {
			return nil, fmt.Errorf("resolving %s: %w", host, err)
		}
	}
	var bad []string
	var allowed []netip.Addr
	for _, a := range addrs {
		if why := p.refusal(a); why != "" {
			if literal {
				return nil, refused(CodeInvalidURL, "host %s is %s; an operator can allow it with webhooks.allow_networks", a, why)
			}
			bad = append(bad, fmt.Sprintf("%s (%s)", canonical(a), why))
			continue
		}
		allowed = append(allowed, canonical(a))
	}
	if len(allowed) == 0 {
		if len(bad) == 0 {
			return nil, refused(CodeBadHost, "host %s has no addresses", host)
		}
		return nil, refused(CodeBadHost, "host %s resolves only to refused addresses: %s; an operator can allow them with webhooks.allow_networks", host, strings.Join(bad, ", "))
	}
	var errs []error
	for _, a := range allowed {
		conn, err := p.dialer.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(portNum)).String())
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// control is the dialer's last word: it checks the address the socket is
// about to connect to, whatever led there.
func (p *Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refused(CodeInvalidURL, "connecting to %q: not an IP address and port", address)
	}
	if why := p.refusal(ap.Addr()); why != "" {
		return refused(CodeBadHost, "connecting to %s: %s", ap.Addr(), why)
	}
	return nil
}

// checkRedirect bounds redirects and checks each target like the first URL.
func (p *Policy) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > p.maxRedirects {
		return refused(CodeTooManyRedirects, "more than %d redirects", p.maxRedirects)
	}
	prev := via[len(via)-1].URL
	if prev.Scheme == "https" && req.URL.Scheme != "https" {
		return refused(CodeInvalidRedirect, "redirect from https to %s://%s refused", req.URL.Scheme, req.URL.Host)
	}
	if _, err := p.CheckURL(req.URL.String()); err != nil {
		var re *RefusedError
		if errors.As(err, &re) && re.Code == CodeInvalidURL && req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			re.Code = CodeInvalidRedirect
		}
		return fmt.Errorf("redirect to %s: %w", redact(req.URL), err)
	}
	return nil
}

// HTTPClient returns an HTTP client that applies the policy to every
// connection and redirect, with an overall timeout. Clients share the
// policy's connection pool.
func (p *Policy) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Transport: p.transport, Timeout: timeout, CheckRedirect: p.checkRedirect}
}
