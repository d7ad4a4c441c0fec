package playback

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/media/codec"
)

// CodecSender is a FrameSender for a leg of any codec media/codec serves
// (Opus from a browser, as well as G.711): each 8 kHz µ-law frame is decoded
// and encoded in the leg's codec, and sent as RTP with the sender's own
// SSRC, sequence numbers and timestamps. Use media.Sender for G.711 legs
// that also need RFC 4733 digits; CodecSender sends audio only.
type CodecSender struct {
	ep     *media.Endpoint
	enc    codec.Encoder
	pt     uint8
	ssrc   uint32
	seq    uint16
	ts     uint32
	marker bool
	pcm    []int16
	pkt    []byte
}

// NewCodecSender prepares a stream on ep in c (as negotiated: its PT and
// rate).
func NewCodecSender(ep *media.Endpoint, c media.RTPCodec) (*CodecSender, error) {
	enc, err := codec.NewEncoder(c, 8000)
	if err != nil {
		return nil, fmt.Errorf("playback sender: %w", err)
	}
	var r [10]byte
	_, _ = rand.Read(r[:])
	return &CodecSender{ep: ep, enc: enc, pt: c.PT & 0x7F, marker: true,
		ssrc: binary.BigEndian.Uint32(r[0:4]), seq: binary.BigEndian.Uint16(r[4:6]), ts: binary.BigEndian.Uint32(r[6:10]),
		pcm: make([]int16, FrameBytes), pkt: make([]byte, 12, 12+codec.MaxPayload)}, nil
}

// SendFrame encodes and sends one 20 ms frame (a short frame is padded with
// silence, a long one cut). It allocates nothing.
func (s *CodecSender) SendFrame(ulaw []byte) error {
	n := min(len(ulaw), FrameBytes)
	media.PCMU.Decode(s.pcm[:0], ulaw[:n])
	clear(s.pcm[n:])
	pkt := s.pkt[:12]
	pkt[0] = 0x80
	pkt[1] = s.pt
	if s.marker {
		pkt[1] |= 0x80
	}
	binary.BigEndian.PutUint16(pkt[2:], s.seq)
	binary.BigEndian.PutUint32(pkt[4:], s.ts)
	binary.BigEndian.PutUint32(pkt[8:], s.ssrc)
	pkt, err := s.enc.Encode(pkt, s.pcm)
	s.ts += s.enc.TimestampStep()
	if err != nil {
		return fmt.Errorf("playback sender: %w", err)
	}
	s.pkt = pkt[:12]
	s.seq++
	s.marker = false
	return s.ep.WriteRTP(pkt)
}

// Skip lets one frame's time pass without sending; the next frame sent
// starts a talkspurt (marker).
func (s *CodecSender) Skip() {
	s.ts += s.enc.TimestampStep()
	s.marker = true
}
