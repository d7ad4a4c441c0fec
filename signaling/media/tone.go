package media

import "math"

// Tone returns n samples at 8 kHz of a sine wave of freq Hz and the given
// peak amplitude (0..32767).
func Tone(freq float64, n int, amplitude float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amplitude * math.Sin(2*math.Pi*freq*float64(i)/SampleRate))
	}
	return out
}

// ToneRatio measures how much of the signal's energy is at freq (Goertzel):
// about 1 for a pure tone at freq, near 0 for silence or other frequencies.
func ToneRatio(samples []int16, freq float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	coeff := 2 * math.Cos(2*math.Pi*freq/SampleRate)
	var s1, s2, energy float64
	for _, x := range samples {
		v := float64(x)
		energy += v * v
		s0 := v + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	if energy == 0 {
		return 0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * power / (float64(len(samples)) * energy)
}

// SampleRate is the rate of all media Parley generates and records.
const SampleRate = 8000
