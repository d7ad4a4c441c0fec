package media

import (
	"sync"
	"time"
)

// Mixdown records a bridged call as one mono track: the G.711 audio of both
// directions, each placed by its RTP timestamps from the moment its first
// packet arrived, summed and written to a WAV as it goes (about two seconds
// behind the newest audio, so memory stays small for long calls). Packets
// of other codecs (Opus, telephone-event) are not decoded and leave their
// side silent.
type Mixdown struct {
	mu      sync.Mutex
	w       *WAVWriter
	start   time.Time
	sides   [2]mixSide
	buf     []int32 // samples from position flushed on
	flushed int64   // absolute sample position of buf[0]
	err     error
}

type mixSide struct {
	laws   map[uint8]Codec // payload type → G.711 law
	seen   bool
	baseTS uint32
	offset int64 // absolute position of baseTS
	pcm    []int16
}

// mixLag is how far behind the newest sample the mix is written out.
const mixLag = 2 * SampleRate

// NewMixdown records into w; codecsA and codecsB are the payload types of
// the two sides' packets as they are tapped.
func NewMixdown(w *WAVWriter, codecsA, codecsB []RTPCodec) *Mixdown {
	m := &Mixdown{w: w, start: time.Now()}
	for i, cs := range [][]RTPCodec{codecsA, codecsB} {
		m.sides[i].laws = map[uint8]Codec{}
		for _, c := range cs {
			switch {
			case c.Is("PCMU"):
				m.sides[i].laws[c.PT] = PCMU
			case c.Is("PCMA"):
				m.sides[i].laws[c.PT] = PCMA
			}
		}
	}
	return m
}

// Tap returns the sink for side 0 (A) or 1 (B): give it every RTP packet of
// that side. It does not keep the slice.
func (m *Mixdown) Tap(side int) Sink {
	return func(p []byte) { m.add(side, p) }
}

func (m *Mixdown) add(side int, p []byte) {
	h, payload, err := splitRTP(p)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &m.sides[side]
	law, ok := s.laws[h.pt]
	if !ok || m.w == nil {
		return
	}
	if !s.seen {
		s.seen, s.baseTS = true, h.ts
		s.offset = int64(time.Since(m.start) * SampleRate / time.Second)
	}
	pos := s.offset + int64(int32(h.ts-s.baseTS))
	s.pcm = law.Decode(s.pcm[:0], payload)
	if pos < m.flushed || pos+int64(len(s.pcm)) > m.flushed+int64(len(m.buf))+10*SampleRate {
		return // too late to mix, or a timestamp jump: drop the packet
	}
	end := pos + int64(len(s.pcm)) - m.flushed
	if int(end) > len(m.buf) {
		m.buf = append(m.buf, make([]int32, int(end)-len(m.buf))...)
	}
	for i, v := range s.pcm {
		m.buf[pos-m.flushed+int64(i)] += int32(v)
	}
	if len(m.buf) > 2*mixLag {
		m.flush(len(m.buf) - mixLag)
	}
}

// flush writes the first n mixed samples.
func (m *Mixdown) flush(n int) {
	out := make([]int16, n)
	for i, v := range m.buf[:n] {
		out[i] = int16(max(-32768, min(32767, v)))
	}
	if err := m.w.Write(out); err != nil && m.err == nil {
		m.err = err
	}
	m.buf = append(m.buf[:0], m.buf[n:]...)
	m.flushed += int64(n)
}

// Close writes what is left and finishes the WAV. Packets tapped after
// Close are ignored.
func (m *Mixdown) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.w == nil {
		return m.err
	}
	m.flush(len(m.buf))
	if err := m.w.Close(); err != nil && m.err == nil {
		m.err = err
	}
	m.w = nil
	return m.err
}

// Samples is the length of the recording so far, in samples.
func (m *Mixdown) Samples() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int(m.flushed) + len(m.buf)
}
