package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxAudioBytes bounds the audio files Parley decodes (about 100 minutes of
// 8 kHz µ-law, or 10 of 44.1 kHz PCM16 stereo).
const MaxAudioBytes = 50 << 20

// WAV format tags.
const (
	wavPCM        = 1
	wavALaw       = 6
	wavULaw       = 7
	wavExtensible = 0xFFFE
)

// ErrNotWAV is returned by DecodeWAV for data that is not a RIFF/WAVE file.
var ErrNotWAV = errors.New("not a RIFF/WAVE file")

// Audio is decoded mono audio.
type Audio struct {
	Rate    int
	Samples []int16
}

// DecodeWAV decodes a WAV file: PCM 8/16-bit, µ-law or A-law, any rate, one
// or more channels (mixed down to mono).
func DecodeWAV(data []byte) (Audio, error) {
	if len(data) > MaxAudioBytes {
		return Audio{}, fmt.Errorf("wav: larger than %d bytes", MaxAudioBytes)
	}
	if len(data) < 12 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return Audio{}, ErrNotWAV
	}
	var (
		haveFmt          bool
		format, channels uint16
		rate             uint32
		bits, blockAlign uint16
		samples          []byte
		haveData         bool
	)
	rest := data[12:]
	for len(rest) >= 8 {
		id := string(rest[0:4])
		size := binary.LittleEndian.Uint32(rest[4:8])
		rest = rest[8:]
		if uint64(size) > uint64(len(rest)) {
			if id == "data" { // streaming writers leave the size open; take what is there
				size = uint32(len(rest))
			} else {
				return Audio{}, fmt.Errorf("wav: chunk %q claims %d bytes, %d remain", id, size, len(rest))
			}
		}
		body := rest[:size]
		switch id {
		case "fmt ":
			if size < 16 {
				return Audio{}, fmt.Errorf("wav: fmt chunk of %d bytes", size)
			}
			format = binary.LittleEndian.Uint16(body[0:2])
			channels = binary.LittleEndian.Uint16(body[2:4])
			rate = binary.LittleEndian.Uint32(body[4:8])
			blockAlign = binary.LittleEndian.Uint16(body[12:14])
			bits = binary.LittleEndian.Uint16(body[14:16])
			if format == wavExtensible {
				if size < 26 {
					return Audio{}, errors.New("wav: extensible fmt chunk too short")
				}
				format = binary.LittleEndian.Uint16(body[24:26]) // sub-format GUID starts with the tag
			}
			haveFmt = true
		case "data":
			samples, haveData = body, true
		}
		rest = rest[size:]
		if size%2 == 1 && len(rest) > 0 {
			rest = rest[1:] // chunks are word-aligned
		}
	}
	if !haveFmt || !haveData {
		return Audio{}, errors.New("wav: missing fmt or data chunk")
	}
	if channels == 0 || channels > 8 || rate < 4000 || rate > 192000 {
		return Audio{}, fmt.Errorf("wav: unsupported %d channels at %d Hz", channels, rate)
	}
	var width int
	var decode func([]byte) int16
	switch {
	case format == wavPCM && bits == 16:
		width, decode = 2, func(b []byte) int16 { return int16(binary.LittleEndian.Uint16(b)) }
	case format == wavPCM && bits == 8:
		width, decode = 1, func(b []byte) int16 { return int16(int(b[0])-128) << 8 }
	case format == wavULaw && bits == 8:
		width, decode = 1, func(b []byte) int16 { return ULawDecode(b[0]) }
	case format == wavALaw && bits == 8:
		width, decode = 1, func(b []byte) int16 { return ALawDecode(b[0]) }
	default:
		return Audio{}, fmt.Errorf("wav: unsupported format %d with %d bits (want PCM 8/16-bit, µ-law or A-law)", format, bits)
	}
	frame := width * int(channels)
	if blockAlign != 0 && int(blockAlign) != frame {
		return Audio{}, fmt.Errorf("wav: block align %d does not match %d channels of %d bits", blockAlign, channels, bits)
	}
	n := len(samples) / frame
	out := make([]int16, n)
	for i := 0; i < n; i++ {
		sum := 0
		for c := 0; c < int(channels); c++ {
			off := i*frame + c*width
			sum += int(decode(samples[off : off+width]))
		}
		out[i] = int16(sum / int(channels))
	}
	return Audio{Rate: int(rate), Samples: out}, nil
}

// Resample converts audio to SampleRate by linear interpolation, after a
// moving-average low-pass when downsampling so that high frequencies do not
// fold back into the voice band.
func (a Audio) Resample() []int16 {
	if a.Rate == SampleRate || a.Rate <= 0 || len(a.Samples) == 0 {
		return a.Samples
	}
	src := a.Samples
	if a.Rate > SampleRate {
		k := a.Rate / SampleRate
		if k > 1 {
			smoothed := make([]int16, len(src))
			sum := 0
			for i, s := range src {
				sum += int(s)
				if i >= k {
					sum -= int(src[i-k])
				}
				w := k
				if i+1 < k {
					w = i + 1
				}
				smoothed[i] = int16(sum / w)
			}
			src = smoothed
		}
	}
	n := int(int64(len(src)) * SampleRate / int64(a.Rate))
	out := make([]int16, n)
	step := float64(a.Rate) / SampleRate
	for i := range out {
		pos := float64(i) * step
		j := int(pos)
		frac := pos - float64(j)
		s0 := float64(src[j])
		s1 := s0
		if j+1 < len(src) {
			s1 = float64(src[j+1])
		}
		out[i] = int16(s0 + (s1-s0)*frac)
	}
	return out
}

// DecodeAudio turns what a Play URL served into 8 kHz µ-law: a WAV file of
// any supported format, or headerless µ-law (audio/basic) otherwise.
func DecodeAudio(data []byte) ([]byte, error) {
	a, err := DecodeWAV(data)
	if errors.Is(err, ErrNotWAV) {
		if len(data) > MaxAudioBytes {
			return nil, fmt.Errorf("audio: larger than %d bytes", MaxAudioBytes)
		}
		return bytes.Clone(data), nil // raw µ-law
	}
	if err != nil {
		return nil, err
	}
	return PCMU.Encode(nil, a.Resample()), nil
}

// WAVWriter writes mono 16-bit PCM (8 kHz unless made with
// NewWAVWriterRate), patching the header sizes on Close.
type WAVWriter struct {
	w       io.WriteSeeker
	rate    int
	written uint32
	buf     []byte
	err     error
}

// NewWAVWriter writes the header of an 8 kHz file and returns a writer for
// samples.
func NewWAVWriter(w io.WriteSeeker) (*WAVWriter, error) { return NewWAVWriterRate(w, SampleRate) }

// NewWAVWriterRate is NewWAVWriter at another sample rate (the conference
// mixer records at its own rate, 8, 16 or 48 kHz).
func NewWAVWriterRate(w io.WriteSeeker, rate int) (*WAVWriter, error) {
	if rate < 4000 || rate > 192000 {
		return nil, fmt.Errorf("wav: sample rate %d", rate)
	}
	ww := &WAVWriter{w: w, rate: rate}
	if _, err := w.Write(wavHeader(0, rate)); err != nil {
		return nil, fmt.Errorf("wav header: %w", err)
	}
	return ww, nil
}

// Rate is the file's sample rate.
func (ww *WAVWriter) Rate() int { return ww.rate }

func wavHeader(dataBytes uint32, rate int) []byte {
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+dataBytes)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], wavPCM)
	binary.LittleEndian.PutUint16(h[22:], 1)
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(rate)*2)
	binary.LittleEndian.PutUint16(h[32:], 2)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], dataBytes)
	return h
}

// Write appends samples.
func (ww *WAVWriter) Write(samples []int16) error {
	if ww.err != nil {
		return ww.err
	}
	if cap(ww.buf) < 2*len(samples) {
		ww.buf = make([]byte, 2*len(samples))
	}
	buf := ww.buf[:2*len(samples)]
	for i, s := range samples {
		binary.LittleEndian.PutUint16(buf[2*i:], uint16(s))
	}
	if _, err := ww.w.Write(buf); err != nil {
		ww.err = fmt.Errorf("wav write: %w", err)
		return ww.err
	}
	ww.written += uint32(len(buf))
	return nil
}

// Samples is how many samples have been written.
func (ww *WAVWriter) Samples() int { return int(ww.written / 2) }

// Close patches the header with the final sizes.
func (ww *WAVWriter) Close() error {
	if ww.err != nil {
		return ww.err
	}
	if _, err := ww.w.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("wav close: %w", err)
	}
	if _, err := ww.w.Write(wavHeader(ww.written, ww.rate)); err != nil {
		return fmt.Errorf("wav close: %w", err)
	}
	_, err := ww.w.Seek(0, io.SeekEnd)
	return err
}
