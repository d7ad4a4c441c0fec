package codec

import (
	"fmt"
	"math"
)

// Resampler converts a stream of PCM between two rates by a rational factor
// L/M with a polyphase FIR: the input is (notionally) upsampled by L, low-pass
// filtered below the lower rate's Nyquist frequency (Kaiser window, about
// 60 dB stopband, passband to 85 % of it — 3.4 kHz for 8 kHz), and
// decimated by M. Only the outputs are computed, so 48 kHz → 8 kHz costs one
// filter evaluation per 8 kHz sample. It keeps the input history across
// calls, so a stream resampled frame by frame is continuous.
type Resampler struct {
	l, m  int
	taps  int         // per phase
	phase [][]float32 // phase[p][taps-1-k] multiplies input[i-k] for upsampled index i·L+p
	hist  []float32   // the last taps-1 inputs, then the current block
	pos   int         // upsampled index of the next output, relative to hist[0]
}

// NewResampler makes a resampler from one rate to another (each a multiple
// of 1000 Hz between 8 and 48 kHz).
func NewResampler(from, to int) (*Resampler, error) {
	if from < 8000 || to < 8000 || from > 48000 || to > 48000 || from%1000 != 0 || to%1000 != 0 {
		return nil, fmt.Errorf("%w: resampling %d Hz to %d Hz", ErrUnsupported, from, to)
	}
	g := gcd(from, to)
	l, m := to/g, from/g
	r := &Resampler{l: l, m: m}
	if l == 1 && m == 1 {
		return r, nil
	}
	// Design at the upsampled rate fs = from·L.
	fs := float64(from * l)
	nyq := float64(min(from, to)) / 2
	pass, stop := 0.85*nyq, nyq
	const atten = 60.0
	beta := 0.1102 * (atten - 8.7)
	n := int(math.Ceil((atten-8)/(2.285*2*math.Pi*(stop-pass)/fs))) + 1
	r.taps = (n + l - 1) / l
	n = r.taps * l
	fc := (pass + stop) / 2 / fs // cycles per upsampled sample
	proto := make([]float64, n)
	mid := float64(n-1) / 2
	for i := range proto {
		x := float64(i) - mid
		sinc := 2 * fc
		if x != 0 {
			sinc = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
		}
		w := bessel0(beta*math.Sqrt(1-math.Pow(2*x/float64(n-1), 2))) / bessel0(beta)
		proto[i] = sinc * w * float64(l) // gain L restores the level lost to zero-stuffing
	}
	r.phase = make([][]float32, l)
	for p := range l {
		r.phase[p] = make([]float32, r.taps)
		for k := range r.taps {
			r.phase[p][r.taps-1-k] = float32(proto[p+k*l]) // reversed: a plain dot product with the input window
		}
	}
	r.Reset()
	return r, nil
}

// Reset forgets the history (after a gap in the stream).
func (r *Resampler) Reset() {
	if r.taps == 0 {
		return
	}
	if cap(r.hist) < r.taps-1+MaxFrameSamples {
		r.hist = make([]float32, r.taps-1, r.taps-1+MaxFrameSamples)
	}
	r.hist = r.hist[:r.taps-1]
	clear(r.hist)
	r.pos = (r.taps - 1) * r.l
}

// Process appends src, resampled, to dst. Frames of 20 ms at rates that are
// multiples of 1 kHz come out as exactly 20 ms.
func (r *Resampler) Process(dst []int16, src []int16) []int16 {
	if r.taps == 0 {
		return append(dst, src...)
	}
	for len(src) > 0 { // in blocks, so that hist never outgrows its capacity
		block := src[:min(len(src), MaxFrameSamples)]
		src = src[len(block):]
		dst = r.process(dst, block)
	}
	return dst
}

func (r *Resampler) process(dst []int16, src []int16) []int16 {
	h := r.hist
	for _, s := range src {
		h = append(h, float32(s))
	}
	l, m, taps := r.l, r.m, r.taps
	pos := r.pos
	for {
		i := pos / l
		if i >= len(h) {
			break
		}
		coef := r.phase[pos%l]
		x := h[i-taps+1 : i+1]
		var acc float32
		x = x[:len(coef)]
		for k, c := range coef {
			acc += c * x[k]
		}
		v := int32(acc + 0.5)
		if acc < 0 {
			v = int32(acc - 0.5)
		}
		dst = append(dst, int16(max(-32768, min(32767, v))))
		pos += m
	}
	keep := taps - 1
	drop := len(h) - keep
	copy(h, h[drop:])
	r.hist = h[:keep]
	r.pos = pos - drop*l
	return dst
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// bessel0 is the zeroth-order modified Bessel function of the first kind.
func bessel0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / 2) / float64(k)
		sum += term * term
		if term*term < 1e-12*sum {
			break
		}
	}
	return sum
}
