package media

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/pion/rtp"
)

// Frame is the packetisation interval of generated media.
const Frame = 20 * time.Millisecond

const samplesPerFrame = SampleRate * int(Frame/time.Millisecond) / 1000 // 160

const tsPerFrame = uint32(samplesPerFrame)

// Sender generates one RTP stream towards a leg: audio in the leg's G.711 law
// and RFC 4733 digits, with continuous sequence numbers and timestamps across
// everything it sends, paced in real time.
type Sender struct {
	ep      *Endpoint
	codec   Codec
	eventPT uint8 // 0: the leg did not negotiate telephone-event
	ssrc    uint32
	seq     uint16
	ts      uint32
	marker  bool
	buf     []byte
	frame   []byte // SendFrame's G.711 frame
}

// NewSender prepares a stream on ep. eventPT is the negotiated
// telephone-event payload type, or 0.
func NewSender(ep *Endpoint, codec Codec, eventPT uint8) *Sender {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return &Sender{ep: ep, codec: codec, eventPT: eventPT,
		ssrc: binary.BigEndian.Uint32(r[0:4]), seq: binary.BigEndian.Uint16(r[4:6]), ts: uint32(r[6])<<8 | uint32(r[7]), marker: true}
}

func (s *Sender) send(pt uint8, marker bool, ts uint32, payload []byte) error {
	h := rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: s.seq, Timestamp: ts, SSRC: s.ssrc}
	s.seq++
	n := h.MarshalSize()
	if cap(s.buf) < n+len(payload) {
		s.buf = make([]byte, n+len(payload))
	}
	buf := s.buf[:n+len(payload)]
	if _, err := h.MarshalTo(buf); err != nil {
		return fmt.Errorf("rtp header: %w", err)
	}
	copy(buf[n:], payload)
	return s.ep.WriteRTP(buf)
}

// pace runs fn once per frame, on an absolute schedule so that jitter in one
// frame does not accumulate, until fn returns false or ctx ends.
func pace(ctx context.Context, frames int, fn func(i int) error) error {
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for i := 0; i < frames; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if err := fn(i); err != nil {
			return err
		}
		t.Reset(time.Until(start.Add(time.Duration(i+1) * Frame)))
	}
	return nil
}

// PlayULaw streams 8 kHz µ-law audio, converted to the leg's law, in 20 ms
// packets. It returns when the audio ends or ctx is cancelled (barge-in).
func (s *Sender) PlayULaw(ctx context.Context, ulaw []byte) error {
	frames := (len(ulaw) + samplesPerFrame - 1) / samplesPerFrame
	frame := make([]byte, samplesPerFrame)
	return pace(ctx, frames, func(i int) error {
		chunk := ulaw[i*samplesPerFrame : min((i+1)*samplesPerFrame, len(ulaw))]
		n := copy(frame, chunk)
		for j := n; j < len(frame); j++ {
			frame[j] = 0xFF // µ-law silence
		}
		if s.codec == PCMA {
			for j, b := range frame {
				frame[j] = ALawEncode(ULawDecode(b))
			}
		}
		err := s.send(s.codec.PayloadType(), s.marker, s.ts, frame)
		s.marker = false
		s.ts += tsPerFrame
		return err
	})
}

// SendFrame sends one 20 ms frame of 8 kHz µ-law now, converted to the leg's
// law (a short frame is padded with silence, a long one cut): for callers
// that keep their own clock, such as a playback queue. It continues the
// stream's numbering and timestamps and allocates nothing.
func (s *Sender) SendFrame(ulaw []byte) error {
	if cap(s.frame) < samplesPerFrame {
		s.frame = make([]byte, samplesPerFrame)
	}
	frame := s.frame[:samplesPerFrame]
	n := copy(frame, ulaw)
	for j := n; j < len(frame); j++ {
		frame[j] = 0xFF
	}
	if s.codec == PCMA {
		for j, b := range frame {
			frame[j] = ALawEncode(ULawDecode(b))
		}
	}
	err := s.send(s.codec.PayloadType(), s.marker, s.ts, frame)
	s.marker = false
	s.ts += tsPerFrame
	return err
}

// Skip lets one frame's time pass without sending (nothing to play): the
// timestamps move on and the next frame sent starts a talkspurt (marker).
func (s *Sender) Skip() {
	s.ts += tsPerFrame
	s.marker = true
}

// Silence sends d of silence (Pause), keeping NAT bindings and the peer's
// jitter buffer alive.
func (s *Sender) Silence(ctx context.Context, d time.Duration) error {
	n := int(d/Frame) * samplesPerFrame
	silence := make([]byte, n)
	for i := range silence {
		silence[i] = 0xFF
	}
	return s.PlayULaw(ctx, silence)
}

// SendDigits sends DTMF as RFC 4733 events (100 ms tone, 50 ms gap); 'w' is a
// half-second pause. Without a negotiated telephone-event type it fails.
func (s *Sender) SendDigits(ctx context.Context, digits string) error {
	if s.eventPT == 0 {
		return fmt.Errorf("send digits: the leg did not negotiate telephone-event")
	}
	for _, d := range []byte(digits) {
		if d == 'w' || d == 'W' {
			if err := s.Silence(ctx, 500*time.Millisecond); err != nil {
				return err
			}
			continue
		}
		if _, err := DTMFCode(d); err != nil {
			return err
		}
		eventTS := s.ts
		const toneFrames = 5
		err := pace(ctx, toneFrames+2, func(i int) error {
			frame := min(i+1, toneFrames)
			ev := DTMFEvent{Digit: d, Volume: 10, Duration: uint16(frame * samplesPerFrame), End: i >= toneFrames-1}
			payload, err := MarshalDTMF(ev)
			if err != nil {
				return err
			}
			return s.send(s.eventPT, i == 0, eventTS, payload) // the end packet is sent three times, as RFC 4733 asks
		})
		s.ts += toneFrames * tsPerFrame
		if err != nil {
			return err
		}
		if err := s.Silence(ctx, 60*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// Capture decodes a leg's incoming G.711 into linear samples and its
// telephone-events into digits, for Record and Gather. Install Sink on the
// leg's endpoint; Samples and Digits deliver what arrives.
type Capture struct {
	Samples chan []int16
	Digits  chan byte
	dtmf    DTMFDetector
	lastSeq uint16
	ssrc    uint32
	started bool
}

// NewCapture prepares a capture; eventPT 0 means no telephone-event.
func NewCapture(eventPT uint8) *Capture {
	return &Capture{Samples: make(chan []int16, 256), Digits: make(chan byte, 32), dtmf: DTMFDetector{PayloadType: eventPT}}
}

// Sink is the endpoint sink that feeds the capture. Samples that cannot be
// delivered at once are dropped rather than stalling the socket reader.
func (c *Capture) Sink(pkt []byte) {
	h, payload, err := splitRTP(pkt)
	if err != nil {
		return
	}
	if c.dtmf.PayloadType != 0 && h.pt == c.dtmf.PayloadType {
		if d, ok := c.dtmf.Feed(pkt); ok {
			select {
			case c.Digits <- d:
			default:
			}
		}
		return
	}
	var codec Codec
	switch h.pt {
	case 0:
		codec = PCMU
	case 8:
		codec = PCMA
	default:
		return
	}
	// Late or duplicate packets of the stream are dropped; a new SSRC is a
	// new stream (a B2BUA switching from its own audio to a bridged party,
	// a phone restarting its sender) whose numbering starts anywhere.
	if c.started && h.ssrc == c.ssrc && h.seq-c.lastSeq > 0x8000 {
		return
	}
	c.started, c.lastSeq, c.ssrc = true, h.seq, h.ssrc
	select {
	case c.Samples <- codec.Decode(make([]int16, 0, len(payload)), payload):
	default:
	}
}
