package playback

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/media/internal/mediatest"
)

type event struct {
	m  Mark
	at time.Time
	rx int // samples the far end had received when the mark fired
}

// rig is a queue sending through a media.Sender on one loopback endpoint to
// another whose receiver decodes what arrives, with arrival times.
type rig struct {
	q      *Queue
	rx     *mediatest.Receiver
	mu     sync.Mutex
	events []event
	times  []time.Time
	cancel context.CancelFunc
	done   chan struct{}
}

func newRig(t *testing.T, law media.Codec, cfg Config) *rig {
	pt := law.PayloadType()
	c := media.RTPCodec{PT: pt, Name: map[uint8]string{0: "PCMU", 8: "PCMA"}[pt], Rate: 8000}
	return newCodecRig(t, c, cfg, func(ep *media.Endpoint) FrameSender { return media.NewSender(ep, law, 0) })
}

// newCodecRig is a rig whose queue sends through the FrameSender out makes
// on the sending endpoint; the far end decodes c.
func newCodecRig(t *testing.T, c media.RTPCodec, cfg Config, out func(*media.Endpoint) FrameSender) *rig {
	r := mediatest.Ports(t)
	a, b := mediatest.Pair(t, r)
	g := &rig{done: make(chan struct{})}
	g.rx = mediatest.NewReceiver(t, c)
	b.SetSink(func(p []byte) {
		g.rx.Sink(p)
		g.mu.Lock()
		g.times = append(g.times, time.Now())
		g.mu.Unlock()
	})
	cfg.OnMark = func(m Mark) {
		n := len(g.rx.Samples())
		g.mu.Lock()
		g.events = append(g.events, event{m: m, at: time.Now(), rx: n})
		g.mu.Unlock()
	}
	g.q = New(out(a), cfg)
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() { defer close(g.done); g.q.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-g.done })
	return g
}

func (g *rig) marks() []event {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]event(nil), g.events...)
}

func (g *rig) arrivals() []time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]time.Time(nil), g.times...)
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPlaysPacedWithMarks queues a tone in odd-sized chunks with marks
// between them: the far end hears the tone, paced at real time, and each mark
// fires once the audio before it has played out (its last frame sent and
// that frame's 20 ms gone by), in order.
func TestPlaysPacedWithMarks(t *testing.T) {
	for _, law := range []media.Codec{media.PCMU, media.PCMA} {
		g := newRig(t, law, Config{})
		tone := media.PCMU.Encode(nil, media.Tone(1000, 8000, 8000)) // 1 s
		start := time.Now()
		for off := 0; off < 4000; off += 333 { // the first half second in 333-byte chunks
			if !g.q.Push(tone[off:min(off+333, 4000)]) {
				t.Fatal("push refused")
			}
		}
		g.q.Mark("half")
		g.q.Push(tone[4000:])
		g.q.Mark("end")
		waitFor(t, 3*time.Second, func() bool { return len(g.marks()) == 2 })
		ev := g.marks()
		if ev[0].m.Name != "half" || ev[1].m.Name != "end" || ev[0].m.Cleared || ev[1].m.Cleared {
			t.Fatalf("marks %+v", ev)
		}
		for i, want := range []time.Duration{500 * time.Millisecond, time.Second} {
			if el := ev[i].at.Sub(start); el < want-5*time.Millisecond || el > want+300*time.Millisecond {
				t.Errorf("mark %q after %s, want about %s: not paced", ev[i].m.Name, el, want)
			}
		}
		if ev[0].rx < 4000-FrameBytes {
			t.Errorf("mark half fired with %d samples received, want ≈ 4000", ev[0].rx)
		}
		got := g.rx.WaitSamples(8000, time.Second)
		if len(got) != 8000 || mediatest.Ratio(got, 1000, 8000) < 0.8 {
			t.Fatalf("%d samples, ratio %.2f", len(got), mediatest.Ratio(got, 1000, 8000))
		}
		if s := g.q.Stats(); s.Played != 50 || s.DroppedChunks != 0 {
			t.Fatalf("stats %+v", s)
		}
	}
}

// TestClearWithinOneFrame clears five seconds of queued audio mid-play: at
// most the frame already on its way arrives afterwards, pending marks are
// reported as cleared, and new audio plays at once.
func TestClearWithinOneFrame(t *testing.T) {
	g := newRig(t, media.PCMU, Config{})
	g.q.Push(media.PCMU.Encode(nil, media.Tone(700, 40000, 8000)))
	g.q.Mark("never-played")
	waitFor(t, 2*time.Second, func() bool { return len(g.arrivals()) >= 10 })
	before := len(g.arrivals())
	cleared := time.Now()
	g.q.Clear()
	g.q.Mark("after-clear")
	time.Sleep(200 * time.Millisecond)
	after := g.arrivals()
	late := 0
	for _, at := range after[before:] {
		if at.After(cleared) {
			late++
		}
	}
	if late > 1 {
		t.Fatalf("%d frames arrived after Clear, want at most the one in flight", late)
	}
	ev := g.marks()
	if len(ev) != 2 || ev[0].m != (Mark{Name: "never-played", Cleared: true}) || ev[1].m != (Mark{Name: "after-clear"}) {
		t.Fatalf("marks %+v", ev)
	}
	if d := ev[0].at.Sub(cleared); d > 60*time.Millisecond {
		t.Errorf("cleared mark reported %s after Clear", d)
	}
	if g.q.Buffered() != 0 {
		t.Fatalf("buffered %s after clear", g.q.Buffered())
	}
	n := len(g.arrivals())
	g.q.Push(make([]byte, 800))
	waitFor(t, time.Second, func() bool { return len(g.arrivals()) >= n+5 })
}

// TestProducerNeverBlocks fills a small queue faster than it plays: Push
// returns at once, refusing (and counting) what does not fit.
func TestProducerNeverBlocks(t *testing.T) {
	g := newRig(t, media.PCMU, Config{MaxBuffered: 200 * time.Millisecond, MaxMarks: 2})
	chunk := make([]byte, 320)
	start := time.Now()
	accepted := 0
	for range 1000 {
		if g.q.Push(chunk) {
			accepted++
		}
	}
	if el := time.Since(start); el > 200*time.Millisecond {
		t.Fatalf("1000 pushes took %s", el)
	}
	if accepted > 6 || accepted < 4 {
		t.Fatalf("accepted %d chunks of 40 ms into 200 ms", accepted)
	}
	s := g.q.Stats()
	if s.DroppedChunks != uint64(1000-accepted) || s.DroppedBytes != uint64(320*(1000-accepted)) {
		t.Fatalf("stats %+v", s)
	}
	if !g.q.Mark("a") || !g.q.Mark("b") || g.q.Mark("c") || g.q.Stats().DroppedMarks != 1 {
		t.Fatal("marks beyond MaxMarks accepted")
	}
}

// TestIdle sends nothing when empty, or silence when asked.
func TestIdle(t *testing.T) {
	quiet := newRig(t, media.PCMU, Config{})
	comfort := newRig(t, media.PCMU, Config{IdleSilence: true})
	time.Sleep(200 * time.Millisecond)
	if n := len(quiet.arrivals()); n != 0 {
		t.Fatalf("empty queue sent %d packets", n)
	}
	if n := len(comfort.arrivals()); n < 5 {
		t.Fatalf("IdleSilence sent %d packets in 200 ms", n)
	}
	if s := quiet.q.Stats(); s.Idle < 5 || s.Played != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestOpusLeg plays through a CodecSender to a leg that speaks Opus: the far
// end decodes the tone from Opus packets with Opus timestamps.
func TestOpusLeg(t *testing.T) {
	opus := media.RTPCodec{PT: 111, Name: "opus", Rate: 48000, Channels: 2}
	g := newCodecRig(t, opus, Config{}, func(ep *media.Endpoint) FrameSender {
		s, err := NewCodecSender(ep, opus)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
	g.q.Push(media.PCMU.Encode(nil, media.Tone(1000, 8000, 8000)))
	g.q.Mark("done")
	waitFor(t, 3*time.Second, func() bool { return len(g.marks()) == 1 })
	got := g.rx.WaitSamples(8000, time.Second)
	if g.rx.Packets(111) != 50 {
		t.Fatalf("%d Opus packets, want 50", g.rx.Packets(111))
	}
	// The first frames are the codec's start-up; judge the rest.
	if r := mediatest.Ratio(got[1600:], 1000, 8000); r < 0.8 {
		t.Fatalf("1 kHz ratio %.2f over Opus", r)
	}
	last := g.rx.Last()
	if last[1]&0x7F != 111 {
		t.Fatalf("payload type %d", last[1]&0x7F)
	}
}

// TestPullAndGrow drives the queue with Next, as a mixer does: the audio
// comes out in order across the ring's growth (3 s pushed into a ring that
// starts at 1 s), marks fire one frame after their audio was taken, and
// Next reports idle once it is all out.
func TestPullAndGrow(t *testing.T) {
	var fired []Mark
	var at []int
	frames := 0
	q := New(nil, Config{OnMark: func(m Mark) { fired = append(fired, m); at = append(at, frames) }})
	audio := make([]byte, 3*8000)
	for i := range audio {
		audio[i] = byte(i % 251)
	}
	q.Next(new([FrameBytes]byte)) // consume nothing: read position 0
	q.Push(audio[:1000])
	q.Mark("first")
	q.Push(audio[1000:])
	q.Mark("all")
	var out []byte
	var f [FrameBytes]byte
	for q.Next(&f) {
		frames++
		out = append(out, f[:]...)
	}
	if len(out) != 150*FrameBytes || string(out[:len(audio)]) != string(audio) {
		t.Fatalf("%d bytes out, or not in order", len(out))
	}
	// "first" follows byte 1000, in frame 7 (the 7th taken): it fires on the next call.
	if len(fired) != 2 || fired[0].Name != "first" || at[0] != 7 || fired[1].Name != "all" || at[1] != 150 {
		t.Fatalf("marks %+v at frames %v", fired, at)
	}
	if s := q.Stats(); s.Played != 150 || s.Idle != 2 {
		t.Fatalf("stats %+v", s)
	}
}

type nopSender struct{}

func (nopSender) SendFrame([]byte) error { return nil }
func (nopSender) Skip()                  {}

func TestNoAllocationPerFrame(t *testing.T) {
	q := New(nopSender{}, Config{})
	chunk := make([]byte, FrameBytes)
	allocs := testing.AllocsPerRun(500, func() {
		q.Push(chunk)
		q.Tick()
		q.Tick() // idle
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per frame", allocs)
	}
	r := mediatest.Ports(t)
	a, b := mediatest.Pair(t, r)
	b.SetSink(func([]byte) {})
	s := media.NewSender(a, media.PCMA, 0)
	if allocs := testing.AllocsPerRun(200, func() { _ = s.SendFrame(chunk) }); allocs != 0 {
		t.Fatalf("Sender.SendFrame: %.1f allocations per frame", allocs)
	}
	cs, err := NewCodecSender(a, media.RTPCodec{PT: 111, Name: "opus", Rate: 48000, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(200, func() { _ = cs.SendFrame(chunk) }); allocs != 0 {
		t.Fatalf("CodecSender.SendFrame: %.1f allocations per frame", allocs)
	}
}
