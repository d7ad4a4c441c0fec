package mixer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/signaling/media"
)

// Frame is the mixer's clock period.
const Frame = 20 * time.Millisecond

// Config tunes a Mixer; zero values take the defaults.
type Config struct {
	// Rate is the PCM rate the conference mixes at: 8000 (the default, what
	// G.711 carries), 16000 or 48000 (wideband for Opus participants; G.711
	// ones are resampled).
	Rate int
	// JitterDepth is the number of 20 ms packets buffered per participant
	// before playout (its delay); default 3 (60 ms). Join can set it per
	// participant.
	JitterDepth int
	// JitterCapacity bounds the packets one participant's buffer holds
	// (rounded up to a power of two, at least 2 × JitterDepth; default 8):
	// a sender running further ahead loses its oldest packets.
	JitterCapacity int
	// NoiseGate, when set, is an RMS level (of 32767) below which a
	// participant's frame is not mixed, so that many idle lines do not add
	// up to noise. 0 mixes everything.
	NoiseGate float64
	Speaker   SpeakerConfig
	// OnEvent is called from the clock's goroutine when a participant starts
	// or stops speaking. It must return quickly (hand the event to a
	// channel) and must not call the mixer.
	OnEvent func(Event)
}

// Event is a speaker detector's report.
type Event struct {
	Participant string // the participant's ID
	Speaking    bool   // true: started speaking; false: stopped
}

// Mixer is one conference's audio: participants join with their endpoints,
// and every 20 ms (Run, or Tick from the caller's clock) each one's audio is
// taken from its jitter buffer, decoded, scaled by its gain and mixed; each
// participant is sent the mix minus its own voice, encoded in its codec.
type Mixer struct {
	cfg Config
	n   int // samples per frame

	mu         sync.Mutex
	parts      []*Participant
	whisperers []*Participant // scratch: this tick's private contributors
	announce   Source
	recs       []*Recording // mixed recordings
	closed     bool

	total []int32 // the public mix
	acc   []int32 // one listener's mix
	scr   []int16 // a source's frame
	mixed []int16 // the public mix, clipped, for recordings

	ticks, late, skipped atomic.Uint64
}

// ErrClosed is returned by Join on a closed mixer.
var ErrClosed = errors.New("mixer: closed")

// New makes a mixer; Run it (or call Tick every 20 ms) and Join participants.
func New(cfg Config) (*Mixer, error) {
	switch cfg.Rate {
	case 0:
		cfg.Rate = media.SampleRate
	case 8000, 16000, 48000:
	default:
		return nil, fmt.Errorf("mixer: rate %d (want 8000, 16000 or 48000)", cfg.Rate)
	}
	if cfg.JitterDepth <= 0 {
		cfg.JitterDepth = 3
	}
	if cfg.JitterCapacity <= 0 {
		cfg.JitterCapacity = 8
	}
	cfg.Speaker = cfg.Speaker.withDefaults()
	n := cfg.Rate / 50
	return &Mixer{cfg: cfg, n: n, total: make([]int32, n), acc: make([]int32, n), scr: make([]int16, n), mixed: make([]int16, n)}, nil
}

// Rate is the mixer's PCM rate.
func (m *Mixer) Rate() int { return m.cfg.Rate }

// Participants returns the participants, in the order they joined.
func (m *Mixer) Participants() []*Participant {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.parts)
}

// Announce plays src to the whole conference (every participant hears it,
// held ones excepted, and it is recorded in the mix) until it is replaced;
// nil stops it. A playback.Queue through NewQueueSource gives
// announcements with marks.
func (m *Mixer) Announce(src Source) {
	m.mu.Lock()
	m.announce = src
	m.mu.Unlock()
}

// Record writes the conference's mix — what a participant who says nothing
// hears: every voice but those whispering to one participant, and the
// announcements to all — to w (at the mixer's rate), from the next frame
// until the Recording is closed.
func (m *Mixer) Record(w *media.WAVWriter) (*Recording, error) {
	r, err := newRecording(m.cfg.Rate, w)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.recs = append(m.recs, r)
	m.mu.Unlock()
	r.stop = func() {
		m.mu.Lock()
		m.recs = slices.DeleteFunc(m.recs, func(x *Recording) bool { return x == r })
		m.mu.Unlock()
	}
	return r, nil
}

// Stats counts the clock's frames.
type Stats struct {
	Ticks uint64 // frames mixed
	// Late counts frames finished more than one frame period (20 ms) after
	// their scheduled time, or skipped because the clock fell more than
	// three frames behind (a stalled machine): a participant's jitter buffer
	// may have run dry for each.
	Late    uint64
	Skipped uint64 // of Late, the frames never mixed
}

// Stats returns the counts.
func (m *Mixer) Stats() Stats {
	return Stats{Ticks: m.ticks.Load(), Late: m.late.Load(), Skipped: m.skipped.Load()}
}

// Run mixes one frame every 20 ms on an absolute schedule until ctx ends
// (a frame that runs late is followed at once by the next; after more than
// three frames behind the schedule restarts, the missed frames skipped).
func (m *Mixer) Run(ctx context.Context) error {
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		due := start.Add(time.Duration(i) * Frame)
		m.Tick()
		now := time.Now()
		if now.Sub(due) > Frame {
			m.late.Add(1)
		}
		next := due.Add(Frame)
		if behind := now.Sub(next); behind > 3*Frame {
			missed := uint64(behind / Frame)
			m.late.Add(missed)
			m.skipped.Add(missed)
			start, i = now, -1
			next = now
		}
		t.Reset(next.Sub(now))
	}
}

// Close detaches every participant (their endpoints' sinks are cleared) and
// stops the recordings' feeds; Recordings still need their Close. A closed
// mixer's Tick does nothing.
func (m *Mixer) Close() {
	m.mu.Lock()
	parts := m.parts
	m.parts, m.closed, m.recs = nil, true, nil
	m.mu.Unlock()
	for _, p := range parts {
		p.detach()
	}
}

// Tick mixes and sends one frame now: what Run does every 20 ms, for a
// caller that drives several mixers from one clock. It allocates nothing.
func (m *Mixer) Tick() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.ticks.Add(1)
	clear(m.total)
	whisperers := m.whisperers[:0]
	for _, p := range m.parts {
		p.pull(m)
		if !p.contributes {
			continue
		}
		if p.private {
			whisperers = append(whisperers, p)
			continue
		}
		for i, v := range p.in {
			m.total[i] += int32(v)
		}
	}
	m.whisperers = whisperers
	if m.announce != nil && m.announce.Read(m.scr) {
		for i, v := range m.scr {
			m.total[i] += int32(v)
		}
	}
	if len(m.recs) > 0 {
		clip(m.mixed, m.total)
		for _, r := range m.recs {
			r.frame(m.mixed)
		}
	}
	for _, p := range m.parts {
		p.push(m)
	}
}

// clip converts a mix to 16 bits, saturating.
func clip(dst []int16, src []int32) {
	for i, v := range src {
		dst[i] = int16(max(-32768, min(32767, v)))
	}
}
