package codec

import (
	"errors"
	"fmt"
	"strings"

	"github.com/parleyhq/parley/signaling/media"
)

// FramesPerSecond is the packet rate of every stream the codecs serve (20 ms).
const FramesPerSecond = 50

// FrameSamples is the number of PCM samples in 20 ms at rate.
func FrameSamples(rate int) int { return rate / FramesPerSecond }

// MaxFrameSamples bounds what one Decode appends: 120 ms at 48 kHz, the
// longest Opus packet.
const MaxFrameSamples = 48000 * 120 / 1000

// MaxPayload bounds what one Encode appends.
const MaxPayload = 1500

// ErrUnsupported means the codec (or the PCM rate asked of it) is not one
// this package implements, or this build lacks it (Opus without cgo).
var ErrUnsupported = errors.New("codec not supported")

// Decoder turns one RTP payload into PCM at the rate it was made for.
type Decoder interface {
	// Decode appends the payload's samples to dst (20 ms of samples for a
	// 20 ms packet). A malformed payload is an error and appends nothing.
	Decode(dst []int16, payload []byte) ([]int16, error)
	// Conceal appends one 20 ms frame standing in for a lost packet: the
	// codec's loss concealment (Opus) or silence.
	Conceal(dst []int16) []int16
	// Rate is the PCM sample rate of what Decode appends.
	Rate() int
}

// Encoder turns 20 ms of PCM into one RTP payload.
type Encoder interface {
	// Encode appends the payload for pcm, which holds exactly
	// FrameSamples(Rate()) samples.
	Encode(dst []byte, pcm []int16) ([]byte, error)
	// Rate is the PCM sample rate Encode takes.
	Rate() int
	// TimestampStep is the RTP timestamp increment of one frame, in the
	// codec's RTP clock (160 for G.711, 960 for Opus).
	TimestampStep() uint32
}

// Names are the rtpmap encoding names this package implements, in the order
// Parley prefers them when it picks a transcoding target.
var Names = []string{"PCMU", "PCMA", "opus"}

// Supported reports whether NewDecoder and NewEncoder can serve c.
func Supported(c media.RTPCodec) bool {
	switch {
	case c.Is("PCMU"), c.Is("PCMA"):
		return c.Rate == 8000
	case c.Is("opus"):
		return c.Rate == 48000 && opusAvailable
	}
	return false
}

func checkRate(rate int) error {
	switch rate {
	case 8000, 16000, 48000:
		return nil
	}
	return fmt.Errorf("%w: PCM rate %d (want 8000, 16000 or 48000)", ErrUnsupported, rate)
}

// NewDecoder makes a decoder for c producing PCM at rate (8000, 16000 or
// 48000).
func NewDecoder(c media.RTPCodec, rate int) (Decoder, error) {
	if err := checkRate(rate); err != nil {
		return nil, err
	}
	switch {
	case c.Is("PCMU") && c.Rate == 8000:
		return newG711Decoder(media.PCMU, rate)
	case c.Is("PCMA") && c.Rate == 8000:
		return newG711Decoder(media.PCMA, rate)
	case c.Is("opus") && c.Rate == 48000:
		return newOpusDecoder(rate)
	}
	return nil, fmt.Errorf("%w: %s/%d", ErrUnsupported, c.Name, c.Rate)
}

// NewEncoder makes an encoder for c taking PCM at rate (8000, 16000 or
// 48000).
func NewEncoder(c media.RTPCodec, rate int) (Encoder, error) {
	if err := checkRate(rate); err != nil {
		return nil, err
	}
	switch {
	case c.Is("PCMU") && c.Rate == 8000:
		return newG711Encoder(media.PCMU, rate)
	case c.Is("PCMA") && c.Rate == 8000:
		return newG711Encoder(media.PCMA, rate)
	case c.Is("opus") && c.Rate == 48000:
		return newOpusEncoder(rate, OpusOptions{})
	}
	return nil, fmt.Errorf("%w: %s/%d", ErrUnsupported, c.Name, c.Rate)
}

// Pick returns the first of offered (in the offerer's order) that this
// package can transcode, skipping telephone-event.
func Pick(offered []media.RTPCodec) (media.RTPCodec, bool) {
	for _, c := range offered {
		if !strings.EqualFold(c.Name, "telephone-event") && Supported(c) {
			return c, true
		}
	}
	return media.RTPCodec{}, false
}
