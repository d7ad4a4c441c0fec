//go:build cgo

package codec

import (
	"fmt"

	"gopkg.in/hraban/opus.v2"
)

const opusAvailable = true

// OpusOptions tune an Opus encoder; zero values take the defaults.
type OpusOptions struct {
	Bitrate    int  // bits/s; default 32000 (wideband speech)
	Complexity int  // 1–10; default 5, half of libopus' default CPU for speech that is hard to tell apart
	FEC        bool // in-band forward error correction (the peer's useinbandfec=1)
}

type opusDecoder struct {
	d    *opus.Decoder
	rate int
}

func newOpusDecoder(rate int) (*opusDecoder, error) {
	d, err := opus.NewDecoder(rate, 1)
	if err != nil {
		return nil, fmt.Errorf("opus decoder: %w", err)
	}
	return &opusDecoder{d: d, rate: rate}, nil
}

func (d *opusDecoder) Rate() int { return d.rate }

func (d *opusDecoder) Decode(dst []int16, payload []byte) ([]int16, error) {
	if len(payload) == 0 {
		return dst, fmt.Errorf("opus: empty payload")
	}
	n := len(dst)
	room := d.rate * 120 / 1000
	dst = grow(dst, room)
	got, err := d.d.Decode(payload, dst[n:n+room:n+room])
	if err != nil {
		return dst[:n], fmt.Errorf("opus decode: %w", err)
	}
	return dst[:n+got], nil
}

func (d *opusDecoder) Conceal(dst []int16) []int16 {
	n := len(dst)
	frame := FrameSamples(d.rate)
	dst = grow(dst, frame)
	if err := d.d.DecodePLC(dst[n : n+frame : n+frame]); err != nil {
		clear(dst[n:])
	}
	return dst
}

type opusEncoder struct {
	e    *opus.Encoder
	rate int
}

// NewOpusEncoder is NewEncoder for Opus with options.
func NewOpusEncoder(rate int, o OpusOptions) (Encoder, error) {
	if err := checkRate(rate); err != nil {
		return nil, err
	}
	return newOpusEncoder(rate, o)
}

func newOpusEncoder(rate int, o OpusOptions) (*opusEncoder, error) {
	e, err := opus.NewEncoder(rate, 1, opus.AppVoIP)
	if err != nil {
		return nil, fmt.Errorf("opus encoder: %w", err)
	}
	if o.Bitrate == 0 {
		o.Bitrate = 32000
	}
	if o.Complexity == 0 {
		o.Complexity = 5
	}
	for _, set := range []error{e.SetBitrate(o.Bitrate), e.SetComplexity(o.Complexity), e.SetInBandFEC(o.FEC)} {
		if set != nil {
			return nil, fmt.Errorf("opus encoder: %w", set)
		}
	}
	return &opusEncoder{e: e, rate: rate}, nil
}

func (e *opusEncoder) Rate() int             { return e.rate }
func (e *opusEncoder) TimestampStep() uint32 { return 960 }

func (e *opusEncoder) Encode(dst []byte, pcm []int16) ([]byte, error) {
	if len(pcm) != FrameSamples(e.rate) {
		return dst, fmt.Errorf("opus encode: %d samples, want %d (20 ms)", len(pcm), FrameSamples(e.rate))
	}
	n := len(dst)
	dst = growBytes(dst, MaxPayload)
	got, err := e.e.Encode(pcm, dst[n:n+MaxPayload:n+MaxPayload])
	if err != nil {
		return dst[:n], fmt.Errorf("opus encode: %w", err)
	}
	return dst[:n+got], nil
}
