package codec

import (
	"errors"
	"math"
	"testing"

	"github.com/parleyhq/parley/signaling/media"
)

var (
	pcmu  = media.RTPCodec{PT: 0, Name: "PCMU", Rate: 8000, Channels: 1}
	pcma  = media.RTPCodec{PT: 8, Name: "PCMA", Rate: 8000, Channels: 1}
	opusC = media.RTPCodec{PT: 111, Name: "opus", Rate: 48000, Channels: 2}
)

// tone is n samples of a sine at freq Hz sampled at rate.
func tone(freq float64, rate, n int, amp float64, phase0 int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i+phase0)/float64(rate)))
	}
	return out
}

// ratio is media.ToneRatio at any rate: the Goertzel measure depends only on
// freq/rate.
func ratio(pcm []int16, freq float64, rate int) float64 {
	return media.ToneRatio(pcm, freq*media.SampleRate/float64(rate))
}

func rms(pcm []int16) float64 {
	var sum float64
	for _, s := range pcm {
		sum += float64(s) * float64(s)
	}
	return math.Sqrt(sum / float64(max(1, len(pcm))))
}

func TestG711TablesMatchReference(t *testing.T) {
	for s := math.MinInt16; s <= math.MaxInt16; s++ {
		v := int16(s)
		if got, want := linearToULaw[uint16(v)>>2], media.ULawEncode(v); got != want {
			t.Fatalf("µ-law %d: table %#x, reference %#x", v, got, want)
		}
		if got, want := linearToALaw[uint16(v)>>2], media.ALawEncode(v); got != want {
			t.Fatalf("A-law %d: table %#x, reference %#x", v, got, want)
		}
	}
	for b := range 256 {
		if ulawToLinear[b] != media.ULawDecode(byte(b)) || alawToLinear[b] != media.ALawDecode(byte(b)) {
			t.Fatalf("decode table %#x", b)
		}
	}
}

// TestToneThroughCodecs encodes a 1 kHz tone frame by frame at each PCM rate,
// decodes it with a fresh decoder and checks the tone survives (after the
// codec's and the resamplers' start-up delay).
func TestToneThroughCodecs(t *testing.T) {
	for _, c := range []media.RTPCodec{pcmu, pcma, opusC} {
		for _, rate := range []int{8000, 16000, 48000} {
			enc, err := NewEncoder(c, rate)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := NewDecoder(c, rate)
			if err != nil {
				t.Fatal(err)
			}
			if enc.Rate() != rate || dec.Rate() != rate {
				t.Fatalf("%s: rates %d %d", c.Name, enc.Rate(), dec.Rate())
			}
			n := FrameSamples(rate)
			var out []int16
			var payload []byte
			for f := range 50 {
				in := tone(1000, rate, n, 10000, f*n)
				payload, err = enc.Encode(payload[:0], in)
				if err != nil {
					t.Fatal(err)
				}
				before := len(out)
				out, err = dec.Decode(out, payload)
				if err != nil {
					t.Fatal(err)
				}
				if len(out)-before != n {
					t.Fatalf("%s@%d: frame decoded to %d samples, want %d", c.Name, rate, len(out)-before, n)
				}
			}
			tail := out[len(out)/2:]
			if r := ratio(tail, 1000, rate); r < 0.9 {
				t.Errorf("%s@%d: tone ratio %.3f after the round trip", c.Name, rate, r)
			}
			if l := rms(tail); l < 0.5*10000/math.Sqrt2 || l > 1.5*10000/math.Sqrt2 {
				t.Errorf("%s@%d: level %.0f, want about %.0f", c.Name, rate, l, 10000/math.Sqrt2)
			}
			if r := ratio(tail, 1700, rate); r > 0.05 {
				t.Errorf("%s@%d: energy at 1700 Hz %.3f", c.Name, rate, r)
			}
		}
	}
}

func TestConcealAndBadInput(t *testing.T) {
	for _, c := range []media.RTPCodec{pcmu, opusC} {
		dec, err := NewDecoder(c, 8000)
		if err != nil {
			t.Fatal(err)
		}
		if got := dec.Conceal(nil); len(got) != 160 {
			t.Fatalf("%s: conceal gave %d samples", c.Name, len(got))
		}
	}
	dec, _ := NewDecoder(opusC, 8000)
	keep := []int16{1, 2, 3}
	got, err := dec.Decode(keep, []byte{0xFF, 0xFF, 0xFF}) // code 3, a frame count of 63 and no frames
	if err == nil || len(got) != 3 {
		t.Fatalf("bad opus payload: %v, %d samples", err, len(got))
	}
	if _, err := dec.Decode(nil, nil); err == nil {
		t.Fatal("empty opus payload decoded")
	}
	enc, _ := NewEncoder(opusC, 8000)
	if _, err := enc.Encode(nil, make([]int16, 100)); err == nil {
		t.Fatal("opus encoded a 12.5 ms frame")
	}
	for _, bad := range []struct {
		c    media.RTPCodec
		rate int
	}{{media.RTPCodec{Name: "G729", Rate: 8000}, 8000}, {pcmu, 11025}, {media.RTPCodec{Name: "opus", Rate: 16000}, 8000}} {
		if _, err := NewDecoder(bad.c, bad.rate); !errors.Is(err, ErrUnsupported) {
			t.Errorf("decoder %v@%d: %v", bad.c, bad.rate, err)
		}
		if _, err := NewEncoder(bad.c, bad.rate); !errors.Is(err, ErrUnsupported) {
			t.Errorf("encoder %v@%d: %v", bad.c, bad.rate, err)
		}
	}
	if c, ok := Pick([]media.RTPCodec{{PT: 101, Name: "telephone-event", Rate: 8000}, {PT: 18, Name: "G729", Rate: 8000}, pcma}); !ok || c.Name != "PCMA" {
		t.Fatalf("pick %v %v", c, ok)
	}
}

func TestResamplerFilters(t *testing.T) {
	cases := []struct {
		from, to int
		pass     float64 // a tone that must survive
		stop     float64 // a tone above the lower Nyquist that must be removed (downsampling)
	}{
		{8000, 16000, 1000, 0}, {8000, 48000, 3000, 0}, {16000, 8000, 1000, 6000},
		{48000, 8000, 3000, 5000}, {48000, 16000, 1000, 9000}, {16000, 48000, 7000, 0},
	}
	for _, tc := range cases {
		r, err := NewResampler(tc.from, tc.to)
		if err != nil {
			t.Fatal(err)
		}
		n := FrameSamples(tc.from)
		var out []int16
		for f := range 25 {
			before := len(out)
			out = r.Process(out, tone(tc.pass, tc.from, n, 10000, f*n))
			if got := len(out) - before; got != FrameSamples(tc.to) {
				t.Fatalf("%d→%d: a frame gave %d samples", tc.from, tc.to, got)
			}
		}
		tail := out[len(out)/2:]
		if rt := ratio(tail, tc.pass, tc.to); rt < 0.95 {
			t.Errorf("%d→%d: %g Hz tone ratio %.3f", tc.from, tc.to, tc.pass, rt)
		}
		if l := rms(tail); math.Abs(l-10000/math.Sqrt2) > 0.05*10000 {
			t.Errorf("%d→%d: passband level %.0f", tc.from, tc.to, l)
		}
		if tc.stop == 0 {
			continue
		}
		r, _ = NewResampler(tc.from, tc.to)
		out = out[:0]
		for f := range 25 {
			out = r.Process(out, tone(tc.stop, tc.from, n, 10000, f*n))
		}
		// Sample dropping would fold the tone into the band at full level;
		// the low-pass must take it down by more than 40 dB.
		if l := rms(out[len(out)/2:]); l > 10000/math.Sqrt2/100 {
			t.Errorf("%d→%d: %g Hz leaked at rms %.0f", tc.from, tc.to, tc.stop, l)
		}
	}
	if _, err := NewResampler(8000, 11025); err == nil {
		t.Fatal("11025 Hz accepted")
	}
}

// TestNoAllocationPerFrame holds the hot path to zero allocations once the
// caller's buffers have room.
func TestNoAllocationPerFrame(t *testing.T) {
	for _, c := range []media.RTPCodec{pcmu, pcma, opusC} {
		for _, rate := range []int{8000, 16000, 48000} {
			enc, _ := NewEncoder(c, rate)
			dec, _ := NewDecoder(c, rate)
			in := tone(440, rate, FrameSamples(rate), 8000, 0)
			payload := make([]byte, 0, MaxPayload)
			pcm := make([]int16, 0, MaxFrameSamples)
			allocs := testing.AllocsPerRun(200, func() {
				var err error
				payload, err = enc.Encode(payload[:0], in)
				if err != nil {
					t.Fatal(err)
				}
				pcm, err = dec.Decode(pcm[:0], payload)
				if err != nil {
					t.Fatal(err)
				}
				pcm = dec.Conceal(pcm[:0])
			})
			if allocs != 0 {
				t.Errorf("%s@%d: %.1f allocations per frame", c.Name, rate, allocs)
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	enc, _ := NewEncoder(opusC, 8000)
	good, _ := enc.Encode(nil, tone(440, 8000, 160, 8000, 0))
	f.Add(good)
	f.Add([]byte{0xFF, 0xFF, 0xFF})
	f.Add([]byte{0xFC})
	decs := map[string]Decoder{}
	for _, c := range []media.RTPCodec{pcmu, pcma, opusC} {
		for _, rate := range []int{8000, 48000} {
			d, _ := NewDecoder(c, rate)
			decs[c.Name+string(rune(rate))] = d
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for name, d := range decs {
			out, err := d.Decode(nil, payload)
			if err == nil && len(out) > MaxFrameSamples*max(1, len(payload)/MaxFrameSamples+1) {
				t.Fatalf("%s: %d samples from %d bytes", name, len(out), len(payload))
			}
		}
	})
}
