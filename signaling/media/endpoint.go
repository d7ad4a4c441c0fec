package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// PortRange hands out RTP/RTCP port pairs (even RTP port, RTCP on the next)
// from a configured range, so that firewalls can be opened for exactly it.
type PortRange struct {
	mu       sync.Mutex
	min, max int
	next     int
	inUse    map[int]bool
}

// NewPortRange covers the even ports in [min, max-1].
func NewPortRange(min, max int) (*PortRange, error) {
	if min < 1024 || max > 65535 || max-min < 3 {
		return nil, fmt.Errorf("rtp port range %d-%d: want 1024 ≤ min, max ≤ 65535, at least two pairs", min, max)
	}
	if min%2 == 1 {
		min++
	}
	return &PortRange{min: min, max: max, next: min, inUse: map[int]bool{}}, nil
}

// ErrNoPorts means every pair of the range is in use.
var ErrNoPorts = errors.New("rtp port range exhausted")

// InUse reports how many pairs are allocated.
func (r *PortRange) InUse() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.inUse)
}

// Listen binds an endpoint on ip at the next free pair of the range. Pairs
// whose ports another process holds are skipped.
func (r *PortRange) Listen(ip netip.Addr) (*Endpoint, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pairs := (r.max - r.min + 1) / 2
	for i := 0; i < pairs; i++ {
		port := r.next
		r.next += 2
		if r.next+1 > r.max {
			r.next = r.min
		}
		if r.inUse[port] {
			continue
		}
		rtpConn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
		if err != nil {
			continue
		}
		rtcpConn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port+1))))
		if err != nil {
			rtpConn.Close()
			continue
		}
		r.inUse[port] = true
		e := &Endpoint{rtp: rtpConn, rtcp: rtcpConn, port: port, release: func() { r.free(port) }}
		e.local = netip.AddrPortFrom(ip, uint16(port))
		go e.readLoop(rtpConn, &e.sink, &e.remote, &e.stats.PacketsIn, &e.stats.BytesIn, false)
		go e.readLoop(rtcpConn, &e.rtcpSink, &e.remoteRTCP, &e.stats.RTCPIn, nil, true)
		return e, nil
	}
	return nil, fmt.Errorf("%w (%d-%d)", ErrNoPorts, r.min, r.max)
}

func (r *PortRange) free(port int) {
	r.mu.Lock()
	delete(r.inUse, port)
	r.mu.Unlock()
}

// Sink receives each packet an endpoint reads. The slice is only valid during
// the call: a sink that keeps data must copy it.
type Sink func(pkt []byte)

// Stats counts an endpoint's traffic. With a Cipher, SRTPFailed counts the
// packets dropped because they did not authenticate (a bad tag, too short)
// and SRTPReplayed those dropped as replays; neither reaches the sink.
type Stats struct {
	PacketsIn, PacketsOut, BytesIn, BytesOut, RTCPIn, RTCPOut, Foreign atomic.Uint64
	SRTPFailed, SRTPReplayed                                           atomic.Uint64
}

// Cipher protects what an endpoint sends and authenticates and decrypts what
// it receives: SRTP and SRTCP, implemented by media/srtp. Each method writes
// its output into dst's storage (growing it only when it is too small) and
// returns it. The endpoint calls the Unprotect
// methods from its socket readers and the Protect methods from its writers,
// one call at a time per direction.
type Cipher interface {
	ProtectRTP(dst, pkt []byte) ([]byte, error)
	UnprotectRTP(dst, pkt []byte) ([]byte, error)
	ProtectRTCP(dst, pkt []byte) ([]byte, error)
	UnprotectRTCP(dst, pkt []byte) ([]byte, error)
}

// ErrReplayed is what a Cipher returns (wrapped) for a packet it has already
// seen.
var ErrReplayed = errors.New("srtp: replayed packet")

type cipherBox struct{ c Cipher }

// peer is the remote address of one socket: the one signalled (SDP) until a
// packet arrives, then the source of the packets (symmetric RTP latching).
type peer struct {
	mu      sync.Mutex
	addr    netip.AddrPort
	latched bool
}

func (p *peer) get() netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// accept latches onto the first source and then refuses packets from others.
func (p *peer) accept(from netip.AddrPort) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.latched {
		p.addr, p.latched = from, true
		return true
	}
	return p.addr == from
}

// allows reports whether a packet from this source may be read: any source
// before latching, the latched one after.
func (p *peer) allows(from netip.AddrPort) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.latched || p.addr == from
}

// Endpoint is one leg's RTP and RTCP sockets.
type Endpoint struct {
	rtp, rtcp          *net.UDPConn
	port               int
	local              netip.AddrPort
	remote, remoteRTCP peer
	sink, rtcpSink     atomic.Pointer[Sink]
	stats              Stats
	closeOnce          sync.Once
	release            func()

	cipher  atomic.Pointer[cipherBox]
	rtpOut  sync.Mutex // with a cipher: serialises protecting into rtpBuf
	rtpBuf  []byte
	rtcpOut sync.Mutex
	rtcpBuf []byte
}

// Local is the RTP address to put in SDP.
func (e *Endpoint) Local() netip.AddrPort { return e.local }

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() *Stats { return &e.stats }

// SetRemote sets where to send before any packet arrives (from the peer's SDP).
func (e *Endpoint) SetRemote(rtpAddr netip.AddrPort) {
	e.remote.mu.Lock()
	if !e.remote.latched {
		e.remote.addr = rtpAddr
	}
	e.remote.mu.Unlock()
	e.remoteRTCP.mu.Lock()
	if !e.remoteRTCP.latched {
		e.remoteRTCP.addr = netip.AddrPortFrom(rtpAddr.Addr(), rtpAddr.Port()+1)
	}
	e.remoteRTCP.mu.Unlock()
}

// SetCipher makes the endpoint speak SRTP: every packet sent is protected
// and every packet received is authenticated and decrypted before it reaches
// the sink (or dropped and counted). Latching waits for the first packet that
// authenticates, so a stranger cannot take the stream over with garbage. Set
// it before the first packet (nil goes back to plain RTP).
func (e *Endpoint) SetCipher(c Cipher) {
	if c == nil {
		e.cipher.Store(nil)
		return
	}
	e.cipher.Store(&cipherBox{c})
}

// SetSink routes received RTP to s (nil drops it).
func (e *Endpoint) SetSink(s Sink) { storeSink(&e.sink, s) }

// SetRTCPSink routes received RTCP to s (nil drops it).
func (e *Endpoint) SetRTCPSink(s Sink) { storeSink(&e.rtcpSink, s) }

func storeSink(p *atomic.Pointer[Sink], s Sink) {
	if s == nil {
		p.Store(nil)
		return
	}
	p.Store(&s)
}

func (e *Endpoint) readLoop(c *net.UDPConn, sink *atomic.Pointer[Sink], remote *peer, packets, bytes *atomic.Uint64, rtcp bool) {
	buf := make([]byte, 1500)
	var plain []byte // decrypted packets, with a cipher
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		pkt := buf[:n]
		if box := e.cipher.Load(); box != nil {
			if !remote.allows(from) {
				e.stats.Foreign.Add(1)
				continue
			}
			if plain == nil {
				plain = make([]byte, 0, 1500)
			}
			if rtcp {
				plain, err = box.c.UnprotectRTCP(plain[:0], pkt)
			} else {
				plain, err = box.c.UnprotectRTP(plain[:0], pkt)
			}
			if err != nil {
				if errors.Is(err, ErrReplayed) {
					e.stats.SRTPReplayed.Add(1)
				} else {
					e.stats.SRTPFailed.Add(1)
				}
				continue
			}
			pkt = plain
		}
		if !remote.accept(from) {
			e.stats.Foreign.Add(1)
			continue
		}
		packets.Add(1)
		if bytes != nil {
			bytes.Add(uint64(n))
		}
		if s := sink.Load(); s != nil {
			(*s)(pkt)
		}
	}
}

// WriteRTP sends one RTP packet to the peer.
func (e *Endpoint) WriteRTP(pkt []byte) error {
	to := e.remote.get()
	if !to.IsValid() {
		return errors.New("rtp: no remote address yet")
	}
	if box := e.cipher.Load(); box != nil {
		e.rtpOut.Lock()
		defer e.rtpOut.Unlock()
		var err error
		if e.rtpBuf, err = box.c.ProtectRTP(e.rtpBuf[:0], pkt); err != nil {
			return fmt.Errorf("srtp protect: %w", err)
		}
		pkt = e.rtpBuf
	}
	if _, err := e.rtp.WriteToUDPAddrPort(pkt, to); err != nil {
		return fmt.Errorf("rtp write: %w", err)
	}
	e.stats.PacketsOut.Add(1)
	e.stats.BytesOut.Add(uint64(len(pkt)))
	return nil
}

// WriteRTCP sends one RTCP packet to the peer.
func (e *Endpoint) WriteRTCP(pkt []byte) error {
	to := e.remoteRTCP.get()
	if !to.IsValid() {
		return errors.New("rtcp: no remote address yet")
	}
	if box := e.cipher.Load(); box != nil {
		e.rtcpOut.Lock()
		defer e.rtcpOut.Unlock()
		var err error
		if e.rtcpBuf, err = box.c.ProtectRTCP(e.rtcpBuf[:0], pkt); err != nil {
			return fmt.Errorf("srtcp protect: %w", err)
		}
		pkt = e.rtcpBuf
	}
	if _, err := e.rtcp.WriteToUDPAddrPort(pkt, to); err != nil {
		return fmt.Errorf("rtcp write: %w", err)
	}
	e.stats.RTCPOut.Add(1)
	return nil
}

// Close closes both sockets and returns the pair to the range. It is safe to
// call more than once.
func (e *Endpoint) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.SetSink(nil)
		e.SetRTCPSink(nil)
		err = errors.Join(e.rtp.Close(), e.rtcp.Close())
		e.release()
	})
	return err
}

// PTMap rewrites payload types between legs that numbered the same codec
// differently (dynamic types such as Opus or telephone-event). Absent types
// pass unchanged.
type PTMap map[uint8]uint8

// Bridge relays RTP and RTCP between a and b without transcoding until
// Unbridge or Close. aToB maps a's payload types to b's, bToA the reverse.
// tapA, when not nil, sees each of a's packets before it is forwarded (to
// watch for a DTMF key, say); it must not keep the slice.
func Bridge(a, b *Endpoint, aToB, bToA PTMap, tapA Sink) {
	BridgeTaps(a, b, aToB, bToA, tapA, nil)
}

// BridgeTaps is Bridge with a tap on each side (either may be nil); a tap
// sees the packet before its payload type is mapped.
func BridgeTaps(a, b *Endpoint, aToB, bToA PTMap, tapA, tapB Sink) {
	a.SetSink(tapped(tapA, forward(b, aToB)))
	b.SetSink(tapped(tapB, forward(a, bToA)))
	a.SetRTCPSink(func(p []byte) { _ = b.WriteRTCP(p) })
	b.SetRTCPSink(func(p []byte) { _ = a.WriteRTCP(p) })
}

// Unbridge stops relaying between a and b.
func Unbridge(a, b *Endpoint) {
	for _, e := range []*Endpoint{a, b} {
		e.SetSink(nil)
		e.SetRTCPSink(nil)
	}
}

func tapped(tap, next Sink) Sink {
	if tap == nil {
		return next
	}
	return func(p []byte) { tap(p); next(p) }
}

func forward(to *Endpoint, m PTMap) Sink {
	return func(p []byte) {
		if len(p) < 12 || p[0]>>6 != 2 {
			return // not RTP version 2
		}
		if len(m) > 0 {
			if pt, ok := m[p[1]&0x7F]; ok {
				p[1] = p[1]&0x80 | pt // the read buffer is the endpoint's own; rewriting in place is safe
			}
		}
		_ = to.WriteRTP(p)
	}
}
