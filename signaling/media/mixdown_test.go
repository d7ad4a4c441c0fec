package media

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pion/rtp"
)

func rtpPacket(t *testing.T, pt uint8, seq uint16, ts uint32, payload []byte) []byte {
	t.Helper()
	b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: 7}, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// feed sends samples as 20 ms packets of law with payload type pt.
func feed(t *testing.T, sink Sink, law Codec, pt uint8, ts uint32, samples []int16) {
	for i := 0; i+160 <= len(samples); i += 160 {
		sink(rtpPacket(t, pt, uint16(i/160), ts+uint32(i), law.Encode(nil, samples[i:i+160])))
	}
}

func TestMixdownMixesBothSides(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mix.wav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := NewWAVWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	a := []RTPCodec{{PT: 0, Name: "PCMU", Rate: 8000}, {PT: 101, Name: "telephone-event", Rate: 8000}}
	b := []RTPCodec{{PT: 8, Name: "PCMA", Rate: 8000}, {PT: 111, Name: "opus", Rate: 48000, Channels: 2}}
	m := NewMixdown(w, a, b)
	// Five seconds of 440 Hz from A (from timestamp 1000), one of 1 kHz from
	// B (from a very different timestamp); both start now, so they overlap.
	feed(t, m.Tap(1), PCMA, 8, 4_000_000_000, Tone(1000, 8000, 8000))
	feed(t, m.Tap(0), PCMU, 0, 1000, Tone(440, 5*8000, 8000))
	// What is not G.711, and what comes too late, is left out.
	m.Tap(0)(rtpPacket(t, 101, 9, 1000, []byte{1, 0, 0, 160}))
	m.Tap(1)(rtpPacket(t, 111, 9, 4_000_000_000, make([]byte, 80)))
	m.Tap(0)([]byte{0x80, 0})
	if m.Samples() < 5*8000 {
		t.Fatalf("%d samples mixed", m.Samples())
	}
	if m.flushed == 0 {
		t.Fatal("nothing written out while recording: the whole call would be held in memory")
	}
	feed(t, m.Tap(0), PCMU, 0, 1000, Tone(3000, 800, 8000)) // behind what was written: dropped
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m.Tap(0)(rtpPacket(t, 0, 1, 1000, make([]byte, 160))) // after Close: ignored
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	audio, err := DecodeWAV(data)
	if err != nil {
		t.Fatal(err)
	}
	s := audio.Samples
	if len(s) < 5*8000-160 || len(s) > 5*8000+800 {
		t.Fatalf("%d samples, want 5 s", len(s))
	}
	first, rest := s[:8000], s[8000:]
	if r4, r1 := ToneRatio(first, 440), ToneRatio(first, 1000); r4 < 0.3 || r1 < 0.3 {
		t.Fatalf("first second: 440 Hz %.2f, 1 kHz %.2f (want both)", r4, r1)
	}
	if r4, r1 := ToneRatio(rest, 440), ToneRatio(rest, 1000); r4 < 0.8 || r1 > 0.1 {
		t.Fatalf("after B stopped: 440 Hz %.2f, 1 kHz %.2f", r4, r1)
	}
	if r := ToneRatio(s, 3000); r > 0.05 {
		t.Fatalf("a late packet was mixed in (3 kHz ratio %.2f)", r)
	}
}
