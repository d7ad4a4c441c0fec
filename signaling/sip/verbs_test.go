package sip

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"

	"github.com/parleyhq/parley/signaling/media"
)

// wavFile encodes samples as an 8 kHz PCM16 WAV.
func wavFile(t *testing.T, samples []int16) []byte {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "a.wav"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := media.NewWAVWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(samples); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// listen collects what the phone hears until Parley hangs up (or max
// passes) and returns it in 100 ms chunks.
func (p *phone) listen(max time.Duration) (chunks [][]int16, hungUp bool) {
	var s []int16
	end := time.After(max)
loop:
	for {
		select {
		case c := <-p.capture.Samples:
			s = append(s, c...)
		case <-p.hangup:
			hungUp = true
			break loop
		case <-end:
			break loop
		}
	}
	for len(s) >= 800 {
		chunks, s = append(chunks, s[:800]), s[800:]
	}
	return chunks, hungUp
}

// toneChunks returns the indexes of the chunks dominated by freq.
func toneChunks(chunks [][]int16, freq float64) []int {
	var out []int
	for i, c := range chunks {
		if media.ToneRatio(c, freq) > 0.6 {
			out = append(out, i)
		}
	}
	return out
}

// TestVerbsOverSIP runs the verbs that answer or refuse a caller with a
// real SIP caller: the SIP responses, what the caller hears, and what the
// application is told.
func TestVerbsOverSIP(t *testing.T) {
	refusals := []struct {
		name     string
		docs     map[string]string
		handler  http.HandlerFunc // for /voice, instead of the document
		fallback bool
		status   int
	}{
		{name: "reject busy", docs: map[string]string{"/voice": `<Response><Reject reason="busy"/></Response>`}, status: 486},
		{name: "reject", docs: map[string]string{"/voice": `<Response><Reject/></Response>`}, status: 603},
		{name: "malformed TwiML", docs: map[string]string{"/voice": `<Response><Dial><Client>alice</Dial></Response>`}, status: 500},
		{name: "unknown verb", docs: map[string]string{"/voice": `<Response><Teleport/></Response>`}, status: 500},
		{name: "oversized reply", docs: map[string]string{"/voice": "<Response>" + strings.Repeat("<Pause/>", 9000) + "</Response>"}, status: 500},
		{name: "slow webhook", handler: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
		}, status: 500},
		{name: "500 then fallback", handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) },
			docs: map[string]string{"/fallback": `<Response><Reject reason="busy"/></Response>`}, fallback: true, status: 486},
	}
	for i, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			app := newCallApp(t, tc.docs)
			if tc.handler != nil {
				app.handlers["/voice"] = tc.handler
			}
			if tc.fallback {
				app.fallback = "/fallback"
			}
			e := newCallEnv(t, app)
			caller := newPhone(t, e, 47200+i*10)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := caller.call(ctx, t, "ivr", nil)
			var de *sipgo.ErrDialogResponse
			if !errors.As(err, &de) || de.Res.StatusCode != tc.status {
				t.Fatalf("call: %v, want a %d response", err, tc.status)
			}
			if tc.fallback {
				if fb := app.got("/fallback"); len(fb) != 1 || fb[0].Get("ErrorCode") != "11200" {
					t.Fatalf("fallback requests %v", fb)
				}
			}
			// The server goes on serving: the next REGISTER works.
			if res := e.newClient("udp").register("alice", testPassword, []string{"<sip:alice@127.0.0.1:5999>"}); res.StatusCode != 200 {
				t.Fatalf("register after the call: %d", res.StatusCode)
			}
		})
	}

	t.Run("play, redirect, hangup", func(t *testing.T) {
		app := newCallApp(t, map[string]string{
			"/voice":  `<Response><Play>/high.wav</Play><Redirect>/second</Redirect><Say>never</Say></Response>`,
			"/second": `<Response><Play loop="2">/low.wav</Play><Hangup/></Response>`,
		})
		app.wavs["/high.wav"] = wavFile(t, media.Tone(1000, 8000, 9000))
		app.wavs["/low.wav"] = wavFile(t, media.Tone(440, 4000, 9000))
		e := newCallEnv(t, app)
		caller := newPhone(t, e, 47300)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := caller.call(ctx, t, "ivr", nil); err != nil {
			t.Fatal(err)
		}
		chunks, hungUp := caller.listen(6 * time.Second)
		if !hungUp {
			t.Fatal("Parley did not hang up after <Hangup/>")
		}
		high, low := toneChunks(chunks, 1000), toneChunks(chunks, 440)
		// 1 s at 1 kHz, then 2 × 0.5 s at 440 Hz: allow for chunks that straddle.
		if len(high) < 8 || len(low) < 8 || high[len(high)-1] > low[0] {
			t.Fatalf("heard %d chunks: 1 kHz in %v, 440 Hz in %v", len(chunks), high, low)
		}
		second := app.got("/second")
		if len(second) != 1 || second[0].Get("CallSid") != app.got("/voice")[0].Get("CallSid") {
			t.Fatalf("redirect fetch %v", second)
		}
	})

	t.Run("record", func(t *testing.T) {
		app := newCallApp(t, map[string]string{
			"/voice":    `<Response><Record maxLength="5" timeout="1" action="/recorded"/></Response>`,
			"/recorded": `<Response><Hangup/></Response>`,
		})
		e := newCallEnv(t, app)
		caller := newPhone(t, e, 47400)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if _, err := caller.call(ctx, t, "ivr", nil); err != nil {
			t.Fatal(err)
		}
		if n, r := caller.heard(300*time.Millisecond, 1000); n < 1000 || r < 0.6 {
			t.Fatalf("no beep: %d samples, 1 kHz ratio %.2f", n, r)
		}
		time.Sleep(400 * time.Millisecond) // the rest of the beep
		if err := caller.sender.PlayULaw(ctx, media.PCMU.Encode(nil, media.Tone(440, 8000, 10000))); err != nil {
			t.Fatal(err)
		}
		select {
		case <-caller.hangup:
		case <-time.After(5 * time.Second):
			t.Fatal("the recording did not end on silence")
		}
		rec := app.got("/recorded")
		if len(rec) != 1 {
			t.Fatalf("record action %v", rec)
		}
		d, _ := strconv.Atoi(rec[0].Get("RecordingDuration"))
		recSid := rec[0].Get("RecordingSid")
		if d < 1 || d > 2 || !strings.HasSuffix(rec[0].Get("RecordingUrl"), recSid+".wav") {
			t.Fatalf("record action %v", rec[0])
		}
		data, err := os.ReadFile(filepath.Join(e.recordings, e.acc.Sid, recSid+".wav"))
		if err != nil {
			t.Fatal(err)
		}
		audio, err := media.DecodeWAV(data)
		if err != nil {
			t.Fatal(err)
		}
		if r := media.ToneRatio(audio.Samples, 440); r < 0.6 {
			t.Fatalf("recording: %d samples, 440 Hz ratio %.2f", len(audio.Samples), r)
		}
	})
}

// TestDrainRefusesNewCalls: once draining, a new INVITE gets 503 with
// Retry-After before any routing or webhook.
func TestDrainRefusesNewCalls(t *testing.T) {
	app := newCallApp(t, map[string]string{"/voice": `<Response><Reject/></Response>`})
	e := newCallEnv(t, app)
	e.srv.Drain()
	caller := newPhone(t, e, 47500)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := caller.call(ctx, t, "ivr", nil)
	var de *sipgo.ErrDialogResponse
	if !errors.As(err, &de) || de.Res.StatusCode != 503 {
		t.Fatalf("call while draining: %v, want 503", err)
	}
	if h := de.Res.GetHeader("Retry-After"); h == nil || h.Value() == "" {
		t.Fatal("503 without Retry-After")
	}
	if got := app.got("/voice"); len(got) != 0 {
		t.Fatalf("webhook fetched while draining: %v", got)
	}
}
