//go:build linux

package udpreg

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// udpPair is a server socket and a client socket on loopback.
func udpPair(t *testing.T, network, addr string) (srv, cli *net.UDPConn) {
	t.Helper()
	srv, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	t.Cleanup(func() { srv.Close() })
	cli, err = net.DialUDP(network, nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return srv, cli
}

// settle gives loopback a moment to queue what was sent, so that one read
// finds several datagrams; the tests hold whether it does or not.
func settle() { time.Sleep(20 * time.Millisecond) }

func TestBatchReaderReadsQueuedDatagrams(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			srv, cli := udpPair(t, tc.network, tc.addr)
			const n = 5
			for i := range n {
				if _, err := cli.Write([]byte(fmt.Sprintf("datagram %d", i))); err != nil {
					t.Fatal(err)
				}
			}
			settle()
			r := newBatchReader(srv)
			if r == nil {
				t.Fatal("no batch reader for a UDP socket")
			}
			got := 0
			for got < n {
				if err := r.read(); err != nil {
					t.Fatal(err)
				}
				if r.n < 1 || r.n > recvBatch {
					t.Fatalf("read %d datagrams", r.n)
				}
				for i := range r.n {
					data, from, err := r.datagram(i)
					if err != nil {
						t.Fatal(err)
					}
					if want := fmt.Sprintf("datagram %d", got); string(data) != want {
						t.Fatalf("datagram %q, want %q", data, want)
					}
					if want := cli.LocalAddr().(*net.UDPAddr).AddrPort(); from != netip.AddrPortFrom(want.Addr().Unmap(), want.Port()) {
						t.Fatalf("from %v, want %v", from, want)
					}
					got++
				}
			}
		})
	}
}

// TestBatchReaderDualStack: on a socket bound to [::] (the default), an
// IPv4 peer is reported as its IPv4 address, not ::ffff:a.b.c.d.
func TestBatchReaderDualStack(t *testing.T) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Skipf("no dual-stack socket: %v", err)
	}
	defer srv.Close()
	cli, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: srv.LocalAddr().(*net.UDPAddr).Port})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	r := newBatchReader(srv)
	if err := r.read(); err != nil {
		t.Fatal(err)
	}
	data, from, err := r.datagram(0)
	if err != nil {
		t.Fatal(err)
	}
	if want := cli.LocalAddr().(*net.UDPAddr).AddrPort(); string(data) != "hello" || from != want || !from.Addr().Is4() {
		t.Fatalf("%q from %v, want hello from %v", data, from, want)
	}
}

// TestUDPConnBatched: the REGISTERs of a batch go to take and are handed
// on before ReadFrom returns another datagram to sipgo or waits; the other
// datagrams reach sipgo in order.
func TestUDPConnBatched(t *testing.T) {
	srv, cli := udpPair(t, "udp4", "127.0.0.1:0")
	var events []string
	c := &Conn{PacketConn: srv, batch: newBatchReader(srv),
		reject: func(net.PacketConn, net.Addr, []byte, string) { events = append(events, "reject") },
		take: func(data []byte, _ netip.AddrPort) bool {
			if strings.HasPrefix(string(data), "REGISTER") {
				events = append(events, "take "+string(data))
				return true
			}
			return false
		},
		flush: func() { events = append(events, "flush") },
	}
	for _, m := range []string{"REGISTER 1", "REGISTER 2", "OPTIONS 3", "REGISTER 4", "OPTIONS 5"} {
		if _, err := cli.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	settle()
	buf := make([]byte, 100)
	for _, want := range []string{"OPTIONS 3", "OPTIONS 5"} {
		n, addr, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != want || addr.String() != cli.LocalAddr().String() {
			t.Fatalf("ReadFrom: %q from %v, want %q from %v", buf[:n], addr, want, cli.LocalAddr())
		}
		events = append(events, "sipgo "+want)
	}
	// Whether the five came in one read or several, each REGISTER is taken
	// before the next datagram goes to sipgo and flushed before it.
	got := strings.Join(events, ", ")
	for _, order := range [][2]string{
		{"take REGISTER 2", "sipgo OPTIONS 3"},
		{"take REGISTER 4", "sipgo OPTIONS 5"},
	} {
		i, j := strings.Index(got, order[0]), strings.Index(got, order[1])
		if i < 0 || j < 0 || i > j || !strings.Contains(got[i:j], "flush") {
			t.Fatalf("events: %s\nwant %q, then a flush, before %q", got, order[0], order[1])
		}
	}
}
