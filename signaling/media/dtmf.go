package media

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// DTMFEvent is one RFC 4733 telephone-event payload.
type DTMFEvent struct {
	Digit    byte // '0'-'9', '*', '#', 'A'-'D'
	End      bool
	Volume   uint8
	Duration uint16 // in timestamp units (8 kHz)
}

const digitsByCode = "0123456789*#ABCD"

// ParseDTMF decodes a telephone-event payload. Events beyond the 16 DTMF
// codes (flash, tones) are an error.
func ParseDTMF(payload []byte) (DTMFEvent, error) {
	if len(payload) < 4 {
		return DTMFEvent{}, fmt.Errorf("telephone-event payload of %d bytes", len(payload))
	}
	if int(payload[0]) >= len(digitsByCode) {
		return DTMFEvent{}, fmt.Errorf("telephone-event %d is not a DTMF digit", payload[0])
	}
	return DTMFEvent{
		Digit:    digitsByCode[payload[0]],
		End:      payload[1]&0x80 != 0,
		Volume:   payload[1] & 0x3F,
		Duration: binary.BigEndian.Uint16(payload[2:4]),
	}, nil
}

// DTMFCode returns the event code of a digit.
func DTMFCode(d byte) (byte, error) {
	for i := 0; i < len(digitsByCode); i++ {
		if digitsByCode[i] == d {
			return byte(i), nil
		}
	}
	return 0, fmt.Errorf("%q is not a DTMF digit", d)
}

// MarshalDTMF encodes a telephone-event payload.
func MarshalDTMF(e DTMFEvent) ([]byte, error) {
	code, err := DTMFCode(e.Digit)
	if err != nil {
		return nil, err
	}
	b := []byte{code, e.Volume & 0x3F, 0, 0}
	if e.End {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], e.Duration)
	return b, nil
}

// DTMFDetector turns a stream of telephone-event packets into digits: one per
// event, however many times the sender repeats its packets (events are told
// apart by their RTP timestamp).
type DTMFDetector struct {
	PayloadType uint8
	lastTS      uint32
	seen        bool
}

var errNotRTP = errors.New("not an RTP packet")

// Feed inspects one RTP packet and returns a digit when a new event starts.
func (d *DTMFDetector) Feed(pkt []byte) (byte, bool) {
	h, payload, err := splitRTP(pkt)
	if err != nil || h.pt != d.PayloadType {
		return 0, false
	}
	ev, err := ParseDTMF(payload)
	if err != nil {
		return 0, false
	}
	if d.seen && h.ts == d.lastTS {
		return 0, false
	}
	d.seen, d.lastTS = true, h.ts
	return ev.Digit, true
}

type rtpHeader struct {
	pt     uint8
	marker bool
	seq    uint16
	ts     uint32
	ssrc   uint32
}

// splitRTP reads the fixed header and returns the payload (CSRCs, extension
// and padding removed) without allocating.
func splitRTP(p []byte) (rtpHeader, []byte, error) {
	if len(p) < 12 || p[0]>>6 != 2 {
		return rtpHeader{}, nil, errNotRTP
	}
	h := rtpHeader{
		pt:     p[1] & 0x7F,
		marker: p[1]&0x80 != 0,
		seq:    binary.BigEndian.Uint16(p[2:4]),
		ts:     binary.BigEndian.Uint32(p[4:8]),
		ssrc:   binary.BigEndian.Uint32(p[8:12]),
	}
	off := 12 + 4*int(p[0]&0x0F)
	if p[0]&0x10 != 0 { // header extension
		if len(p) < off+4 {
			return rtpHeader{}, nil, errNotRTP
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(p[off+2:off+4]))
	}
	end := len(p)
	if p[0]&0x20 != 0 && end > 0 { // padding
		end -= int(p[end-1])
	}
	if off > end {
		return rtpHeader{}, nil, errNotRTP
	}
	return h, p[off:end], nil
}
