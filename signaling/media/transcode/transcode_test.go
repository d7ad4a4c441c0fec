package transcode

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/media/internal/mediatest"
)

var (
	pcmu    = media.RTPCodec{PT: 0, Name: "PCMU", Rate: 8000, Channels: 1}
	pcma    = media.RTPCodec{PT: 8, Name: "PCMA", Rate: 8000, Channels: 1}
	opus    = media.RTPCodec{PT: 111, Name: "opus", Rate: 48000, Channels: 2, Fmtp: "minptime=10;useinbandfec=1"}
	event8  = media.RTPCodec{PT: 101, Name: "telephone-event", Rate: 8000, Channels: 1}
	event48 = media.RTPCodec{PT: 110, Name: "telephone-event", Rate: 48000, Channels: 1}
)

// call sets up phone A ↔ leg a ⇄ leg b ↔ phone B on loopback and bridges a
// and b with Connect.
type call struct {
	pa, pb *mediatest.Receiver
	phoneA *media.Endpoint
	phoneB *media.Endpoint
	br     *Bridge
}

func setup(t *testing.T, codecsA, codecsB []media.RTPCodec) *call {
	t.Helper()
	r := mediatest.Ports(t)
	phoneA, legA := mediatest.Pair(t, r)
	legB, phoneB := mediatest.Pair(t, r)
	br, err := Connect(Leg{Endpoint: legA, Codecs: codecsA}, Leg{Endpoint: legB, Codecs: codecsB})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(br.Close)
	c := &call{phoneA: phoneA, phoneB: phoneB, br: br, pa: mediatest.NewReceiver(t, codecsA...), pb: mediatest.NewReceiver(t, codecsB...)}
	phoneA.SetSink(c.pa.Sink)
	phoneB.SetSink(c.pb.Sink)
	return c
}

// TestTranscodeTonesBothWays sends a distinct tone from each phone and checks
// each hears the other's through the transcoder, in its own codec, with the
// bridge's own SSRC.
func TestTranscodeTonesBothWays(t *testing.T) {
	cases := []struct {
		name   string
		a, b   []media.RTPCodec
		ca, cb media.RTPCodec
	}{
		{"PCMU-opus", []media.RTPCodec{pcmu, event8}, []media.RTPCodec{opus, event48}, pcmu, opus},
		{"opus-PCMU", []media.RTPCodec{opus, event48}, []media.RTPCodec{pcmu, event8}, opus, pcmu},
		{"PCMA-PCMU", []media.RTPCodec{pcma, event8}, []media.RTPCodec{pcmu, event8}, pcma, pcmu},
		{"PCMU-PCMA", []media.RTPCodec{pcmu}, []media.RTPCodec{pcma}, pcmu, pcma},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := setup(t, tc.a, tc.b)
			if c.br.Mode() != Transcoding {
				t.Fatalf("mode %s", c.br.Mode())
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); mediatest.Source(ctx, t, c.phoneA, tc.ca, 500, 11) }()
			go func() { defer wg.Done(); mediatest.Source(ctx, t, c.phoneB, tc.cb, 1400, 22) }()
			wg.Wait()
			atB, atA := c.pb.WaitSamples(7000, time.Second), c.pa.WaitSamples(7000, time.Second)
			check := func(who string, got []int16, freq, other float64) {
				t.Helper()
				if len(got) < 6400 {
					t.Fatalf("%s heard %d samples, want ≥ 6400 (0.8 s)", who, len(got))
				}
				tail := got[1600:]
				if r := mediatest.Ratio(tail, freq, 8000); r < 0.7 {
					t.Errorf("%s: %g Hz ratio %.2f", who, freq, r)
				}
				if r := mediatest.Ratio(tail, other, 8000); r > 0.05 {
					t.Errorf("%s hears itself: %g Hz ratio %.2f", who, other, r)
				}
			}
			check("phone B", atB, 500, 1400)
			check("phone A", atA, 1400, 500)
			if c.pb.Packets(tc.cb.PT) < 40 || c.pa.Packets(tc.ca.PT) < 40 {
				t.Fatalf("packets at B (PT %d) %d, at A (PT %d) %d", tc.cb.PT, c.pb.Packets(tc.cb.PT), tc.ca.PT, c.pa.Packets(tc.ca.PT))
			}
			if ssrc := binary.BigEndian.Uint32(c.pb.Last()[8:12]); ssrc == 11 {
				t.Fatal("the re-encoded side kept the source's SSRC")
			}
			ab, ba := c.br.Stats()
			if ab.Frames < 40 || ba.Frames < 40 || ab.DecodeErrors+ba.DecodeErrors != 0 {
				t.Fatalf("stats %+v %+v", ab, ba)
			}
		})
	}
}

// TestPassThroughWhenShared keeps media.Bridge's relay: the payload
// arrives untouched with the source's SSRC and the mapped payload type.
func TestPassThroughWhenShared(t *testing.T) {
	opus96 := opus
	opus96.PT = 96
	c := setup(t, []media.RTPCodec{opus96, pcmu}, []media.RTPCodec{opus, pcmu})
	if c.br.Mode() != PassThrough {
		t.Fatalf("mode %s for legs sharing Opus", c.br.Mode())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	mediatest.Source(ctx, t, c.phoneA, opus96, 500, 11)
	time.Sleep(50 * time.Millisecond)
	if c.pb.Packets(111) < 10 || binary.BigEndian.Uint32(c.pb.Last()[8:12]) != 11 {
		t.Fatalf("pass-through: %d packets as PT 111", c.pb.Packets(111))
	}
	if !Shares([]media.RTPCodec{pcmu, pcma}, []media.RTPCodec{pcma, pcmu}) || Shares([]media.RTPCodec{pcmu}, []media.RTPCodec{opus, pcma}) {
		t.Fatal("Shares")
	}
	if _, err := Connect(Leg{Codecs: []media.RTPCodec{event8}}, Leg{Codecs: []media.RTPCodec{pcmu}}); err == nil {
		t.Fatal("a leg without audio bridged")
	}
}

// TestEventsRelayed sends RFC 4733 digits from the PCMU phone: the Opus side
// gets each digit once, on its telephone-event PT, in the bridge's stream,
// with durations in its 48 kHz event clock.
func TestEventsRelayed(t *testing.T) {
	c := setup(t, []media.RTPCodec{pcmu, event8}, []media.RTPCodec{opus, event48})
	det := &media.DTMFDetector{PayloadType: 110}
	var mu sync.Mutex
	var digits []byte
	var lastDur uint16
	var ssrcs = map[uint32]bool{}
	c.phoneB.SetSink(func(p []byte) {
		c.pb.Sink(p)
		mu.Lock()
		defer mu.Unlock()
		ssrcs[binary.BigEndian.Uint32(p[8:12])] = true
		if d, ok := det.Feed(p); ok {
			digits = append(digits, d)
		}
		if p[1]&0x7F == 110 {
			lastDur = binary.BigEndian.Uint16(p[14:16])
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); mediatest.Source(ctx, t, c.phoneA, pcmu, 500, 11) }()
	time.Sleep(100 * time.Millisecond)
	s := media.NewSender(c.phoneA, media.PCMU, 101)
	if err := s.SendDigits(context.Background(), "5#"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if string(digits) != "5#" {
		t.Fatalf("digits %q at the Opus side, want 5#", digits)
	}
	if lastDur != 800*6 {
		t.Fatalf("final event duration %d, want 4800 (100 ms at 48 kHz)", lastDur)
	}
	if len(ssrcs) != 1 {
		t.Fatalf("%d SSRCs towards B: events must share the audio stream", len(ssrcs))
	}
	if ab, _ := c.br.Stats(); ab.Events < 14 {
		t.Fatalf("events relayed %d", ab.Events)
	}
	// Without telephone-event on the other leg digits are dropped, counted.
	c2 := setup(t, []media.RTPCodec{pcmu, event8}, []media.RTPCodec{opus})
	if err := media.NewSender(c2.phoneA, media.PCMU, 101).SendDigits(context.Background(), "1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if ab, _ := c2.br.Stats(); ab.EventsDropped == 0 || c2.pb.Packets(101) != 0 {
		t.Fatalf("events not dropped: %+v", ab)
	}
}

// TestLossAndSilenceTolerated drops one packet in 25 and then goes silent
// for half a second: the lost frames are concealed, the silence is a gap
// skipped in the outgoing clock, and the tone still comes through. (Opus
// takes a few frames to recover a pure tone after a loss, SILK being
// predictive; speech hides it better than a Goertzel test does.)
func TestLossAndSilenceTolerated(t *testing.T) {
	for _, tc := range []struct{ from, to media.RTPCodec }{{opus, pcmu}, {pcmu, opus}} {
		t.Run(tc.from.Name, func(t *testing.T) { lossAndSilence(t, tc.from, tc.to) })
	}
}

func lossAndSilence(t *testing.T, from, to media.RTPCodec) {
	c := setup(t, []media.RTPCodec{from}, []media.RTPCodec{to})
	var mu sync.Mutex
	var stamps []uint32
	c.phoneB.SetSink(func(p []byte) {
		c.pb.Sink(p)
		mu.Lock()
		stamps = append(stamps, binary.BigEndian.Uint32(p[4:8]))
		mu.Unlock()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	mediatest.Stream{Codec: from, Freq: 900, SSRC: 5, Skip: func(i int) bool { return i%25 == 5 || (i >= 32 && i < 57) }}.Run(ctx, t, c.phoneA)
	time.Sleep(50 * time.Millisecond)
	ab, _ := c.br.Stats()
	if ab.Concealed < 2 || ab.Gaps != 1 || ab.Late != 0 {
		t.Fatalf("stats %+v: want lost frames concealed and one gap", ab)
	}
	got := c.pb.Samples()
	if r := mediatest.Ratio(got[len(got)/2:], 900, 8000); r < 0.5 {
		t.Fatalf("900 Hz ratio %.2f through loss", r)
	}
	mu.Lock()
	defer mu.Unlock()
	jump := false
	for i := 1; i < len(stamps); i++ {
		step := c.br.stepToB()
		if d := stamps[i] - stamps[i-1]; d != step {
			if d < step*20 || d > step*30 {
				t.Fatalf("timestamp step %d at packet %d", d, i)
			}
			jump = true
		}
	}
	if !jump {
		t.Fatal("the silence did not move the outgoing timestamps")
	}
}

func TestNoAllocationPerPacket(t *testing.T) {
	r := mediatest.Ports(t)
	legB, phoneB := mediatest.Pair(t, r)
	phoneB.SetSink(func([]byte) {})
	d, err := newDirection(pcmu, event8, opus, event48, legB)
	if err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, 12+160)
	pkt[0] = 0x80
	copy(pkt[12:], media.PCMU.Encode(nil, mediatest.Tone(440, 8000, 160, 0, 8000)))
	ev := []byte{0x80, 101, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 5, 10, 0, 160}
	i := 0
	allocs := testing.AllocsPerRun(300, func() {
		i++
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(i*160))
		d.handle(pkt)
		d.handle(ev)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per packet", allocs)
	}
}

// stepToB is the timestamp step of the frames the bridge sends to leg b.
func (br *Bridge) stepToB() uint32 { return br.aToB.enc.TimestampStep() }
