package mixer

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/media/internal/mediatest"
	"github.com/parleyhq/parley/signaling/media/playback"
)

var (
	pcmu = media.RTPCodec{PT: 0, Name: "PCMU", Rate: 8000}
	pcma = media.RTPCodec{PT: 8, Name: "PCMA", Rate: 8000}
	opus = media.RTPCodec{PT: 111, Name: "opus", Rate: 48000, Channels: 2}
)

// rig is a conference on loopback: each participant is an anchored endpoint
// the mixer owns and a "phone" endpoint that sends a tone in its codec as a
// phone would and decodes what it hears.
type rig struct {
	t     *testing.T
	ports *media.PortRange
	m     *Mixer
	ctx   context.Context

	mu     sync.Mutex
	events []Event
}

type phone struct {
	p      *Participant
	rx     *mediatest.Receiver
	freq   float64
	stop   context.CancelFunc
	done   chan struct{}
	anchor *media.Endpoint
}

func newRig(t *testing.T, cfg Config) *rig {
	r := &rig{t: t, ports: mediatest.Ports(t)}
	cfg.OnEvent = func(e Event) {
		r.mu.Lock()
		r.events = append(r.events, e)
		r.mu.Unlock()
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.m = m
	ctx, cancel := context.WithCancel(context.Background())
	r.ctx = ctx
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; m.Close() })
	return r
}

// add joins a participant whose phone sends freq (0: nothing) in c.
func (r *rig) add(id string, c media.RTPCodec, freq float64, opts ...func(*Join, *mediatest.Stream)) *phone {
	anchor, handset := mediatest.Pair(r.t, r.ports)
	ph := &phone{rx: mediatest.NewReceiver(r.t, c), freq: freq, anchor: anchor, done: make(chan struct{})}
	handset.SetSink(ph.rx.Sink)
	j := Join{ID: id, Endpoint: anchor, Codec: c}
	s := mediatest.Stream{Codec: c, Freq: freq, SSRC: uint32(len(id)) * 7919}
	for _, o := range opts {
		o(&j, &s)
	}
	p, err := r.m.Join(j)
	if err != nil {
		r.t.Fatal(err)
	}
	ph.p = p
	ctx, cancel := context.WithCancel(r.ctx)
	ph.stop = func() { cancel(); <-ph.done }
	go func() {
		defer close(ph.done)
		if freq > 0 {
			s.Run(ctx, r.t, handset)
		}
	}()
	r.t.Cleanup(ph.stop)
	return ph
}

func (r *rig) eventsSoFar() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// listen forgets what the phones heard, waits d and returns what each heard
// since.
func listen(d time.Duration, phones ...*phone) [][]int16 {
	for _, ph := range phones {
		ph.rx.Reset()
	}
	time.Sleep(d)
	out := make([][]int16, len(phones))
	for i, ph := range phones {
		out[i] = ph.rx.Samples()
	}
	return out
}

const (
	heard   = 0.12 // a tone among three or four equal ones has about 1/3 of the energy
	unheard = 0.02
)

func expect(t *testing.T, who string, pcm []int16, hear, notHear []float64) {
	t.Helper()
	if len(pcm) < 4000 {
		t.Errorf("%s: only %d samples arrived", who, len(pcm))
		return
	}
	for _, f := range hear {
		if r := media.ToneRatio(pcm, f); r < heard {
			t.Errorf("%s does not hear %.0f Hz (ratio %.3f)", who, f, r)
		}
	}
	for _, f := range notHear {
		if r := media.ToneRatio(pcm, f); r > unheard {
			t.Errorf("%s hears %.0f Hz (ratio %.3f), it should not", who, f, r)
		}
	}
}

// TestMixMinusSelf puts three G.711 phones and one Opus phone, each sending
// its own tone, in one conference: every phone hears the other three tones
// and not its own.
func TestMixMinusSelf(t *testing.T) {
	r := newRig(t, Config{})
	phones := []*phone{
		r.add("a", pcmu, 500), r.add("b", pcma, 900), r.add("c", pcmu, 1400), r.add("d", opus, 1900),
	}
	time.Sleep(300 * time.Millisecond) // jitter buffers primed, Opus settled
	got := listen(time.Second, phones...)
	for i, ph := range phones {
		var others []float64
		for _, o := range phones {
			if o != ph {
				others = append(others, o.freq)
			}
		}
		expect(t, ph.p.ID(), got[i], others, []float64{ph.freq})
	}
	if n := phones[3].rx.Packets(111); n == 0 {
		t.Fatal("the Opus phone got no Opus packets")
	}
	for _, ph := range phones {
		if s := ph.p.Stats(); s.Jitter.Played < 50 || s.DecodeErrors != 0 || s.SendErrors != 0 {
			t.Errorf("%s: stats %+v", ph.p.ID(), s)
		}
	}
	if s := r.m.Stats(); s.Ticks < 60 {
		t.Errorf("mixer stats %+v", s)
	}
}

// TestMuteAndHold mutes one participant (the others stop hearing it, it
// still hears them), then holds another with music (it hears only the music,
// the others stop hearing it), then holds with nothing (silence), and
// resumes both.
func TestMuteAndHold(t *testing.T) {
	r := newRig(t, Config{})
	a, b, c := r.add("a", pcmu, 500), r.add("b", pcmu, 900), r.add("c", opus, 1400)
	time.Sleep(300 * time.Millisecond)

	a.p.SetMuted(true)
	got := listen(time.Second, a, b, c)
	expect(t, "muted a", got[0], []float64{900, 1400}, []float64{500})
	expect(t, "b", got[1], []float64{1400}, []float64{500, 900})
	expect(t, "c", got[2], []float64{900}, []float64{500, 1400})
	a.p.SetMuted(false)

	music := media.Tone(300, 8000, 8000)
	b.p.SetHold(true, NewLoop(music))
	got = listen(time.Second, a, b, c)
	expect(t, "held b", got[1], []float64{300}, []float64{500, 900, 1400})
	expect(t, "a", got[0], []float64{1400}, []float64{300, 500, 900})
	expect(t, "c", got[2], []float64{500}, []float64{300, 900, 1400})

	b.p.SetHold(true, nil)
	got = listen(time.Second, b)
	if rms := mediatest.RMS(got[0]); len(got[0]) < 4000 || rms > 50 {
		t.Errorf("b held without music: %d samples at RMS %.0f, want silence still sent", len(got[0]), rms)
	}
	b.p.SetHold(false, nil)
	got = listen(time.Second, a, b)
	expect(t, "resumed b", got[1], []float64{500, 1400}, []float64{900})
	expect(t, "a after b resumed", got[0], []float64{900, 1400}, []float64{500})
}

// TestCoach: a coach's voice reaches only the participant it coaches, and
// the coach hears everyone; ending coaching makes it heard by all.
func TestCoach(t *testing.T) {
	r := newRig(t, Config{})
	agent, customer, coach := r.add("agent", pcmu, 500), r.add("customer", pcmu, 900), r.add("coach", opus, 1400)
	if err := coach.p.SetCoaching(coach.p); err == nil {
		t.Fatal("self-coaching accepted")
	}
	if err := coach.p.SetCoaching(agent.p); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	got := listen(time.Second, agent, customer, coach)
	expect(t, "agent", got[0], []float64{900, 1400}, []float64{500})
	expect(t, "customer", got[1], []float64{500}, []float64{900, 1400})
	expect(t, "coach", got[2], []float64{500, 900}, []float64{1400})

	// The coached agent leaves: the coach whispers to no one.
	agent.p.Leave()
	got = listen(time.Second, customer, coach)
	expect(t, "customer after the agent left", got[0], nil, []float64{500, 900, 1400})
	expect(t, "coach after the agent left", got[1], []float64{900}, []float64{500, 1400})

	if err := coach.p.SetCoaching(nil); err != nil {
		t.Fatal(err)
	}
	got = listen(time.Second, customer)
	expect(t, "customer after coaching ended", got[0], []float64{1400}, []float64{500, 900})
}

// TestRecording records the mix and one participant's two streams while
// three phones talk: the mix holds every voice, the participant's "in"
// stream only its own and its "out" stream the others'.
func TestRecording(t *testing.T) {
	r := newRig(t, Config{})
	a, b, c := r.add("a", pcmu, 500), r.add("b", pcma, 900), r.add("c", opus, 1400)
	_, _ = b, c
	time.Sleep(300 * time.Millisecond)
	dir := t.TempDir()
	open := func(name string) (*os.File, *media.WAVWriter) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		w, err := media.NewWAVWriterRate(f, r.m.Rate())
		if err != nil {
			t.Fatal(err)
		}
		return f, w
	}
	_, mixW := open("mix.wav")
	_, inW := open("a-in.wav")
	_, outW := open("a-out.wav")
	mix, err := r.m.Record(mixW)
	if err != nil {
		t.Fatal(err)
	}
	dual, err := a.p.Record(inW, outW)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	for _, rec := range []*Recording{mix, dual} {
		if err := rec.Close(); err != nil {
			t.Fatal(err)
		}
		if s := rec.Stats(); s.Frames < 60 || s.Dropped != 0 {
			t.Fatalf("recording stats %+v", s)
		}
	}
	if err := mix.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	read := func(name string) []int16 {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		au, err := media.DecodeWAV(data)
		if err != nil {
			t.Fatal(err)
		}
		if au.Rate != 8000 || len(au.Samples) < 8000*13/10 {
			t.Fatalf("%s: %d samples at %d Hz", name, len(au.Samples), au.Rate)
		}
		return au.Samples
	}
	expect(t, "the mix", read("mix.wav"), []float64{500, 900, 1400}, nil)
	in, out := read("a-in.wav"), read("a-out.wav")
	if len(in) != len(out) {
		t.Errorf("a's streams differ in length: %d and %d samples", len(in), len(out))
	}
	if r := media.ToneRatio(in, 500); r < 0.9 {
		t.Errorf("a's own stream: 500 Hz ratio %.2f", r)
	}
	expect(t, "a's own stream", in, nil, []float64{900, 1400})
	expect(t, "what a heard", out, []float64{900, 1400}, []float64{500})
}

// TestSpeakerEvents: a phone that talks for a second and then stops is
// reported speaking and then, after the hangover, not; a phone whose line
// is only faint noise never is, and a muted one stops.
func TestSpeakerEvents(t *testing.T) {
	r := newRig(t, Config{Speaker: SpeakerConfig{Hangover: 200 * time.Millisecond}})
	talker := r.add("talker", pcmu, 700, func(_ *Join, s *mediatest.Stream) {
		s.Skip = func(frame int) bool { return frame >= 50 } // 1 s of speech, then silence suppression
	})
	r.add("faint", pcmu, 700, func(_ *Join, s *mediatest.Stream) { s.Amp = 100 })
	muted := r.add("muted-later", opus, 1100)
	time.Sleep(700 * time.Millisecond)
	if !talker.p.Speaking() || !muted.p.Speaking() {
		t.Fatal("talkers not speaking after 700 ms")
	}
	muted.p.SetMuted(true)
	time.Sleep(1200 * time.Millisecond)
	want := map[string][]bool{"talker": {true, false}, "muted-later": {true, false}}
	got := map[string][]bool{}
	for _, e := range r.eventsSoFar() {
		got[e.Participant] = append(got[e.Participant], e.Speaking)
	}
	for id, w := range want {
		if len(got[id]) != len(w) || got[id][0] != w[0] || got[id][1] != w[1] {
			t.Errorf("%s: events %v, want %v", id, got[id], w)
		}
	}
	if len(got["faint"]) != 0 {
		t.Errorf("faint line reported speaking: %v", got["faint"])
	}
}

// TestAnnounce plays a playback queue to the whole conference (with a mark
// that fires when it has played) and a tone to one participant.
func TestAnnounce(t *testing.T) {
	r := newRig(t, Config{})
	a, b := r.add("a", pcmu, 500), r.add("b", opus, 900)
	marks := make(chan playback.Mark, 4)
	q := playback.New(nil, playback.Config{OnMark: func(m playback.Mark) { marks <- m }})
	src, err := NewQueueSource(q, r.m.Rate())
	if err != nil {
		t.Fatal(err)
	}
	r.m.Announce(src)
	time.Sleep(300 * time.Millisecond)
	q.Push(media.PCMU.Encode(nil, media.Tone(2000, 12000, 8000))) // 1.5 s
	start := time.Now()
	q.Mark("announced")
	got := listen(time.Second, a, b)
	expect(t, "a", got[0], []float64{900, 2000}, []float64{500})
	expect(t, "b", got[1], []float64{500, 2000}, []float64{900})
	select {
	case m := <-marks:
		if el := time.Since(start); m.Name != "announced" || el < 1400*time.Millisecond {
			t.Fatalf("mark %+v after %s", m, el)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no mark")
	}
	r.m.Announce(nil)

	b.p.Announce(NewLoop(media.Tone(2500, 8000, 8000)))
	got = listen(time.Second, a, b)
	expect(t, "a while b hears a private announcement", got[0], []float64{900}, []float64{2000, 2500})
	expect(t, "b with its announcement", got[1], []float64{500, 2500}, []float64{900})
}

// TestWideband mixes at 16 kHz: an Opus participant and a G.711 one hear
// each other, and the mix records at 16 kHz.
func TestWideband(t *testing.T) {
	r := newRig(t, Config{Rate: 16000})
	a, b, c := r.add("a", opus, 500), r.add("b", pcmu, 900), r.add("c", opus, 3000)
	time.Sleep(300 * time.Millisecond)
	got := listen(time.Second, a, b, c)
	expect(t, "a", got[0], []float64{900, 3000}, []float64{500})
	// b speaks G.711: 3 kHz is within its band and heard.
	expect(t, "b", got[1], []float64{500, 3000}, []float64{900})
	f, err := os.Create(filepath.Join(t.TempDir(), "x.wav"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w8, _ := media.NewWAVWriter(f)
	if _, err := r.m.Record(w8); err == nil {
		t.Fatal("an 8 kHz WAV accepted by a 16 kHz mixer")
	}
	if _, err := New(Config{Rate: 11025}); err == nil {
		t.Fatal("rate 11025 accepted")
	}
}

// TestReorderOnTheWire sends a tone with every pair of packets swapped and
// one packet in fifty sent twice: the jitter buffer puts them back in order
// (nothing late, nothing lost) and the listener hears a clean tone.
func TestReorderOnTheWire(t *testing.T) {
	r := newRig(t, Config{})
	listener := r.add("listener", pcmu, 0)
	anchor, handset := mediatest.Pair(t, r.ports)
	p, err := r.m.Join(Join{ID: "jumbled", Endpoint: anchor, Codec: pcmu, JitterDepth: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var held []byte
		n := 0
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(0); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			pkt := mediatest.RTP(0, seq, uint32(seq)*160, 42, media.PCMU.Encode(nil, mediatest.Tone(700, 8000, 160, int(seq)*160, 8000)))
			if seq%2 == 0 {
				held = pkt
				continue
			}
			_ = handset.WriteRTP(pkt)
			_ = handset.WriteRTP(held)
			if n++; n%25 == 0 {
				_ = handset.WriteRTP(held)
			}
		}
	}()
	defer func() { cancel(); <-done }()
	time.Sleep(400 * time.Millisecond)
	got := listen(time.Second, listener)
	// A loaded machine may still stall a tick (an underrun, a short gap):
	// the ratio allows for one; out-of-order playout would fall far lower.
	if ratio := media.ToneRatio(got[0], 700); ratio < 0.8 {
		t.Errorf("listener hears the reordered tone with ratio %.2f", ratio)
	}
	s := p.Stats().Jitter
	if s.Late != 0 || s.Lost != 0 || s.Duplicate == 0 || s.Played < 50 {
		t.Errorf("jitter stats %+v", s)
	}
}

// TestNoAllocationPerFrame feeds packets straight into the participants'
// sinks and ticks the mixer with recordings, whispering, announcements,
// hold music and speaker events in play: nothing allocates.
func TestNoAllocationPerFrame(t *testing.T) {
	ports := mediatest.Ports(t)
	m, err := New(Config{OnEvent: func(Event) {}, Speaker: SpeakerConfig{Attack: Frame, Hangover: Frame}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	type feed struct {
		p   *Participant
		enc func(seq uint16) []byte
	}
	var feeds []feed
	for i, c := range []media.RTPCodec{pcmu, pcma, opus, pcmu} {
		anchor, handset := mediatest.Pair(t, ports)
		handset.SetSink(func([]byte) {})
		p, err := m.Join(Join{ID: string(rune('a' + i)), Endpoint: anchor, Codec: c, Gain: 0.8})
		if err != nil {
			t.Fatal(err)
		}
		pkts := mediatest.Packets(t, c, 300+float64(i)*400, 50, uint32(i))
		feeds = append(feeds, feed{p: p, enc: func(seq uint16) []byte { return pkts[int(seq)%len(pkts)] }})
	}
	_ = feeds[3].p.SetCoaching(feeds[0].p)
	feeds[1].p.SetHold(true, NewLoop(media.Tone(300, 800, 8000)))
	m.Announce(NewLoop(media.Tone(2000, 800, 8000)))
	f, err := os.Create(filepath.Join(t.TempDir(), "mix.wav"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, _ := media.NewWAVWriter(f)
	rec, err := m.Record(w)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	fi, _ := os.Create(filepath.Join(t.TempDir(), "in.wav"))
	defer fi.Close()
	wi, _ := media.NewWAVWriter(fi)
	fo, _ := os.Create(filepath.Join(t.TempDir(), "out.wav"))
	defer fo.Close()
	wo, _ := media.NewWAVWriter(fo)
	dual, err := feeds[0].p.Record(wi, wo)
	if err != nil {
		t.Fatal(err)
	}
	defer dual.Close()
	var seq uint16
	frame := func() {
		for _, fd := range feeds {
			pkt := fd.enc(seq)
			binary.BigEndian.PutUint16(pkt[2:], seq)
			fd.p.receive(pkt)
		}
		seq++
		m.Tick()
		if seq%3 == 0 {
			time.Sleep(time.Millisecond) // let the recorder drain
		}
	}
	for range 10 {
		frame()
	}
	if allocs := testing.AllocsPerRun(300, frame); allocs != 0 {
		t.Fatalf("%.2f allocations per frame", allocs)
	}
	for _, fd := range feeds {
		if s := fd.p.Stats(); s.Sent < 300 || s.Jitter.Played < 290 {
			t.Fatalf("%s: %+v", fd.p.ID(), s)
		}
	}
}
