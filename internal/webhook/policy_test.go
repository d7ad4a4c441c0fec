package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestAddressTable(t *testing.T) {
	def := NewPolicy(PolicyOptions{})
	allow, err := ParseNetworks([]string{"127.0.0.0/8", "169.254.0.0/16", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	same := NewPolicy(PolicyOptions{Allow: allow})
	everything, _ := ParseNetworks([]string{"0.0.0.0/0", "::/0"})
	open := NewPolicy(PolicyOptions{Allow: everything})
	mapped, _ := ParseNetworks([]string{"::ffff:10.0.0.0/104"})
	mappedAllow := NewPolicy(PolicyOptions{Allow: mapped})
	tests := []struct {
		addr string
		p    *Policy
		ok   bool
		why  string
	}{
		// public addresses pass
		{"8.8.8.8", def, true, ""},
		{"1.1.1.1", def, true, ""},
		{"2606:4700:4700::1111", def, true, ""},
		{"64:ff9b::808:808", def, true, ""}, // NAT64 of a public address
		{"2002:808:808::1", def, true, ""},  // 6to4 of a public address
		{"::ffff:8.8.8.8", def, true, ""},   // mapped public
		{"100.63.255.255", def, true, ""},   // just below CGNAT
		{"100.128.0.0", def, true, ""},      // just above CGNAT
		{"172.32.0.1", def, true, ""},       // just above 172.16/12
		{"223.255.255.255", def, true, ""},  // just below multicast
		{"198.20.0.1", def, true, ""},       // just above benchmarking
		{"fbff:ffff::1", def, true, ""},     // just below ULA
		{"2001:4860:4860::8888", def, true, ""},
		// IPv4 refusals
		{"0.0.0.0", def, false, "this network"},
		{"0.1.2.3", def, false, "this network"},
		{"10.1.2.3", def, false, "private"},
		{"100.64.0.1", def, false, "carrier-grade NAT"},
		{"100.127.255.254", def, false, "carrier-grade NAT"},
		{"127.0.0.1", def, false, "loopback"},
		{"127.255.255.254", def, false, "loopback"},
		{"169.254.1.1", def, false, "link-local"},
		{"172.16.0.1", def, false, "private"},
		{"172.31.255.255", def, false, "private"},
		{"192.0.0.8", def, false, "IETF protocol"},
		{"192.0.2.1", def, false, "documentation"},
		{"192.88.99.1", def, false, "6to4 relay"},
		{"192.168.1.1", def, false, "private"},
		{"198.18.0.1", def, false, "benchmarking"},
		{"198.19.255.255", def, false, "benchmarking"},
		{"198.51.100.7", def, false, "documentation"},
		{"203.0.113.9", def, false, "documentation"},
		{"224.0.0.1", def, false, "multicast"},
		{"239.255.255.250", def, false, "multicast"},
		{"240.0.0.1", def, false, "reserved"},
		{"255.255.255.255", def, false, "broadcast"},
		// metadata
		{"169.254.169.254", def, false, "metadata"},
		{"100.100.100.200", def, false, "metadata"},
		{"168.63.129.16", def, false, "metadata"},
		{"fd00:ec2::254", def, false, "metadata"},
		{"fd20:ce::254", def, false, "metadata"},
		{"::ffff:169.254.169.254", def, false, "metadata"},
		// IPv6 refusals
		{"::", def, false, "unspecified"},
		{"::1", def, false, "loopback"},
		{"::127.0.0.1", def, false, "IPv4-compatible"},
		{"::ffff:127.0.0.1", def, false, "loopback"},
		{"::ffff:10.0.0.1", def, false, "private"},
		{"::ffff:0:127.0.0.1", def, false, "IPv4-translated"},
		{"64:ff9b::7f00:1", def, false, "loopback embedded in 64:ff9b::7f00:1"},
		{"64:ff9b::a9fe:101", def, false, "link-local embedded"},
		{"64:ff9b::a9fe:a9fe", def, false, "metadata address (always refused) embedded"},
		{"64:ff9b:1::1", def, false, "local-use NAT64"},
		{"2002:7f00:1::", def, false, "loopback embedded"},
		{"2002:c0a8:101::1", def, false, "private (RFC 1918) embedded"},
		{"2001::1", def, false, "Teredo"},
		{"2001:db8::1", def, false, "documentation"},
		{"3fff::1", def, false, "documentation"},
		{"100::1", def, false, "discard"},
		{"fc00::1", def, false, "unique local"},
		{"fdff:ffff::1", def, false, "unique local"},
		{"fe80::1", def, false, "link-local"},
		{"fe80::1%eth0", def, false, "link-local"},
		{"febf::1", def, false, "link-local"},
		{"fec0::1", def, false, "site-local"},
		{"ff02::1", def, false, "multicast"},
		// what an operator allows
		{"127.0.0.1", same, true, ""},
		{"::ffff:127.0.0.1", same, true, ""},
		{"169.254.1.1", same, true, ""},
		{"169.254.169.254", same, false, "metadata"},
		{"fd12::1", same, true, ""},
		{"fd00:ec2::254", same, false, "metadata"},
		{"10.0.0.1", same, false, "private"},
		{"::1", same, false, "loopback"}, // only what is listed
		{"10.0.0.1", open, true, ""},
		{"ff02::1", open, true, ""},
		{"169.254.169.254", open, false, "metadata"},
		{"10.9.9.9", mappedAllow, true, ""}, // a mapped prefix allows the IPv4 block
		{"::ffff:10.9.9.9", mappedAllow, true, ""},
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		ok, why := tt.p.Allowed(a)
		if ok != tt.ok || !strings.Contains(why, tt.why) {
			t.Errorf("%s: allowed %v %q; want %v %q", tt.addr, ok, why, tt.ok, tt.why)
		}
	}
}

func TestParseNetworks(t *testing.T) {
	got, err := ParseNetworks([]string{" 127.0.0.0/8", "", "::1", "10.1.2.3"})
	if err != nil || len(got) != 3 || got[1].String() != "::1/128" || got[2].String() != "10.1.2.3/32" {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"localhost", "127.0.0.0/33", "fe80::1%eth0", "fe80::%eth0/64", "10.0.0.0/8x"} {
		if _, err := ParseNetworks([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestURLForms(t *testing.T) {
	p := NewPolicy(PolicyOptions{})
	tests := []struct {
		url  string
		code int // 0: accepted
		why  string
	}{
		{"https://example.com/voice", 0, ""},
		{"HTTP://EXAMPLE.COM/voice", 0, ""},
		{"http://example.com./voice", 0, ""},
		{"http://user:pw@example.com/voice", 0, ""}, // Basic auth, as the hosted platform does
		{"http://8.8.8.8:8080/x", 0, ""},
		{"https://[2606:4700:4700::1111]/x", 0, ""},
		{"http://xn--bcher-kva.example/x", 0, ""},
		{"http://bücher.example/x", 0, ""},
		{"http://1e100.net/x", 0, ""},
		{"http://localhost/x", 0, ""}, // a name: refused when its addresses are checked
		// schemes and shapes
		{"ftp://example.com/x", CodeInvalidURL, "only http and https"},
		{"file:///etc/passwd", CodeInvalidURL, "only http and https"},
		{"gopher://127.0.0.1:6379/_INFO", CodeInvalidURL, "only http and https"},
		{"javascript:alert(1)", CodeInvalidURL, "only http and https"},
		{"/relative", CodeInvalidURL, "relative URL"},
		{"//example.com/x", CodeInvalidURL, "relative URL"},
		{"http:example.com", CodeInvalidURL, "no host"},
		{"http:///x", CodeInvalidURL, "no host"},
		{"http://:80/x", CodeInvalidURL, "no host"},
		{"http://example.com:0/x", CodeInvalidURL, "port"},
		{"http://example.com:99999/x", CodeInvalidURL, "port"},
		{"http://example.com:/x", CodeInvalidURL, "empty port"},
		{"http://exa mple.com/", CodeInvalidURL, "cannot be parsed"},
		{"http://example..com/", CodeInvalidURL, "empty label"},
		{"http://ex%00ample.com/", CodeInvalidURL, ""},
		{"http://ex$ample.com/", CodeInvalidURL, "character"},
		// literal addresses
		{"http://127.0.0.1/", CodeInvalidURL, "loopback"},
		{"http://127.0.0.1:8080/x", CodeInvalidURL, "loopback"},
		{"http://10.0.0.1/", CodeInvalidURL, "private"},
		{"http://169.254.169.254/latest/meta-data/", CodeInvalidURL, "metadata"},
		{"http://[::1]/", CodeInvalidURL, "loopback"},
		{"http://[::ffff:127.0.0.1]/", CodeInvalidURL, "loopback"},
		{"http://[::ffff:7f00:1]/", CodeInvalidURL, "loopback"},
		{"http://[0:0:0:0:0:ffff:127.0.0.1]/", CodeInvalidURL, "loopback"},
		{"http://[::127.0.0.1]/", CodeInvalidURL, "IPv4-compatible"},
		{"http://[64:ff9b::127.0.0.1]/", CodeInvalidURL, "loopback embedded"},
		{"http://[2002:7f00:1::1]/", CodeInvalidURL, "loopback embedded"},
		{"http://[fd00:ec2::254]/latest/meta-data/", CodeInvalidURL, "metadata"},
		{"http://[fe80::1%25eth0]/", CodeInvalidURL, "zones"},
		{"http://[::]/", CodeInvalidURL, "unspecified"},
		{"http://0.0.0.0:8080/", CodeInvalidURL, "this network"},
		// odd IPv4 spellings
		{"http://2130706433/", CodeInvalidURL, "non-standard form"},
		{"http://0/", CodeInvalidURL, "non-standard form"},
		{"http://0x7f.1/", CodeInvalidURL, "non-standard form"},
		{"http://0x7f000001/", CodeInvalidURL, "non-standard form"},
		{"http://127.1/", CodeInvalidURL, "non-standard form"},
		{"http://017700000001/", CodeInvalidURL, "non-standard form"},
		{"http://0177.0.0.1/", CodeInvalidURL, "non-standard form"},
		{"http://127.0.0.1./", CodeInvalidURL, "non-standard form"},
		{"http://1.2.3.4.5/", CodeInvalidURL, "non-standard form"},
		{"http://example.0x/", CodeInvalidURL, "non-standard form"},
		{"http://8.8.8.010/", CodeInvalidURL, "non-standard form"},
		{"http://%31%32%37.0.0.1/", CodeInvalidURL, ""},
		// credentials never change the host that is checked
		{"http://user:pw@127.0.0.1/", CodeInvalidURL, "loopback"},
		{"http://example.com@127.0.0.1/", CodeInvalidURL, "loopback"},
		{"http://example.com:80@127.0.0.1:8080/", CodeInvalidURL, "loopback"},
		{"http://127.0.0.1#@example.com/", CodeInvalidURL, "loopback"},
		{"http://127.0.0.1\\@example.com/", CodeInvalidURL, ""},
	}
	for _, tt := range tests {
		u, err := p.CheckURL(tt.url)
		if tt.code == 0 {
			if err != nil {
				t.Errorf("%s: %v", tt.url, err)
			} else if u.Hostname() == "" {
				t.Errorf("%s: accepted without a host", tt.url)
			}
			continue
		}
		var re *RefusedError
		if !errors.As(err, &re) || re.Code != tt.code || !strings.Contains(re.Reason, tt.why) {
			t.Errorf("%s: %v; want code %d with %q", tt.url, err, tt.code, tt.why)
			continue
		}
		if strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: credentials in the error: %v", tt.url, err)
		}
	}
}

// counted is a test server that counts the requests it got.
type counted struct {
	*httptest.Server
	hits atomic.Int32
}

func serveOn(t *testing.T, addr string, h http.HandlerFunc) *counted {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	c := &counted{}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		h(w, r)
	}))
	c.Listener.Close()
	c.Listener = ln
	c.Start()
	t.Cleanup(c.Close)
	return c
}

func ok(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/xml")
	io.WriteString(w, "<Response/>")
}

func redirectTo(target string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, target, http.StatusFound) }
}

// only127001 is a same-host operator's policy that allows 127.0.0.1 only;
// the rest of 127.0.0.0/8 (also on this host's loopback interface) stands in
// for a network the policy refuses.
func only127001(t *testing.T, o PolicyOptions) *Policy {
	t.Helper()
	allow, err := ParseNetworks([]string{"127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	o.Allow = allow
	return NewPolicy(o)
}

func TestRedirectToRefusedAddressIsRefused(t *testing.T) {
	internal := serveOn(t, "127.0.0.2:0", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<Response><Say>secret</Say></Response>")
	})
	hop2 := serveOn(t, "127.0.0.1:0", redirectTo(internal.URL+"/admin"))
	hop1 := serveOn(t, "127.0.0.1:0", redirectTo(hop2.URL+"/next"))
	c := &Client{Policy: only127001(t, PolicyOptions{})}
	_, err := c.Do(context.Background(), Request{URL: hop1.URL + "/voice"})
	var re *RefusedError
	if !errors.As(err, &re) || re.Code != CodeInvalidURL || !strings.Contains(err.Error(), "127.0.0.2 is loopback") {
		t.Fatalf("err %v; want a refusal of 127.0.0.2", err)
	}
	if Code(err) != CodeInvalidURL {
		t.Fatalf("Code %d", Code(err))
	}
	if hop1.hits.Load() != 1 || hop2.hits.Load() != 1 || internal.hits.Load() != 0 {
		t.Fatalf("hits %d %d %d; the refused server must get nothing", hop1.hits.Load(), hop2.hits.Load(), internal.hits.Load())
	}
	// The same chain is followed when the operator allows the network.
	wide := &Client{Policy: loopbackPolicy(t)}
	res, err := wide.Do(context.Background(), Request{URL: hop1.URL + "/voice"})
	if err != nil || !strings.Contains(string(res.Body), "secret") || internal.hits.Load() != 1 {
		t.Fatalf("allowed chain: %v %q", err, res.Body)
	}
}

func TestRedirectBounds(t *testing.T) {
	final := serveOn(t, "127.0.0.1:0", ok)
	// a chain of n redirects ending at final
	chain := func(n int) string {
		next := final.URL + "/"
		for i := 0; i < n; i++ {
			next = serveOn(t, "127.0.0.1:0", redirectTo(next)).URL + "/"
		}
		return next
	}
	c := &Client{Policy: only127001(t, PolicyOptions{MaxRedirects: 3})}
	if _, err := c.Do(context.Background(), Request{URL: chain(3)}); err != nil {
		t.Fatalf("3 redirects: %v", err)
	}
	before := final.hits.Load()
	_, err := c.Do(context.Background(), Request{URL: chain(4)})
	if Code(err) != CodeTooManyRedirects || final.hits.Load() != before {
		t.Fatalf("4 redirects: %v (code %d)", err, Code(err))
	}
	none := &Client{Policy: only127001(t, PolicyOptions{MaxRedirects: -1})}
	if _, err := none.Do(context.Background(), Request{URL: chain(1)}); Code(err) != CodeTooManyRedirects {
		t.Fatalf("no redirects allowed: %v", err)
	}
	loop := serveOn(t, "127.0.0.1:0", redirectTo("/again"))
	if _, err := c.Do(context.Background(), Request{URL: loop.URL + "/"}); Code(err) != CodeTooManyRedirects {
		t.Fatalf("redirect loop: %v", err)
	}
	// Other schemes are refused as redirect targets.
	for _, target := range []string{"file:///etc/passwd", "gopher://127.0.0.1:70/x"} {
		bad := serveOn(t, "127.0.0.1:0", redirectTo(target))
		if _, err := c.Do(context.Background(), Request{URL: bad.URL + "/"}); Code(err) != CodeInvalidRedirect {
			t.Fatalf("redirect to %s: %v (code %d)", target, err, Code(err))
		}
	}
}

func TestRedirectFromHTTPSToHTTPIsRefused(t *testing.T) {
	plain := serveOn(t, "127.0.0.1:0", ok)
	tlsSrv := httptest.NewTLSServer(redirectTo(plain.URL + "/"))
	defer tlsSrv.Close()
	roots := tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c := &Client{Policy: only127001(t, PolicyOptions{TLSConfig: &tls.Config{RootCAs: roots}})}
	_, err := c.Do(context.Background(), Request{URL: tlsSrv.URL + "/"})
	if Code(err) != CodeInvalidRedirect || plain.hits.Load() != 0 {
		t.Fatalf("https → http: %v (code %d), plain hits %d", err, Code(err), plain.hits.Load())
	}
	// https itself works through the policy.
	direct := httptest.NewTLSServer(http.HandlerFunc(ok))
	defer direct.Close()
	if _, err := c.Do(context.Background(), Request{URL: direct.URL + "/"}); err != nil {
		t.Fatalf("https: %v", err)
	}
}

func TestDNSAnswersAreChecked(t *testing.T) {
	refusedSrv := serveOn(t, "127.0.0.2:0", ok)
	allowedSrv := serveOn(t, "127.0.0.1:0", ok)
	_, port, _ := net.SplitHostPort(allowedSrv.Listener.Addr().String())
	_, rport, _ := net.SplitHostPort(refusedSrv.Listener.Addr().String())
	dns := newDNSServer(t, map[string][]netip.Addr{
		"app.test":      {netip.MustParseAddr("127.0.0.1")},
		"evil.test":     {netip.MustParseAddr("127.0.0.2")},
		"mapped.test":   {netip.MustParseAddr("::ffff:127.0.0.2")},
		"metadata.test": {netip.MustParseAddr("169.254.169.254")},
		// one refused address among allowed ones: only the allowed one is dialled
		"mixed.test": {netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")},
		"empty.test": {},
	})
	c := &Client{Policy: only127001(t, PolicyOptions{Resolver: dns.resolver()}), Timeout: 5 * time.Second}
	if _, err := c.Do(context.Background(), Request{URL: "http://app.test:" + port + "/"}); err != nil || allowedSrv.hits.Load() != 1 {
		t.Fatalf("allowed name: %v", err)
	}
	if !dns.asked("app.test") {
		t.Fatal("the policy did not use its resolver")
	}
	for _, name := range []string{"evil.test", "mapped.test"} {
		_, err := c.Do(context.Background(), Request{URL: "http://" + name + ":" + rport + "/"})
		if Code(err) != CodeBadHost || !strings.Contains(err.Error(), "resolves only to refused addresses: 127.0.0.2 (loopback)") {
			t.Fatalf("%s: %v (code %d)", name, err, Code(err))
		}
	}
	if _, err := c.Do(context.Background(), Request{URL: "http://metadata.test/latest/meta-data/"}); Code(err) != CodeBadHost || !strings.Contains(err.Error(), "metadata") {
		t.Fatalf("metadata: %v", err)
	}
	// mixed.test: the refused address is skipped, the allowed one answers.
	_, err := c.Do(context.Background(), Request{URL: "http://mixed.test:" + port + "/"})
	if err != nil || allowedSrv.hits.Load() != 2 {
		t.Fatalf("mixed: %v", err)
	}
	_, err = c.Do(context.Background(), Request{URL: "http://mixed.test:" + rport + "/"})
	if err == nil {
		t.Fatal("mixed.test on the refused server's port connected")
	}
	if refusedSrv.hits.Load() != 0 {
		t.Fatalf("the refused server got %d requests", refusedSrv.hits.Load())
	}
	for _, name := range []string{"nxdomain.test", "empty.test"} {
		if _, err := c.Do(context.Background(), Request{URL: "http://" + name + "/"}); Code(err) != CodeBadHost {
			t.Fatalf("%s: %v (code %d)", name, err, Code(err))
		}
	}
	// A redirect to a name that resolves to a refused address is refused too.
	hop := serveOn(t, "127.0.0.1:0", redirectTo("http://evil.test:"+rport+"/"))
	if _, err := c.Do(context.Background(), Request{URL: hop.URL + "/"}); Code(err) != CodeBadHost || refusedSrv.hits.Load() != 0 {
		t.Fatalf("redirect to evil.test: %v", err)
	}
}

// TestRebindingGainsNothing: a name whose answer changes on every lookup
// (public first, then internal) is checked on each connection, never
// trusted from an earlier check.
func TestRebindingGainsNothing(t *testing.T) {
	allowedSrv := serveOn(t, "127.0.0.1:0", ok)
	_, port, _ := net.SplitHostPort(allowedSrv.Listener.Addr().String())
	refusedSrv := serveOn(t, "127.0.0.2:"+port, ok) // the same port: the name may point at either
	var lookups atomic.Int32
	res := resolverFunc(func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		if lookups.Add(1)%2 == 1 {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.2")}, nil
	})
	p := only127001(t, PolicyOptions{Resolver: res})
	p.transport.DisableKeepAlives = true // every request dials (and resolves) again
	c := &Client{Policy: p}
	var okN, refusedN int
	for i := 0; i < 6; i++ {
		_, err := c.Do(context.Background(), Request{URL: "http://rebind.test:" + port + "/"})
		switch {
		case err == nil:
			okN++
		case Code(err) == CodeBadHost:
			refusedN++
		default:
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if okN != 3 || refusedN != 3 || refusedSrv.hits.Load() != 0 || allowedSrv.hits.Load() != 3 {
		t.Fatalf("ok %d refused %d; hits allowed %d refused %d", okN, refusedN, allowedSrv.hits.Load(), refusedSrv.hits.Load())
	}
}

type resolverFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

// TestSystemResolverLocalhost: with the default resolver, "localhost" (from
// /etc/hosts) is refused by its address, and allowed when loopback is.
func TestSystemResolverLocalhost(t *testing.T) {
	srv := serveOn(t, "127.0.0.1:0", ok)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	u := "http://localhost:" + port + "/"
	if _, err := (&Client{}).Do(context.Background(), Request{URL: u}); Code(err) != CodeBadHost || srv.hits.Load() != 0 {
		t.Fatalf("default policy, localhost: %v", err)
	}
	if _, err := (&Client{Policy: loopbackPolicy(t)}).Do(context.Background(), Request{URL: u}); err != nil || srv.hits.Load() != 1 {
		t.Fatalf("loopback allowed, localhost: %v", err)
	}
}

// TestControlChecksTheSocketAddress: the dialer's Control hook refuses a
// refused address whatever led to it, as a last line behind DialContext.
func TestControlChecksTheSocketAddress(t *testing.T) {
	p := only127001(t, PolicyOptions{})
	for addr, want := range map[string]bool{"127.0.0.1:80": true, "127.0.0.2:80": false, "[::ffff:127.0.0.2]:80": false, "[::1]:80": false, "8.8.8.8:53": true, "nonsense": false} {
		err := p.control("tcp", addr, nil)
		if (err == nil) != want {
			t.Errorf("control(%s) = %v, want allowed %v", addr, err, want)
		}
	}
	// Through the dialer itself: a connection to a listening but refused address fails in Control.
	refusedSrv := serveOn(t, "127.0.0.2:0", ok)
	_, err := p.dialer.DialContext(context.Background(), "tcp", refusedSrv.Listener.Addr().String())
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("dialer to a refused address: %v", err)
	}
}

func TestDefaultClientRefusesLoopback(t *testing.T) {
	srv := serveOn(t, "127.0.0.1:0", ok)
	_, err := (&Client{}).Do(context.Background(), Request{URL: srv.URL + "/voice?secret=1"})
	if !errors.Is(err, ErrRefused) || Code(err) != CodeInvalidURL || srv.hits.Load() != 0 {
		t.Fatalf("default client: %v", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("query in the error: %v", err)
	}
	if Code(nil) != 0 || Code(errors.New("x")) != CodeRetrieval || Code(fmt.Errorf("w: %w", ErrStatus)) != CodeRetrieval {
		t.Fatal("Code of other errors")
	}
}
