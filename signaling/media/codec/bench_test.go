package codec

import (
	"testing"

	"github.com/parleyhq/parley/signaling/media"
)

// BenchmarkFrame reports the cost of one 20 ms frame through each codec
// (encode and decode separately) at each PCM rate; ns/op divided by 20 ms is
// the share of a core one direction of one stream takes.
func BenchmarkFrame(b *testing.B) {
	for _, c := range []media.RTPCodec{pcmu, pcma, opusC} {
		for _, rate := range []int{8000, 16000, 48000} {
			in := tone(440, rate, FrameSamples(rate), 8000, 0)
			enc, _ := NewEncoder(c, rate)
			dec, _ := NewDecoder(c, rate)
			payload, _ := enc.Encode(make([]byte, 0, MaxPayload), in)
			pcm := make([]int16, 0, MaxFrameSamples)
			b.Run(c.Name+"/"+itoa(rate)+"/encode", func(b *testing.B) {
				out := make([]byte, 0, MaxPayload)
				for b.Loop() {
					out, _ = enc.Encode(out[:0], in)
				}
			})
			b.Run(c.Name+"/"+itoa(rate)+"/decode", func(b *testing.B) {
				for b.Loop() {
					pcm, _ = dec.Decode(pcm[:0], payload)
				}
			})
		}
	}
}

func BenchmarkResample(b *testing.B) {
	for _, p := range [][2]int{{8000, 16000}, {16000, 8000}, {8000, 48000}, {48000, 8000}} {
		r, _ := NewResampler(p[0], p[1])
		in := tone(440, p[0], FrameSamples(p[0]), 8000, 0)
		out := make([]int16, 0, MaxFrameSamples)
		b.Run(itoa(p[0])+"-"+itoa(p[1]), func(b *testing.B) {
			for b.Loop() {
				out = r.Process(out[:0], in)
			}
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
