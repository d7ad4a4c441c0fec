package transcode

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/media/codec"
)

// Leg is one side of a bridge: its endpoint and the codecs its SDP exchange
// settled on (the first audio codec is what it sends; telephone-event
// included when negotiated). Tap, when not nil, sees each packet the leg
// sends before it is relayed (DTMF watchers, recording); it must not keep
// the slice.
type Leg struct {
	Endpoint *media.Endpoint
	Codecs   []media.RTPCodec
	Tap      media.Sink
}

// Mode says how a bridge relays.
type Mode int

// The modes.
const (
	PassThrough Mode = iota // packets relayed with payload types mapped
	Transcoding             // decoded and re-encoded
)

func (m Mode) String() string {
	if m == Transcoding {
		return "transcoding"
	}
	return "pass-through"
}

// ErrNoAudio means a leg has no audio codec.
var ErrNoAudio = errors.New("transcode: a leg has no audio codec")

// Bridge relays audio between two legs until Close.
type Bridge struct {
	a, b   *media.Endpoint
	mode   Mode
	aToB   *direction // nil in pass-through
	bToA   *direction
	aCodec media.RTPCodec
	bCodec media.RTPCodec
	closed atomic.Bool
}

// Shares reports whether the legs can pass packets through: each leg's
// sending codec is among the codecs the other negotiated.
func Shares(a, b []media.RTPCodec) bool {
	ca, _, okA := media.Session{Codecs: a}.First()
	cb, _, okB := media.Session{Codecs: b}.First()
	return okA && okB && has(b, ca) && has(a, cb)
}

func has(list []media.RTPCodec, c media.RTPCodec) bool {
	for _, x := range list {
		if x.Is(c.Name) && x.Rate == c.Rate {
			return true
		}
	}
	return false
}

// Connect bridges a and b: pass-through when they share a codec (see
// Shares), transcoding between their first audio codecs otherwise.
func Connect(a, b Leg) (*Bridge, error) {
	ca, evA, okA := media.Session{Codecs: a.Codecs}.First()
	cb, evB, okB := media.Session{Codecs: b.Codecs}.First()
	if !okA || !okB {
		return nil, ErrNoAudio
	}
	br := &Bridge{a: a.Endpoint, b: b.Endpoint, aCodec: ca, bCodec: cb}
	if Shares(a.Codecs, b.Codecs) {
		media.BridgeTaps(a.Endpoint, b.Endpoint, media.PTMapFor(a.Codecs, b.Codecs), media.PTMapFor(b.Codecs, a.Codecs), a.Tap, b.Tap)
		return br, nil
	}
	br.mode = Transcoding
	var err error
	if br.aToB, err = newDirection(ca, eventOf(a.Codecs, evA), cb, eventOf(b.Codecs, evB), b.Endpoint); err != nil {
		return nil, err
	}
	if br.bToA, err = newDirection(cb, eventOf(b.Codecs, evB), ca, eventOf(a.Codecs, evA), a.Endpoint); err != nil {
		return nil, err
	}
	a.Endpoint.SetSink(tapped(a.Tap, br.aToB.handle))
	b.Endpoint.SetSink(tapped(b.Tap, br.bToA.handle))
	a.Endpoint.SetRTCPSink(nil)
	b.Endpoint.SetRTCPSink(nil)
	return br, nil
}

func eventOf(codecs []media.RTPCodec, pt uint8) media.RTPCodec {
	for _, c := range codecs {
		if c.PT == pt && c.Is("telephone-event") {
			return c
		}
	}
	return media.RTPCodec{}
}

func tapped(tap, next media.Sink) media.Sink {
	if tap == nil {
		return next
	}
	return func(p []byte) { tap(p); next(p) }
}

// Mode is how the bridge relays.
func (br *Bridge) Mode() Mode { return br.mode }

// Codecs are the legs' sending codecs.
func (br *Bridge) Codecs() (a, b media.RTPCodec) { return br.aCodec, br.bCodec }

// Stats are the counts of one direction of a transcoding bridge.
type Stats struct {
	Packets       uint64 // audio packets decoded
	Frames        uint64 // frames encoded and sent
	Concealed     uint64 // frames made up for lost packets
	Late          uint64 // packets older than what was already played out, dropped
	Gaps          uint64 // gaps too long to conceal (silence suppression, DTX, hold)
	DecodeErrors  uint64 // payloads that did not decode
	Events        uint64 // telephone-event packets relayed
	EventsDropped uint64 // telephone-events the other leg did not negotiate
	Other         uint64 // packets of another payload type (comfort noise, …), dropped
	SendErrors    uint64
}

// Stats returns the counts from a to b and from b to a (zero in pass-through).
func (br *Bridge) Stats() (aToB, bToA Stats) {
	if br.mode != Transcoding {
		return Stats{}, Stats{}
	}
	return br.aToB.stats(), br.bToA.stats()
}

// Close stops relaying (the endpoints stay open).
func (br *Bridge) Close() {
	if br.closed.CompareAndSwap(false, true) {
		media.Unbridge(br.a, br.b)
	}
}

// maxConceal is the longest gap made up with concealment; longer ones are
// taken as silence suppression and skipped.
const maxConceal = 3

// direction decodes one leg's packets and sends them to the other leg. Its
// state is touched only by the source endpoint's reader goroutine.
type direction struct {
	dec      codec.Decoder
	enc      codec.Encoder
	to       *media.Endpoint
	fromRate uint32 // RTP clock of the source codec
	rate     int    // PCM working rate
	frame    int    // samples per 20 ms at rate
	pt       uint8  // outgoing audio PT

	inEventPT, outEventPT     uint8 // 0: none
	inEventRate, outEventRate uint32

	inPT     uint8 // the source's audio PT
	started  bool
	inSSRC   uint32
	nextTS   uint32 // source timestamp expected next
	lastSeq  uint16
	ssrc     uint32
	seq      uint16
	ts       uint32 // outgoing timestamp of the next frame
	marker   bool
	fifo     []int16
	out      []byte
	evActive bool
	evSrcTS  uint32
	evOutTS  uint32

	packets, frames, concealed, late, gaps, decErr, events, evDropped, sendErr, other atomic.Uint64
}

func newDirection(from, fromEvent, to, toEvent media.RTPCodec, toEP *media.Endpoint) (*direction, error) {
	rate := min(nativeRate(from), nativeRate(to))
	dec, err := codec.NewDecoder(from, rate)
	if err != nil {
		return nil, fmt.Errorf("transcode: %w", err)
	}
	enc, err := codec.NewEncoder(to, rate)
	if err != nil {
		return nil, fmt.Errorf("transcode: %w", err)
	}
	var r [10]byte
	_, _ = rand.Read(r[:])
	d := &direction{
		dec: dec, enc: enc, to: toEP, fromRate: uint32(from.Rate), rate: rate, frame: codec.FrameSamples(rate), pt: to.PT, inPT: from.PT,
		inEventPT: fromEvent.PT, outEventPT: toEvent.PT, inEventRate: uint32(fromEvent.Rate), outEventRate: uint32(toEvent.Rate),
		ssrc: binary.BigEndian.Uint32(r[0:4]), seq: binary.BigEndian.Uint16(r[4:6]), ts: binary.BigEndian.Uint32(r[6:10]), marker: true,
		fifo: make([]int16, 0, codec.MaxFrameSamples+2*codec.FrameSamples(rate)),
		out:  make([]byte, 0, 12+codec.MaxPayload),
	}
	if d.inEventRate == 0 {
		d.inEventRate = 8000
	}
	if d.outEventRate == 0 {
		d.outEventRate = 8000
	}
	return d, nil
}

// nativeRate is the PCM rate a codec carries (Opus: wideband and up).
func nativeRate(c media.RTPCodec) int {
	if c.Is("opus") {
		return 48000
	}
	return 8000
}

func (d *direction) stats() Stats {
	return Stats{Packets: d.packets.Load(), Frames: d.frames.Load(), Concealed: d.concealed.Load(), Late: d.late.Load(),
		Gaps: d.gaps.Load(), DecodeErrors: d.decErr.Load(), Events: d.events.Load(), EventsDropped: d.evDropped.Load(), Other: d.other.Load(), SendErrors: d.sendErr.Load()}
}

// handle is the source endpoint's sink.
func (d *direction) handle(pkt []byte) {
	h, payload, ok := parseRTP(pkt)
	if !ok {
		return
	}
	if d.inEventPT != 0 && h.pt == d.inEventPT {
		d.relayEvent(h, payload)
		return
	}
	if h.pt != d.inPT {
		d.other.Add(1) // comfort noise, or a codec the leg did not settle on
		return
	}
	if d.started && h.ssrc != d.inSSRC {
		d.started = false // a new source stream: start over, keep our own numbering
	}
	if !d.started {
		d.started, d.nextTS, d.lastSeq, d.inSSRC = true, h.ts, h.seq-1, h.ssrc
		d.fifo = d.fifo[:0]
	}
	gap := int32(h.ts - d.nextTS)
	if gap < 0 || int16(h.seq-d.lastSeq) <= 0 {
		d.late.Add(1)
		return
	}
	d.lastSeq = h.seq
	if gap > 0 {
		lostSamples := int64(gap) * int64(d.rate) / int64(d.fromRate)
		if lost := (lostSamples + int64(d.frame)/2) / int64(d.frame); lost <= maxConceal {
			for range lost {
				d.fifo = d.dec.Conceal(d.fifo)
				d.concealed.Add(1)
				d.drain()
			}
		} else {
			// Silence suppression or a long outage: skip ahead in our clock too.
			d.gaps.Add(1)
			d.fifo = d.fifo[:0]
			d.ts += uint32(int64(gap) * int64(d.enc.TimestampStep()) * codec.FramesPerSecond / int64(d.fromRate))
			d.marker = true
		}
	}
	before := len(d.fifo)
	var err error
	if d.fifo, err = d.dec.Decode(d.fifo, payload); err != nil {
		d.decErr.Add(1)
		d.fifo = d.dec.Conceal(d.fifo) // keep time moving
	}
	d.packets.Add(1)
	got := len(d.fifo) - before
	d.nextTS = h.ts + uint32(int64(got)*int64(d.fromRate)/int64(d.rate))
	d.drain()
}

// drain encodes and sends every whole frame in the FIFO.
func (d *direction) drain() {
	n := 0
	for len(d.fifo)-n >= d.frame {
		d.send(d.fifo[n : n+d.frame])
		n += d.frame
	}
	if n > 0 {
		d.fifo = d.fifo[:copy(d.fifo, d.fifo[n:])]
	}
}

func (d *direction) send(pcm []int16) {
	out := d.header(d.pt, d.marker, d.ts)
	out, err := d.enc.Encode(out, pcm)
	d.ts += d.enc.TimestampStep()
	d.marker = false
	if err != nil {
		d.sendErr.Add(1)
		return
	}
	d.out = out
	if d.to.WriteRTP(out) != nil {
		d.sendErr.Add(1)
		return
	}
	d.frames.Add(1)
}

func (d *direction) header(pt uint8, marker bool, ts uint32) []byte {
	out := d.out[:12]
	out[0] = 0x80
	out[1] = pt & 0x7F
	if marker {
		out[1] |= 0x80
	}
	binary.BigEndian.PutUint16(out[2:], d.seq)
	binary.BigEndian.PutUint32(out[4:], ts)
	binary.BigEndian.PutUint32(out[8:], d.ssrc)
	d.seq++
	return out
}

// relayEvent sends a telephone-event packet on in the outgoing stream: same
// event, our numbering, the event's timestamp placed at the outgoing
// stream's current time, its duration in the other leg's event clock.
func (d *direction) relayEvent(h rtpHeader, payload []byte) {
	if d.outEventPT == 0 {
		d.evDropped.Add(1)
		return
	}
	if len(payload) < 4 {
		return
	}
	newEvent := !d.evActive || h.ts != d.evSrcTS
	if newEvent {
		d.evActive, d.evSrcTS, d.evOutTS = true, h.ts, d.ts
	}
	dur := uint32(binary.BigEndian.Uint16(payload[2:4]))
	dur = min(0xFFFF, dur*d.outEventRate/d.inEventRate)
	out := d.header(d.outEventPT, newEvent, d.evOutTS)
	out = append(out, payload[0], payload[1], byte(dur>>8), byte(dur))
	d.out = out
	if d.to.WriteRTP(out) != nil {
		d.sendErr.Add(1)
		return
	}
	d.events.Add(1)
	if payload[1]&0x80 != 0 {
		// The event ended: audio resumes after it in our clock.
		audioClock := d.enc.TimestampStep() * codec.FramesPerSecond
		end := d.evOutTS + uint32(uint64(dur)*uint64(audioClock)/uint64(d.outEventRate))
		if int32(end-d.ts) > 0 {
			d.ts = end
		}
	}
}

type rtpHeader struct {
	pt   uint8
	seq  uint16
	ts   uint32
	ssrc uint32
}

// parseRTP reads the fixed header and returns the payload (CSRCs, extension
// and padding removed) without allocating.
func parseRTP(p []byte) (rtpHeader, []byte, bool) {
	if len(p) < 12 || p[0]>>6 != 2 {
		return rtpHeader{}, nil, false
	}
	h := rtpHeader{pt: p[1] & 0x7F, seq: binary.BigEndian.Uint16(p[2:4]), ts: binary.BigEndian.Uint32(p[4:8]), ssrc: binary.BigEndian.Uint32(p[8:12])}
	off := 12 + 4*int(p[0]&0x0F)
	if p[0]&0x10 != 0 {
		if len(p) < off+4 {
			return rtpHeader{}, nil, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(p[off+2:off+4]))
	}
	end := len(p)
	if p[0]&0x20 != 0 {
		end -= int(p[end-1])
	}
	if off > end {
		return rtpHeader{}, nil, false
	}
	return h, p[off:end], true
}
