package media

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"
)

var lo = netip.MustParseAddr("127.0.0.1")

// phone is a plain UDP socket standing in for a SIP phone's RTP port.
type phone struct {
	c *net.UDPConn
}

func newPhone(t *testing.T) *phone {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &phone{c: c}
}

func (p *phone) addr() netip.AddrPort { return p.c.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *phone) send(t *testing.T, to netip.AddrPort, pt uint8, seq uint16) {
	t.Helper()
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 7}, Payload: make([]byte, 160)}
	b, _ := pkt.Marshal()
	if _, err := p.c.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatal(err)
	}
}

// recv counts the packets arriving within d and returns the payload types seen.
func (p *phone) recv(d time.Duration) (int, map[uint8]int) {
	pts := map[uint8]int{}
	n := 0
	buf := make([]byte, 1500)
	p.c.SetReadDeadline(time.Now().Add(d))
	for {
		m, _, err := p.c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return n, pts
		}
		var pkt rtp.Packet
		if pkt.Unmarshal(buf[:m]) == nil {
			pts[pkt.PayloadType]++
			n++
		}
	}
}

func newRange(t *testing.T) *PortRange {
	t.Helper()
	r, err := NewPortRange(42000, 42999)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func listen(t *testing.T, r *PortRange) *Endpoint {
	t.Helper()
	e, err := r.Listen(lo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestBridgeLatchesAndRelays(t *testing.T) {
	r := newRange(t)
	a, b := listen(t, r), listen(t, r)
	pa, pb, stranger := newPhone(t), newPhone(t), newPhone(t)
	// The caller's SDP names an address it does not receive on (NAT); latching fixes it.
	a.SetRemote(netip.MustParseAddrPort("127.0.0.2:9"))
	b.SetRemote(pb.addr())
	Bridge(a, b, PTMap{101: 96}, PTMap{96: 101}, nil)

	for i := 0; i < 20; i++ {
		pa.send(t, a.Local(), 0, uint16(i))
	}
	pa.send(t, a.Local(), 101, 100)
	if n, pts := pb.recv(300 * time.Millisecond); n != 21 || pts[0] != 20 || pts[96] != 1 {
		t.Fatalf("callee got %d packets %v, want 20 PCMU + 1 event remapped to 96", n, pts)
	}
	for i := 0; i < 10; i++ {
		pb.send(t, b.Local(), 0, uint16(i))
	}
	pb.send(t, b.Local(), 96, 50)
	if n, pts := pa.recv(300 * time.Millisecond); n != 11 || pts[101] != 1 {
		t.Fatalf("caller got %d packets %v after latching", n, pts)
	}
	stranger.send(t, a.Local(), 0, 1)
	time.Sleep(50 * time.Millisecond)
	if a.Stats().Foreign.Load() != 1 {
		t.Fatalf("foreign packets %d, want 1", a.Stats().Foreign.Load())
	}
	if n, _ := pb.recv(100 * time.Millisecond); n != 0 {
		t.Fatal("a stranger's packet was relayed")
	}
	Unbridge(a, b)
	pa.send(t, a.Local(), 0, 99)
	if n, _ := pb.recv(100 * time.Millisecond); n != 0 {
		t.Fatal("relayed after Unbridge")
	}
}

func TestPlayCaptureAndDigits(t *testing.T) {
	for _, codec := range []Codec{PCMU, PCMA} {
		r := newRange(t)
		a, b := listen(t, r), listen(t, r)
		a.SetRemote(b.Local())
		capture := NewCapture(101)
		b.SetSink(capture.Sink)
		s := NewSender(a, codec, 101)
		tone := PCMU.Encode(nil, Tone(1000, 4000, 10000)) // 0.5 s
		start := time.Now()
		if err := s.PlayULaw(context.Background(), tone); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < 450*time.Millisecond || el > 900*time.Millisecond {
			t.Fatalf("0.5 s of audio took %s: pacing is off", el)
		}
		var got []int16
		timeout := time.After(time.Second)
	collect:
		for len(got) < 4000 {
			select {
			case s := <-capture.Samples:
				got = append(got, s...)
			case <-timeout:
				break collect
			}
		}
		if len(got) != 4000 || ToneRatio(got, 1000) < 0.8 {
			t.Fatalf("codec %d: captured %d samples, tone ratio %.2f", codec, len(got), ToneRatio(got, 1000))
		}
		if err := s.SendDigits(context.Background(), "1w#"); err != nil {
			t.Fatal(err)
		}
		var digits []byte
		for len(digits) < 2 {
			select {
			case d := <-capture.Digits:
				digits = append(digits, d)
			case <-time.After(time.Second):
				t.Fatalf("digits %q, want 1#", digits)
			}
		}
		if string(digits) != "1#" {
			t.Fatalf("digits %q", digits)
		}
		select {
		case d := <-capture.Digits:
			t.Fatalf("extra digit %q: repeated end packets counted twice", d)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestSenderCancelAndNoEvents(t *testing.T) {
	r := newRange(t)
	a, b := listen(t, r), listen(t, r)
	a.SetRemote(b.Local())
	s := NewSender(a, PCMU, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.PlayULaw(ctx, make([]byte, 8000*5)); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("cancelled play: %v after %s", err, time.Since(start))
	}
	if err := s.SendDigits(context.Background(), "1"); err == nil {
		t.Fatal("sent digits without telephone-event")
	}
}

func TestPortsAndGoroutinesReturn(t *testing.T) {
	base := runtime.NumGoroutine()
	r, err := NewPortRange(24000, 24009) // 5 pairs, below the ephemeral range (32768+) so that no other socket takes one
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		var eps []*Endpoint
		for {
			e, err := r.Listen(lo)
			if errors.Is(err, ErrNoPorts) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			eps = append(eps, e)
		}
		if len(eps) != 5 || r.InUse() != 5 {
			t.Fatalf("round %d: %d endpoints, %d in use", round, len(eps), r.InUse())
		}
		for _, e := range eps {
			e.Close()
			e.Close() // idempotent
		}
		if r.InUse() != 0 {
			t.Fatalf("%d pairs still in use", r.InUse())
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Fatalf("goroutines %d, baseline %d", n, base)
	}
	if _, err := NewPortRange(80, 90); err == nil {
		t.Fatal("privileged range accepted")
	}
}

func TestDTMFPayload(t *testing.T) {
	for _, d := range []byte("0123456789*#ABCD") {
		b, err := MarshalDTMF(DTMFEvent{Digit: d, End: true, Volume: 10, Duration: 800})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := ParseDTMF(b)
		if err != nil || ev.Digit != d || !ev.End || ev.Duration != 800 || ev.Volume != 10 {
			t.Fatalf("%q: %+v %v", d, ev, err)
		}
	}
	if _, err := ParseDTMF([]byte{16, 0, 0, 0}); err == nil {
		t.Fatal("flash accepted as a digit")
	}
	if _, err := MarshalDTMF(DTMFEvent{Digit: 'x'}); err == nil {
		t.Fatal("marshalled x")
	}
}

func FuzzSplitRTP(f *testing.F) {
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, Extension: true, ExtensionProfile: 0xBEDE,
		Extensions: []rtp.Extension{{}}, CSRC: []uint32{1}}, Payload: []byte{1, 2, 3}}
	b, _ := pkt.Marshal()
	f.Add(b)
	f.Add([]byte{0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		_, payload, err := splitRTP(p)
		if err == nil && len(payload) > len(p) {
			t.Fatal("payload longer than packet")
		}
		var d DTMFDetector
		d.Feed(p)
		NewCapture(101).Sink(p)
	})
}
