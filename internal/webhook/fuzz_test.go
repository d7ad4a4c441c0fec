package webhook

import (
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// whatwgIPv4 is the WHATWG URL standard's IPv4 host parser (what browsers
// and, for the numeric forms, inet_aton read), written independently of the
// policy: a host it reads as an address must never pass as a name.
func whatwgIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(strings.TrimSuffix(host, "."), ".")
	if len(parts) == 0 || len(parts) > 4 {
		return netip.Addr{}, false
	}
	nums := make([]uint64, len(parts))
	for i, p := range parts {
		if p == "" {
			return netip.Addr{}, false
		}
		base := 10
		switch {
		case len(p) >= 2 && (p[:2] == "0x" || p[:2] == "0X"):
			p, base = p[2:], 16
			if p == "" {
				p = "0"
			}
		case len(p) >= 2 && p[0] == '0':
			p, base = p[1:], 8
		}
		n, err := strconv.ParseUint(p, base, 64)
		if err != nil || n > 0xFFFFFFFF {
			return netip.Addr{}, false
		}
		nums[i] = n
	}
	for _, n := range nums[:len(nums)-1] {
		if n > 255 {
			return netip.Addr{}, false
		}
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return netip.Addr{}, false
	}
	v := last
	for i, n := range nums[:len(nums)-1] {
		v += n << (8 * (3 - i))
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func TestWhatwgIPv4(t *testing.T) {
	for host, want := range map[string]string{"2130706433": "127.0.0.1", "0x7f.1": "127.0.0.1", "0": "0.0.0.0", "127.1": "127.0.0.1",
		"0177.0.0.1": "127.0.0.1", "1.2.3.4.": "1.2.3.4", "0x": "0.0.0.0"} {
		if a, ok := whatwgIPv4(host); !ok || a.String() != want {
			t.Errorf("%s → %v %v, want %s", host, a, ok, want)
		}
	}
	for _, host := range []string{"example.com", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "08"} {
		if a, ok := whatwgIPv4(host); ok {
			t.Errorf("%s → %v", host, a)
		}
	}
}

// FuzzCheckURL holds the URL/host normaliser to its promises: it never
// panics; what it accepts is an absolute http(s) URL whose host is either an
// allowed IP literal or a name no IPv4 parser reads as an address; what it
// refuses is a *RefusedError with a code; re-reading the accepted URL gives
// the host that was checked.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/voice", "http://user:pw@example.com:8080/x?y=1#z", "http://127.0.0.1/", "http://2130706433/",
		"http://0/", "http://0x7f.1/", "http://[::ffff:127.0.0.1]/", "http://[fe80::1%25eth0]/", "http://example.com@127.0.0.1/",
		"http://127.0.0.1#@example.com/", "http://bücher.example/", "ftp://x/", "http://%31%32%37.0.0.1/", "http://8.8.8.8./",
		"http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/", "http://169.254.169.254/latest", "http://example.com:0/",
		"http://1.2.3.4.5/", "http://example.0x/", "HTTP://EXAMPLE.COM./", "http://a..b/", "http://[::]/", "http://0.0.0.0/",
	} {
		f.Add(s)
	}
	p := NewPolicy(PolicyOptions{})
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := p.CheckURL(raw)
		if err != nil {
			var re *RefusedError
			if !errors.As(err, &re) || re.Code == 0 || re.Reason == "" {
				t.Fatalf("%q: error without a code: %v", raw, err)
			}
			if Code(err) != re.Code {
				t.Fatalf("Code %d != %d", Code(err), re.Code)
			}
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			t.Fatalf("%q: scheme %q accepted", raw, u.Scheme)
		}
		host := u.Hostname()
		if host == "" {
			t.Fatalf("%q: no host", raw)
		}
		if a, err := netip.ParseAddr(host); err == nil {
			if ok, why := p.Allowed(a); !ok {
				t.Fatalf("%q: refused address %s accepted (%s)", raw, a, why)
			}
		} else if a, ok := whatwgIPv4(host); ok {
			t.Fatalf("%q: host %q is IPv4 %s to a WHATWG parser, accepted as a name", raw, host, a)
		}
		again, err := url.Parse(u.String())
		if err != nil || again.Hostname() != host {
			t.Fatalf("%q: re-read as %q (%v), checked %q", raw, again.Hostname(), err, host)
		}
	})
}

// FuzzAddressForms: an IPv4 address is judged the same in each IPv6 form
// that carries it (mapped; NAT64 and 6to4 refuse when it is refused), with
// and without an allowed network.
func FuzzAddressForms(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "10.1.2.3", "8.8.8.8", "169.254.169.254", "100.64.0.1", "0.0.0.0", "255.255.255.255", "192.0.2.1"} {
		f.Add(netip.MustParseAddr(s).AsSlice())
	}
	allow, _ := ParseNetworks([]string{"127.0.0.0/8", "10.0.0.0/8"})
	policies := []*Policy{NewPolicy(PolicyOptions{}), NewPolicy(PolicyOptions{Allow: allow})}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 4 {
			return
		}
		v4 := netip.AddrFrom4([4]byte(b[:4]))
		mapped := netip.AddrFrom16(v4.As16())
		var nat64, six2four [16]byte
		copy(nat64[:], netip.MustParseAddr("64:ff9b::").AsSlice())
		copy(nat64[12:], b[:4])
		six2four[0], six2four[1] = 0x20, 0x02
		copy(six2four[2:], b[:4])
		for _, p := range policies {
			ok4, _ := p.Allowed(v4)
			if okm, why := p.Allowed(mapped); okm != ok4 {
				t.Fatalf("%s allowed %v but %s allowed %v (%s)", v4, ok4, mapped, okm, why)
			}
			if !ok4 {
				for _, a := range []netip.Addr{netip.AddrFrom16(nat64), netip.AddrFrom16(six2four)} {
					if ok, _ := p.Allowed(a); ok {
						t.Fatalf("%s refused but %s carrying it allowed", v4, a)
					}
				}
			}
		}
		if len(b) >= 16 {
			a := netip.AddrFrom16([16]byte(b[:16]))
			ok1, _ := policies[0].Allowed(a)
			ok2, _ := policies[1].Allowed(a)
			if ok1 && !ok2 {
				t.Fatalf("%s: allowing networks refused it", a)
			}
		}
	})
}
