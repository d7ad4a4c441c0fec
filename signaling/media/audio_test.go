package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestG711RoundTrip(t *testing.T) {
	for c := 0; c < 256; c++ {
		u := byte(c)
		if u != 0x7F && ULawEncode(ULawDecode(u)) != u { // 0x7F and 0xFF are both zero
			t.Errorf("µ-law %#02x → %d → %#02x", u, ULawDecode(u), ULawEncode(ULawDecode(u)))
		}
		if ALawEncode(ALawDecode(u)) != u {
			t.Errorf("A-law %#02x → %d → %#02x", u, ALawDecode(u), ALawEncode(ALawDecode(u)))
		}
	}
	// Quantisation error stays within the segment's step (≤ ~3 %).
	for s := -32768; s <= 32767; s += 7 {
		for _, c := range []Codec{PCMU, PCMA} {
			got := int(c.Decode(nil, c.Encode(nil, []int16{int16(s)}))[0])
			diff := got - s
			if diff < 0 {
				diff = -diff
			}
			limit := 1100
			if a := s; a < 0 {
				a = -a
				if a/16 > limit {
					limit = a / 16
				}
			} else if a/16 > limit {
				limit = a / 16
			}
			if diff > limit {
				t.Fatalf("codec %d: %d → %d (error %d)", c, s, got, diff)
			}
		}
	}
	if PCMU.PayloadType() != 0 || PCMA.PayloadType() != 8 {
		t.Fatal("static payload types")
	}
}

func TestToneRatio(t *testing.T) {
	tone := Tone(1000, 8000, 8000)
	if r := ToneRatio(tone, 1000); r < 0.9 {
		t.Fatalf("1 kHz tone at 1 kHz: %.3f", r)
	}
	if r := ToneRatio(tone, 440); r > 0.05 {
		t.Fatalf("1 kHz tone at 440 Hz: %.3f", r)
	}
	if r := ToneRatio(make([]int16, 800), 1000); r != 0 {
		t.Fatalf("silence: %.3f", r)
	}
	// Through µ-law the tone survives.
	through := PCMU.Decode(nil, PCMU.Encode(nil, tone))
	if r := ToneRatio(through, 1000); r < 0.9 {
		t.Fatalf("after µ-law: %.3f", r)
	}
}

func wavBytes(format, channels uint16, rate uint32, bits uint16, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+len(data)))
	b.WriteString("WAVEfmt ")
	binary.Write(&b, binary.LittleEndian, uint32(16))
	binary.Write(&b, binary.LittleEndian, format)
	binary.Write(&b, binary.LittleEndian, channels)
	binary.Write(&b, binary.LittleEndian, rate)
	binary.Write(&b, binary.LittleEndian, rate*uint32(channels)*uint32(bits)/8)
	binary.Write(&b, binary.LittleEndian, channels*bits/8)
	binary.Write(&b, binary.LittleEndian, bits)
	b.WriteString("LIST")
	binary.Write(&b, binary.LittleEndian, uint32(3))
	b.WriteString("abc\x00") // odd-sized chunk with its pad byte
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

func TestWAVWriteDecode(t *testing.T) {
	for _, rate := range []int{8000, 16000, 48000} {
		path := filepath.Join(t.TempDir(), "rec.wav")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w, err := NewWAVWriterRate(f, rate)
		if err != nil {
			t.Fatal(err)
		}
		tone := Tone(440, 4000, 10000)
		w.Write(tone[:1000])
		w.Write(tone[1000:3000])
		w.Write(tone[3000:]) // shorter than the buffer the writer keeps
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		data, _ := os.ReadFile(path)
		a, err := DecodeWAV(data)
		if err != nil || a.Rate != rate || w.Rate() != rate || len(a.Samples) != 4000 || a.Samples[123] != tone[123] || a.Samples[3500] != tone[3500] {
			t.Fatalf("decoded %d samples at %d Hz: %v", len(a.Samples), a.Rate, err)
		}
	}
	if _, err := NewWAVWriterRate(nil, 100); err == nil {
		t.Fatal("rate 100 accepted")
	}
}

func TestDecodeFormats(t *testing.T) {
	tone := Tone(1000, 1600, 12000)
	pcm16 := func(s []int16, ch int) []byte {
		var b []byte
		for _, x := range s {
			for c := 0; c < ch; c++ {
				b = binary.LittleEndian.AppendUint16(b, uint16(x))
			}
		}
		return b
	}
	tone16k := make([]int16, 3200)
	for i := range tone16k {
		tone16k[i] = tone[i/2] // crude but keeps 1 kHz dominant after resampling
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"pcm16 mono 8k", wavBytes(1, 1, 8000, 16, pcm16(tone, 1))},
		{"pcm16 stereo 8k", wavBytes(1, 2, 8000, 16, pcm16(tone, 2))},
		{"pcm16 mono 16k", wavBytes(1, 1, 16000, 16, pcm16(Tone16k(1000, 3200, 12000), 1))},
		{"ulaw 8k", wavBytes(7, 1, 8000, 8, PCMU.Encode(nil, tone))},
		{"alaw 8k", wavBytes(6, 1, 8000, 8, PCMA.Encode(nil, tone))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ulaw, err := DecodeAudio(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if len(ulaw) < 1500 || len(ulaw) > 1700 {
				t.Fatalf("%d samples, want ≈1600", len(ulaw))
			}
			if r := ToneRatio(PCMU.Decode(nil, ulaw), 1000); r < 0.8 {
				t.Fatalf("tone ratio %.2f", r)
			}
		})
	}
	raw := PCMU.Encode(nil, tone)
	if got, err := DecodeAudio(raw); err != nil || !bytes.Equal(got, raw) {
		t.Fatal("raw µ-law not passed through")
	}
	bad := map[string][]byte{
		"24-bit":        wavBytes(1, 1, 8000, 24, make([]byte, 30)),
		"float":         wavBytes(3, 1, 8000, 32, make([]byte, 40)),
		"zero channels": wavBytes(1, 0, 8000, 16, nil),
		"no data":       []byte("RIFF\x04\x00\x00\x00WAVE"),
		"lying chunk":   append([]byte("RIFF\x20\x00\x00\x00WAVEfmt \xff\xff\x00\x00"), make([]byte, 8)...),
	}
	for name, data := range bad {
		if _, err := DecodeWAV(data); err == nil || errors.Is(err, ErrNotWAV) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

// Tone16k is Tone at 16 kHz, for resampling tests.
func Tone16k(freq float64, n int, amp float64) []int16 {
	return Tone(freq/2, n, amp) // same phase steps at twice the rate
}

func FuzzDecodeWAV(f *testing.F) {
	f.Add(wavBytes(1, 1, 8000, 16, make([]byte, 64)))
	f.Add(wavBytes(7, 2, 8000, 8, make([]byte, 64)))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVE"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodeWAV(data)
		if err != nil {
			return
		}
		if a.Rate < 4000 || a.Rate > 192000 {
			t.Fatalf("accepted rate %d", a.Rate)
		}
		_ = a.Resample()
	})
}
