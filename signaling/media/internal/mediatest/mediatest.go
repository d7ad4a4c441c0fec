// Package mediatest has the helpers the media packages' tests share: port
// ranges and endpoints on loopback, a paced tone source speaking any codec,
// and a receiver that decodes what arrives for a Goertzel check.
package mediatest

import (
	"context"
	"encoding/binary"
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/media/codec"
)

// Loopback is where the tests bind.
var Loopback = netip.MustParseAddr("127.0.0.1")

// Ports is a port range below the ephemeral range for one test.
func Ports(t testing.TB) *media.PortRange {
	t.Helper()
	r, err := media.NewPortRange(26000, 31999)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Listen binds an endpoint on loopback, closed when the test ends.
func Listen(t testing.TB, r *media.PortRange) *media.Endpoint {
	t.Helper()
	e, err := r.Listen(Loopback)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// Pair binds two endpoints that send to each other.
func Pair(t testing.TB, r *media.PortRange) (*media.Endpoint, *media.Endpoint) {
	a, b := Listen(t, r), Listen(t, r)
	a.SetRemote(b.Local())
	b.SetRemote(a.Local())
	return a, b
}

// Tone is n samples at rate of a sine at freq, starting at sample offset.
func Tone(freq float64, rate, n, offset int, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i+offset)/float64(rate)))
	}
	return out
}

// Ratio is media.ToneRatio for samples at any rate.
func Ratio(pcm []int16, freq float64, rate int) float64 {
	return media.ToneRatio(pcm, freq*media.SampleRate/float64(rate))
}

// RMS is the signal's root mean square.
func RMS(pcm []int16) float64 {
	var sum float64
	for _, s := range pcm {
		sum += float64(s) * float64(s)
	}
	return math.Sqrt(sum / float64(max(1, len(pcm))))
}

// Source sends a tone on ep in codec c (payload type c.PT) every 20 ms until
// ctx ends, as a phone would: its own SSRC, sequence numbers and timestamps.
// Each call of Source is one stream; it returns when ctx is done.
func Source(ctx context.Context, t testing.TB, ep *media.Endpoint, c media.RTPCodec, freq float64, ssrc uint32) {
	Stream{Codec: c, Freq: freq, SSRC: ssrc}.Run(ctx, t, ep)
}

// Stream is a paced tone source with options.
type Stream struct {
	Codec media.RTPCodec
	Freq  float64
	SSRC  uint32
	Amp   float64              // default 8000
	Skip  func(frame int) bool // frames not sent (loss, silence), numbering and time still advance
}

// Run sends until ctx ends.
func (s Stream) Run(ctx context.Context, t testing.TB, ep *media.Endpoint) {
	c, freq, ssrc := s.Codec, s.Freq, s.SSRC
	if s.Amp == 0 {
		s.Amp = 8000
	}
	enc, err := codec.NewEncoder(c, 8000)
	if err != nil {
		t.Error(err)
		return
	}
	pkt := make([]byte, 12, 12+codec.MaxPayload)
	pkt[0] = 0x80
	var seq uint16
	var ts uint32
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		pkt[1] = c.PT & 0x7F
		if i == 0 {
			pkt[1] |= 0x80
		}
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], ts)
		binary.BigEndian.PutUint32(pkt[8:], ssrc)
		out, err := enc.Encode(pkt[:12], Tone(freq, 8000, 160, i*160, s.Amp))
		if err != nil {
			t.Error(err)
			return
		}
		if s.Skip == nil || !s.Skip(i) {
			_ = ep.WriteRTP(out)
		}
		seq++
		ts += enc.TimestampStep()
		timer.Reset(time.Until(start.Add(time.Duration(i+1) * 20 * time.Millisecond)))
	}
}

// Receiver decodes the RTP an endpoint receives to 8 kHz PCM, by payload
// type, appending in arrival order. Install Sink on the endpoint.
type Receiver struct {
	mu      sync.Mutex
	decs    map[uint8]codec.Decoder
	pcm     []int16
	packets map[uint8]int
	ssrcs   map[uint32]bool
	last    []byte
}

// NewReceiver decodes the given codecs (by their PT).
func NewReceiver(t testing.TB, codecs ...media.RTPCodec) *Receiver {
	r := &Receiver{decs: map[uint8]codec.Decoder{}, packets: map[uint8]int{}, ssrcs: map[uint32]bool{}}
	for _, c := range codecs {
		if c.Is("telephone-event") {
			continue
		}
		d, err := codec.NewDecoder(c, 8000)
		if err != nil {
			t.Fatal(err)
		}
		r.decs[c.PT] = d
	}
	return r
}

// Sink is the endpoint sink.
func (r *Receiver) Sink(pkt []byte) {
	if len(pkt) < 12 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	pt := pkt[1] & 0x7F
	r.packets[pt]++
	r.ssrcs[binary.BigEndian.Uint32(pkt[8:12])] = true
	r.last = append(r.last[:0], pkt...)
	if d, ok := r.decs[pt]; ok {
		r.pcm, _ = d.Decode(r.pcm, pkt[12+4*int(pkt[0]&0x0F):])
	}
}

// Samples is a copy of what was decoded so far.
func (r *Receiver) Samples() []int16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int16(nil), r.pcm...)
}

// Reset forgets what was decoded.
func (r *Receiver) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pcm = r.pcm[:0]
}

// Packets counts the packets received with payload type pt.
func (r *Receiver) Packets(pt uint8) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.packets[pt]
}

// SSRCs is the number of distinct SSRCs seen.
func (r *Receiver) SSRCs() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ssrcs)
}

// Last is a copy of the last packet received.
func (r *Receiver) Last() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.last...)
}

// WaitSamples waits until n samples have been decoded or d passes, and
// returns them.
func (r *Receiver) WaitSamples(n int, d time.Duration) []int16 {
	deadline := time.Now().Add(d)
	for {
		s := r.Samples()
		if len(s) >= n || time.Now().After(deadline) {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// RTP builds one RTP packet.
func RTP(pt uint8, seq uint16, ts, ssrc uint32, payload []byte) []byte {
	pkt := make([]byte, 12, 12+len(payload))
	pkt[0], pkt[1] = 0x80, pt&0x7F
	binary.BigEndian.PutUint16(pkt[2:], seq)
	binary.BigEndian.PutUint32(pkt[4:], ts)
	binary.BigEndian.PutUint32(pkt[8:], ssrc)
	return append(pkt, payload...)
}

// Packets encodes n consecutive 20 ms frames of a tone at freq in c as RTP
// packets (sequence numbers from 0, the codec's timestamps): a load
// generator replays them instead of encoding as it goes.
func Packets(t testing.TB, c media.RTPCodec, freq float64, n int, ssrc uint32) [][]byte {
	t.Helper()
	enc, err := codec.NewEncoder(c, 8000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, n)
	for i := range out {
		payload, err := enc.Encode(nil, Tone(freq, 8000, 160, i*160, 8000))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = RTP(c.PT, uint16(i), uint32(i)*enc.TimestampStep(), ssrc, payload)
	}
	return out
}
