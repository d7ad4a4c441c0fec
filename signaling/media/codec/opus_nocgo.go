//go:build !cgo

package codec

import "fmt"

const opusAvailable = false

// OpusOptions tune an Opus encoder (Opus needs cgo; this build has none).
type OpusOptions struct {
	Bitrate    int
	Complexity int
	FEC        bool
}

func newOpusDecoder(int) (Decoder, error) {
	return nil, fmt.Errorf("%w: opus needs cgo and libopus", ErrUnsupported)
}

func newOpusEncoder(int, OpusOptions) (Encoder, error) {
	return nil, fmt.Errorf("%w: opus needs cgo and libopus", ErrUnsupported)
}

// NewOpusEncoder is NewEncoder for Opus with options.
func NewOpusEncoder(rate int, o OpusOptions) (Encoder, error) { return newOpusEncoder(rate, o) }
