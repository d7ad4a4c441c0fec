package playback

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// FrameSender sends one 20 ms frame of 8 kHz µ-law now; media.Sender and
// CodecSender are two.
type FrameSender interface {
	SendFrame(ulaw []byte) error
	// Skip accounts for a frame's time in which nothing was sent.
	Skip()
}

// FrameBytes is one 20 ms frame of 8 kHz µ-law.
const FrameBytes = 160

// Frame is the playout interval.
const Frame = 20 * time.Millisecond

// initialRing is the ring's first size (one second); it doubles as audio
// arrives, up to Config.MaxBuffered, so idle queues stay small.
const initialRing = 50 * FrameBytes

// Config tunes a Queue; zero values take the defaults.
type Config struct {
	MaxBuffered time.Duration // audio the queue holds at most; default 60 s
	MaxMarks    int           // pending marks at most; default 1024
	IdleSilence bool          // send silence when there is nothing to play
	// OnMark is called from the goroutine that plays (Run, Tick or Next)
	// when a mark is reached or cleared. It must return quickly (hand the
	// event to a channel) and must not call the queue.
	OnMark func(Mark)
}

// Mark is a named point in the queue.
type Mark struct {
	Name    string
	Cleared bool // the audio before it was dropped by Clear, not played
}

type mark struct {
	at      uint64 // absolute byte position the mark follows
	name    string
	cleared bool
}

// Queue plays queued µ-law out in real time. Push, Mark, Clear, Buffered
// and Stats may be called from any goroutine while one goroutine plays
// (Run, or Tick/Next from the caller's own clock).
type Queue struct {
	out FrameSender
	cfg Config
	max int // ring size limit in bytes

	mu      sync.Mutex
	ring    []byte
	written uint64 // absolute positions: bytes ever accepted, bytes ever taken
	read    uint64
	marks   []mark
	fired   []Mark // scratch for the marks one tick reports

	frame                                                                   [FrameBytes]byte
	played, idle, late, droppedChunks, droppedBytes, droppedMarks, sendErrs atomic.Uint64
}

// New makes a queue that sends through out (nil for a queue that is only
// pulled with Next, such as a mixer's announcement input).
func New(out FrameSender, cfg Config) *Queue {
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = time.Minute
	}
	if cfg.MaxMarks <= 0 {
		cfg.MaxMarks = 1024
	}
	limit := max(FrameBytes, int(cfg.MaxBuffered/Frame)*FrameBytes)
	return &Queue{out: out, cfg: cfg, max: limit, ring: make([]byte, min(initialRing, limit)), marks: make([]mark, 0, 16)}
}

// Push queues audio (a copy is kept). It never blocks: a chunk that does not
// fit whole is dropped (counted in Stats) and Push reports false.
func (q *Queue) Push(ulaw []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	need := int(q.written-q.read) + len(ulaw)
	if need > q.max {
		q.droppedChunks.Add(1)
		q.droppedBytes.Add(uint64(len(ulaw)))
		return false
	}
	if need > len(q.ring) {
		q.grow(need)
	}
	for len(ulaw) > 0 {
		at := int(q.written % uint64(len(q.ring)))
		n := copy(q.ring[at:], ulaw)
		ulaw = ulaw[n:]
		q.written += uint64(n)
	}
	return true
}

// grow enlarges the ring to hold at least need bytes (doubling, at most
// q.max), keeping the queued audio at its absolute positions.
func (q *Queue) grow(need int) {
	size := len(q.ring)
	for size < need {
		size *= 2
	}
	size = min(size, q.max)
	ring := make([]byte, size)
	for p := q.read; p < q.written; {
		from := int(p % uint64(len(q.ring)))
		n := min(len(q.ring)-from, int(q.written-p))
		to := int(p % uint64(size))
		n = min(n, size-to)
		copy(ring[to:to+n], q.ring[from:from+n])
		p += uint64(n)
	}
	q.ring = ring
}

// Mark puts a named mark after the audio queued so far. Beyond MaxMarks
// pending it is dropped (counted) and Mark reports false.
func (q *Queue) Mark(name string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.marks) >= q.cfg.MaxMarks {
		q.droppedMarks.Add(1)
		return false
	}
	q.marks = append(q.marks, mark{at: q.written, name: name})
	return true
}

// Clear drops the queued audio: the next frame played is not from it (the
// frame already sent, at most 20 ms, is the only one the far end still
// hears). Pending marks are reported with Cleared set, in order, on the next
// tick.
func (q *Queue) Clear() {
	q.mu.Lock()
	q.read = q.written
	for i := range q.marks {
		q.marks[i].cleared = true
	}
	q.mu.Unlock()
}

// Buffered is the audio waiting to be played.
func (q *Queue) Buffered() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	return time.Duration(q.written-q.read) * time.Second / 8000
}

// Stats counts what a queue did.
type Stats struct {
	Played        uint64 // frames of queued audio sent
	Idle          uint64 // ticks with nothing to play
	Late          uint64 // times Run fell more than three frames behind its schedule (a stalled machine) and restarted it
	DroppedChunks uint64 // Push calls refused: the queue was full
	DroppedBytes  uint64
	DroppedMarks  uint64
	SendErrors    uint64
}

// Stats returns the counters.
func (q *Queue) Stats() Stats {
	return Stats{Played: q.played.Load(), Idle: q.idle.Load(), Late: q.late.Load(), DroppedChunks: q.droppedChunks.Load(),
		DroppedBytes: q.droppedBytes.Load(), DroppedMarks: q.droppedMarks.Load(), SendErrors: q.sendErrs.Load()}
}

// Run plays until ctx ends, one frame every 20 ms on an absolute schedule
// (jitter in one tick does not accumulate; after a stall of more than three
// frames the schedule restarts rather than bursting to catch up).
func (q *Queue) Run(ctx context.Context) error {
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		q.Tick()
		next := start.Add(time.Duration(i+1) * Frame)
		if behind := time.Since(next); behind > 3*Frame {
			q.late.Add(1)
			start, i = time.Now(), -1
			next = start
		}
		t.Reset(time.Until(next))
	}
}

// Tick plays one frame through the queue's FrameSender now: what Run does
// every 20 ms, for callers that drive several queues from one clock.
func (q *Queue) Tick() {
	if q.Next(&q.frame) {
		if err := q.out.SendFrame(q.frame[:]); err != nil {
			q.sendErrs.Add(1)
		}
		return
	}
	if q.cfg.IdleSilence {
		if err := q.out.SendFrame(nil); err != nil {
			q.sendErrs.Add(1)
		}
		return
	}
	q.out.Skip()
}

// Next takes the next frame into dst (a short tail padded with µ-law
// silence) and reports whether there was audio to play; it is Tick without
// the sending, for a consumer that mixes the audio itself and calls Next on
// its own 20 ms clock. Marks fire when the audio before them has played
// out: on the call after the one that took their last byte, one frame
// later (a mark with nothing before it fires on the next call).
func (q *Queue) Next(dst *[FrameBytes]byte) bool {
	q.mu.Lock()
	// The audio up to read has now been heard in full: fire its marks.
	fired := q.fired[:0]
	keep := 0
	for _, m := range q.marks {
		if m.at <= q.read {
			fired = append(fired, Mark{Name: m.name, Cleared: m.cleared})
			continue
		}
		q.marks[keep] = m
		keep++
	}
	clear(q.marks[keep:])
	q.marks = q.marks[:keep]
	q.fired = fired

	n := min(int(q.written-q.read), FrameBytes)
	size := uint64(len(q.ring))
	for i := 0; i < n; i++ {
		dst[i] = q.ring[(q.read+uint64(i))%size]
	}
	q.read += uint64(n)
	q.mu.Unlock()

	for i := n; i < FrameBytes; i++ {
		dst[i] = 0xFF // µ-law silence pads a chunk's tail
	}
	if n > 0 {
		q.played.Add(1)
	} else {
		q.idle.Add(1)
	}
	if q.cfg.OnMark != nil {
		for i, m := range fired {
			q.cfg.OnMark(m)
			fired[i] = Mark{} // do not keep the names alive
		}
	}
	return n > 0
}
