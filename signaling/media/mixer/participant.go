package mixer

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/media/codec"
)

// Join describes a participant joining.
type Join struct {
	ID       string          // reported in Events; unique in the conference
	Endpoint *media.Endpoint // the participant's anchored leg; the mixer takes its sinks until Leave
	// Codec is the leg's audio codec as negotiated (its PT, name and rate):
	// what the participant sends and what it is sent. Other payload types
	// (telephone-event) reach Tap only.
	Codec media.RTPCodec
	// Tap, when not nil, sees every packet the participant sends, before the
	// mixer (DTMF watchers); it must not keep the slice.
	Tap         media.Sink
	Gain        float64 // applied to the participant's voice; 0 means 1 (unchanged)
	Muted       bool
	JitterDepth int // 0: the mixer's
	// Opus tunes the encoder of an Opus participant (bitrate, complexity,
	// FEC); zero values take media/codec's defaults.
	Opus codec.OpusOptions
}

// Participant is one leg in a conference. Its setters may be called from
// any goroutine; they take effect on the next frame.
type Participant struct {
	id     string
	m      *Mixer
	ep     *media.Endpoint
	codec  media.RTPCodec
	jitter *jitter
	dec    codec.Decoder
	enc    codec.Encoder
	tap    media.Sink

	// Control, under m.mu.
	gain     int32 // Q12
	muted    bool
	held     bool
	hold     Source
	private  bool         // coaching: heard only by target
	target   *Participant // nil while private: heard by no one
	announce Source
	recs     []*Recording
	gone     bool

	// The clock's state, under m.mu.
	contributes bool
	in          []int16 // this frame's voice after gain (zero when not contributing)
	out         []int16 // this frame's mix for the participant
	pend        []int16 // decoded audio not yet mixed
	payload     []byte  // the packet taken from the jitter buffer
	pkt         []byte  // the RTP packet sent
	ssrc        uint32
	seq         uint16
	ts          uint32
	marker      bool
	spk         speaker
	speaking    bool

	decodeErrs, encodeErrs, sendErrs, sent atomic.Uint64
}

// Join adds a participant; from the next frame it is mixed and sent the
// mix. The endpoint's RTP sink is the mixer's until Leave (its RTCP is not
// relayed).
func (m *Mixer) Join(j Join) (*Participant, error) {
	if j.Endpoint == nil {
		return nil, errors.New("mixer join: no endpoint")
	}
	dec, err := codec.NewDecoder(j.Codec, m.cfg.Rate)
	if err != nil {
		return nil, fmt.Errorf("mixer join %s: %w", j.ID, err)
	}
	var enc codec.Encoder
	if j.Codec.Is("opus") {
		enc, err = codec.NewOpusEncoder(m.cfg.Rate, j.Opus)
	} else {
		enc, err = codec.NewEncoder(j.Codec, m.cfg.Rate)
	}
	if err != nil {
		return nil, fmt.Errorf("mixer join %s: %w", j.ID, err)
	}
	depth := j.JitterDepth
	if depth <= 0 {
		depth = m.cfg.JitterDepth
	}
	var r [10]byte
	_, _ = rand.Read(r[:])
	room := codec.MaxFrameSamples
	p := &Participant{
		id: j.ID, m: m, ep: j.Endpoint, codec: j.Codec, tap: j.Tap,
		jitter: newJitter(j.Codec.PT&0x7F, depth, m.cfg.JitterCapacity),
		dec:    dec, enc: enc,
		muted: j.Muted,
		in:    make([]int16, m.n), out: make([]int16, m.n),
		pend:    make([]int16, 0, 2*room+m.n),
		payload: make([]byte, 0, maxPacket),
		pkt:     make([]byte, 12, 12+codec.MaxPayload),
		ssrc:    binary.BigEndian.Uint32(r[0:4]), seq: binary.BigEndian.Uint16(r[4:6]), ts: binary.BigEndian.Uint32(r[6:10]),
		marker: true,
		spk:    newSpeaker(m.cfg.Speaker, m.n),
	}
	p.setGain(j.Gain)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	m.parts = append(m.parts, p)
	m.mu.Unlock()
	j.Endpoint.SetSink(p.receive)
	j.Endpoint.SetRTCPSink(nil)
	return p, nil
}

// receive is the endpoint's sink (the socket reader's goroutine).
func (p *Participant) receive(pkt []byte) {
	if p.tap != nil {
		p.tap(pkt)
	}
	p.jitter.put(pkt)
}

// ID is the participant's ID.
func (p *Participant) ID() string { return p.id }

// Codec is the participant's codec.
func (p *Participant) Codec() media.RTPCodec { return p.codec }

// Leave removes the participant: its endpoint's sinks are cleared (the
// endpoint stays open, the caller's), whoever it coached stops hearing it,
// whoever coached it whispers to no one, and its recordings stop (still to
// be closed). It is safe to call more than once.
func (p *Participant) Leave() {
	m := p.m
	m.mu.Lock()
	if p.gone {
		m.mu.Unlock()
		return
	}
	m.parts = slices.DeleteFunc(m.parts, func(x *Participant) bool { return x == p })
	for _, o := range m.parts {
		if o.target == p {
			o.target = nil
		}
	}
	p.gone, p.recs = true, nil
	m.mu.Unlock()
	p.detach()
}

func (p *Participant) detach() {
	p.ep.SetSink(nil)
	p.ep.SetRTCPSink(nil)
}

func (p *Participant) setGain(g float64) {
	if g <= 0 || math.IsNaN(g) {
		g = 1
	}
	p.gain = int32(math.Round(min(g, 16) * 4096))
}

// SetGain scales the participant's voice in the mix (1 unchanged, 0.5 about
// −6 dB, at most 16); 0 means 1.
func (p *Participant) SetGain(g float64) {
	p.m.mu.Lock()
	p.setGain(g)
	p.m.mu.Unlock()
}

// SetMuted mutes the participant: it contributes nothing and still hears
// the conference.
func (p *Participant) SetMuted(muted bool) {
	p.m.mu.Lock()
	p.muted = muted
	p.m.mu.Unlock()
}

// SetHold holds the participant: it contributes nothing and hears music (a
// Loop, a QueueSource…) or, with nil, silence; SetHold(false, nil) resumes.
func (p *Participant) SetHold(held bool, music Source) {
	p.m.mu.Lock()
	p.held, p.hold = held, music
	p.m.mu.Unlock()
}

// SetCoaching makes the participant a coach of target: only target hears
// it, and it goes on hearing everyone. nil ends coaching: it is heard by all
// again.
func (p *Participant) SetCoaching(target *Participant) error {
	if target == p {
		return errors.New("mixer: a participant cannot coach itself")
	}
	if target != nil && target.m != p.m {
		return errors.New("mixer: coaching a participant of another conference")
	}
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	if target != nil && target.gone {
		return errors.New("mixer: coaching a participant that left")
	}
	p.private, p.target = target != nil, target
	return nil
}

// Announce plays src to this participant only (on top of what it hears),
// until replaced; nil stops it.
func (p *Participant) Announce(src Source) {
	p.m.mu.Lock()
	p.announce = src
	p.m.mu.Unlock()
}

// Record writes the participant's two streams to WAV files at the mixer's
// rate, from the same frame on: in, what it says (as mixed: after gain,
// silent while muted or held), and out, what it hears. Either may be nil.
func (p *Participant) Record(in, out *media.WAVWriter) (*Recording, error) {
	var ws []*media.WAVWriter
	tracks := 0
	if in != nil {
		ws = append(ws, in)
		tracks |= 1
	}
	if out != nil {
		ws = append(ws, out)
		tracks |= 2
	}
	if len(ws) == 0 {
		return nil, errors.New("record: no WAV writer")
	}
	r, err := newRecording(p.m.cfg.Rate, ws...)
	if err != nil {
		return nil, err
	}
	r.tracks = tracks
	m := p.m
	m.mu.Lock()
	if p.gone {
		m.mu.Unlock()
		r.stop = func() {}
		_ = r.Close()
		return nil, errors.New("record: the participant left")
	}
	p.recs = append(p.recs, r)
	m.mu.Unlock()
	r.stop = func() {
		m.mu.Lock()
		p.recs = slices.DeleteFunc(p.recs, func(x *Recording) bool { return x == r })
		m.mu.Unlock()
	}
	return r, nil
}

// ParticipantStats counts one participant's media.
type ParticipantStats struct {
	Jitter       JitterStats
	Sent         uint64 // packets sent
	DecodeErrors uint64
	EncodeErrors uint64
	SendErrors   uint64
}

// Stats returns the counts.
func (p *Participant) Stats() ParticipantStats {
	return ParticipantStats{Jitter: p.jitter.snapshot(), Sent: p.sent.Load(),
		DecodeErrors: p.decodeErrs.Load(), EncodeErrors: p.encodeErrs.Load(), SendErrors: p.sendErrs.Load()}
}

// Speaking reports whether the speaker detector holds the participant as
// speaking.
func (p *Participant) Speaking() bool {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	return p.speaking
}

// pull takes the participant's frame from its jitter buffer into p.in and
// decides whether it is mixed (m.mu held).
func (p *Participant) pull(m *Mixer) {
	n := m.n
	for pulls := 0; len(p.pend) < n && pulls < 4; pulls++ {
		var what int
		p.payload, what = p.jitter.take(p.payload[:cap(p.payload)])
		if what == takeNothing {
			break
		}
		if what == takePacket {
			var err error
			if p.pend, err = p.dec.Decode(p.pend, p.payload); err == nil {
				continue
			}
			p.decodeErrs.Add(1)
		}
		p.pend = p.dec.Conceal(p.pend)
	}
	heard := len(p.pend) > 0
	got := copy(p.in, p.pend)
	clear(p.in[got:])
	p.pend = p.pend[:copy(p.pend, p.pend[got:])]

	var energy int64
	if heard && !p.muted && !p.held {
		g := p.gain
		for i, v := range p.in {
			s := int32(v)
			if g != 4096 {
				s = max(-32768, min(32767, s*g>>12))
				p.in[i] = int16(s)
			}
			energy += int64(s) * int64(s)
		}
	}
	p.contributes = energy > 0 && !(m.cfg.NoiseGate > 0 && float64(energy) < m.cfg.NoiseGate*m.cfg.NoiseGate*float64(n))
	if !p.contributes {
		clear(p.in)
	}
	switch p.spk.feed(energy) {
	case 1:
		p.speaking = true
		if m.cfg.OnEvent != nil {
			m.cfg.OnEvent(Event{Participant: p.id, Speaking: true})
		}
	case -1:
		p.speaking = false
		if m.cfg.OnEvent != nil {
			m.cfg.OnEvent(Event{Participant: p.id, Speaking: false})
		}
	}
}

// push makes the participant's mix, sends it and records (m.mu held).
func (p *Participant) push(m *Mixer) {
	if p.held {
		if p.hold == nil || !p.hold.Read(p.out) {
			clear(p.out)
		}
	} else {
		acc := m.acc
		copy(acc, m.total)
		if p.contributes && !p.private {
			for i, v := range p.in {
				acc[i] -= int32(v)
			}
		}
		for _, w := range m.whisperers {
			if w.target == p {
				for i, v := range w.in {
					acc[i] += int32(v)
				}
			}
		}
		if p.announce != nil && p.announce.Read(m.scr) {
			for i, v := range m.scr {
				acc[i] += int32(v)
			}
		}
		clip(p.out, acc)
	}
	p.send()
	for _, r := range p.recs {
		switch r.tracks {
		case 1:
			r.frame(p.in)
		case 2:
			r.frame(p.out)
		default:
			r.frame(p.in, p.out)
		}
	}
}

func (p *Participant) send() {
	pkt := p.pkt[:12]
	pkt[0] = 0x80
	pkt[1] = p.codec.PT & 0x7F
	if p.marker {
		pkt[1] |= 0x80
	}
	binary.BigEndian.PutUint16(pkt[2:], p.seq)
	binary.BigEndian.PutUint32(pkt[4:], p.ts)
	binary.BigEndian.PutUint32(pkt[8:], p.ssrc)
	pkt, err := p.enc.Encode(pkt, p.out)
	p.ts += p.enc.TimestampStep()
	if err != nil {
		p.encodeErrs.Add(1)
		p.marker = true
		return
	}
	p.pkt = pkt[:12]
	p.seq++
	p.marker = false
	if err := p.ep.WriteRTP(pkt); err != nil {
		p.sendErrs.Add(1)
		return
	}
	p.sent.Add(1)
}
