package calls

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/internal/webhook"
	"github.com/parleyhq/parley/signaling/media"
)

const authToken = "0123456789abcdef0123456789abcdef"

// loopbackPolicy lets webhooks reach the tests' httptest applications on
// loopback, as an operator allows a same-host application with
// webhooks.allow_networks; the default policy refuses them.
func loopbackPolicy(t testing.TB, networks ...string) *webhook.Policy {
	t.Helper()
	if len(networks) == 0 {
		networks = []string{"127.0.0.0/8", "::1/128"}
	}
	allow, err := webhook.ParseNetworks(networks)
	if err != nil {
		t.Fatal(err)
	}
	return webhook.NewPolicy(webhook.PolicyOptions{Allow: allow})
}

// hook is one webhook request the application received.
type hook struct {
	path   string
	form   url.Values
	signed bool // X-Twilio-Signature verified
}

// app is the customer's web application: TwiML per path, and a log of requests.
type app struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	hooks []hook
	pages map[string]func(w http.ResponseWriter, r *http.Request)
}

func newApp(t *testing.T, twiml map[string]string) *app {
	t.Helper()
	a := &app{t: t, pages: map[string]func(http.ResponseWriter, *http.Request){}}
	for path, doc := range twiml {
		doc := doc
		a.pages[path] = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			io.WriteString(w, doc)
		}
	}
	a.pages["/tone.wav"] = func(w http.ResponseWriter, r *http.Request) { w.Write(toneWAV(t, 1000, 400*time.Millisecond)) }
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		full := a.srv.URL + r.URL.Path
		if r.URL.RawQuery != "" {
			full += "?" + r.URL.RawQuery
		}
		params := r.PostForm
		if r.Method == http.MethodGet {
			params = nil
		}
		signed := r.Header.Get(webhook.HeaderCompat) == webhook.Sign(authToken, full, params)
		if r.URL.Path != "/tone.wav" {
			a.mu.Lock()
			a.hooks = append(a.hooks, hook{path: r.URL.Path, form: r.Form, signed: signed})
			a.mu.Unlock()
		}
		if h, ok := a.pages[r.URL.Path]; ok {
			h(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *app) requests(path string) []hook {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []hook
	for _, h := range a.hooks {
		if h.path == path {
			out = append(out, h)
		}
	}
	return out
}

func toneWAV(t *testing.T, freq float64, d time.Duration) []byte {
	path := filepath.Join(t.TempDir(), "tone.wav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := media.NewWAVWriter(f)
	w.Write(media.Tone(freq, int(d.Seconds()*media.SampleRate), 10000))
	w.Close()
	f.Close()
	b, _ := os.ReadFile(path)
	return b
}

// events records what the engine reports.
type events struct {
	mu       sync.Mutex
	statuses []string
	recs     []Recording
}

func (e *events) CallStatus(c *Call, s string) {
	e.mu.Lock()
	e.statuses = append(e.statuses, s)
	e.mu.Unlock()
}

func (e *events) RecordingDone(r Recording) {
	e.mu.Lock()
	e.recs = append(e.recs, r)
	e.mu.Unlock()
}

func (e *events) list() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.statuses, ",")
}

type fixture struct {
	engine *Engine
	events *events
	ports  *media.PortRange
}

func newFixture(t *testing.T, d Dialer, tune func(*Config)) *fixture {
	t.Helper()
	ports, err := media.NewPortRange(44000, 44999)
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	cfg := Config{
		Webhooks:      &webhook.Client{Timeout: 500 * time.Millisecond, Policy: loopbackPolicy(t)},
		Dialer:        d,
		Events:        ev,
		RecordingsDir: t.TempDir(),
		RecordingURL:  func(acct, rec string) string { return "http://127.0.0.1:8080/recordings/" + rec + ".wav" },
		TTSCommand:    DefaultTTSCommand,
	}
	if tune != nil {
		tune(&cfg)
	}
	return &fixture{engine: New(cfg), events: ev, ports: ports}
}

func newCall(a *app) *Call {
	return &Call{Sid: sid.New(sid.Call), AccountSid: sid.New(sid.Account), AuthToken: authToken,
		From: "sip:alice@example.test", To: "client:bob", Direction: "inbound",
		VoiceURL: a.srv.URL + "/voice", VoiceMethod: "POST"}
}

// runCall runs the call in the background and returns a channel for its result.
func (f *fixture) runCall(c *Call, leg Leg) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f.engine.Run(context.Background(), c, leg) }()
	return done
}

func wait(t *testing.T, done <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("call did not end within %s", d)
		return nil
	}
}

// collect gathers the phone's received audio until stop is closed.
func collect(c *media.Capture, stop <-chan struct{}) <-chan []int16 {
	out := make(chan []int16, 1)
	go func() {
		var all []int16
		for {
			select {
			case s := <-c.Samples:
				all = append(all, s...)
			case <-stop:
				out <- all
				return
			}
		}
	}()
	return out
}

func TestPlayThenGatherWithBargeIn(t *testing.T) {
	a := newApp(t, map[string]string{
		"/voice": `<Response><Play>/tone.wav</Play>
			<Gather numDigits="2" action="/gathered" timeout="3"><Play loop="5">/tone.wav</Play></Gather>
			<Hangup/></Response>`,
		"/gathered": `<Response><Hangup/></Response>`,
	})
	f := newFixture(t, nil, nil)
	leg := newRTPLeg(t, f.ports)
	stop := make(chan struct{})
	heard := collect(leg.PhoneCapture, stop)
	call := newCall(a)
	done := f.runCall(call, leg)
	time.Sleep(700 * time.Millisecond) // the first Play, then the Gather's prompt starts
	start := time.Now()
	if err := leg.PhoneSender.SendDigits(context.Background(), "42"); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, done, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("the prompt was not interrupted by the first key (no barge-in)")
	}
	close(stop)
	samples := <-heard
	if len(samples) < 3200 || media.ToneRatio(samples[:3200], 1000) < 0.7 {
		t.Fatalf("phone heard %d samples, 1 kHz ratio %.2f", len(samples), media.ToneRatio(samples, 1000))
	}
	g := a.requests("/gathered")
	if len(g) != 1 || g[0].form.Get("Digits") != "42" || !g[0].signed || g[0].form.Get("CallSid") != call.Sid ||
		g[0].form.Get("CallStatus") != StatusInProgress {
		t.Fatalf("gather action: %+v", g)
	}
	v := a.requests("/voice")
	if len(v) != 1 || !v[0].signed || v[0].form.Get("ApiVersion") != "2010-04-01" || v[0].form.Get("Direction") != "inbound" ||
		v[0].form.Get("From") != call.From || v[0].form.Get("To") != call.To || v[0].form.Get("AccountSid") != call.AccountSid {
		t.Fatalf("voice request: %+v", v)
	}
	if _, _, hungUp := leg.state(); !hungUp {
		t.Fatal("Parley did not hang up after <Hangup/>")
	}
	if got := f.events.list(); got != "ringing,in-progress,completed" {
		t.Fatalf("statuses %s", got)
	}
}

func TestGatherTimeoutGoesOn(t *testing.T) {
	a := newApp(t, map[string]string{
		"/voice": `<Response><Gather timeout="1" action="/gathered"/><Redirect>/after</Redirect></Response>`,
		"/after": `<Response><Hangup/></Response>`,
	})
	f := newFixture(t, nil, nil)
	leg := newRTPLeg(t, f.ports)
	if err := wait(t, f.runCall(newCall(a), leg), 4*time.Second); err != nil {
		t.Fatal(err)
	}
	if len(a.requests("/gathered")) != 0 || len(a.requests("/after")) != 1 {
		t.Fatalf("gathered %d, after %d", len(a.requests("/gathered")), len(a.requests("/after")))
	}
}

func TestRecord(t *testing.T) {
	a := newApp(t, map[string]string{
		"/voice":    `<Response><Record maxLength="5" timeout="1" action="/recorded"/></Response>`,
		"/recorded": `<Response/>`,
	})
	f := newFixture(t, nil, nil)
	leg := newRTPLeg(t, f.ports)
	done := f.runCall(newCall(a), leg)
	// Wait for the beep, then speak (a 440 Hz tone) for a second and fall silent.
	var beep []int16
	for len(beep) < 2400 {
		select {
		case s := <-leg.PhoneCapture.Samples:
			beep = append(beep, s...)
		case <-time.After(2 * time.Second):
			t.Fatal("no beep")
		}
	}
	if r := media.ToneRatio(beep, 1000); r < 0.7 {
		t.Fatalf("beep 1 kHz ratio %.2f", r)
	}
	time.Sleep(250 * time.Millisecond) // let the rest of the beep pass
	if err := leg.PhoneSender.PlayULaw(context.Background(), media.PCMU.Encode(nil, media.Tone(440, 8000, 10000))); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, done, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	r := a.requests("/recorded")
	if len(r) != 1 || r[0].form.Get("RecordingDuration") != "1" || !strings.HasPrefix(r[0].form.Get("RecordingSid"), "RE") ||
		!strings.HasSuffix(r[0].form.Get("RecordingUrl"), r[0].form.Get("RecordingSid")+".wav") || r[0].form.Get("Digits") != "" {
		t.Fatalf("record action: %+v", r)
	}
	f.events.mu.Lock()
	recs := f.events.recs
	f.events.mu.Unlock()
	if len(recs) != 1 {
		t.Fatalf("%d recordings reported", len(recs))
	}
	data, err := os.ReadFile(recs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	audio, err := media.DecodeWAV(data)
	if err != nil || audio.Rate != 8000 || len(audio.Samples) < 7000 || len(audio.Samples) > 9000 {
		t.Fatalf("recording: %d samples at %d Hz, %v", len(audio.Samples), audio.Rate, err)
	}
	if ratio := media.ToneRatio(audio.Samples, 440); ratio < 0.7 {
		t.Fatalf("recording 440 Hz ratio %.2f", ratio)
	}
}

func TestFailuresAndFallback(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}
	tests := []struct {
		name     string
		pages    map[string]string
		handlers map[string]func(http.ResponseWriter, *http.Request)
		fallback bool
		maxDocs  int
		reject   int
		status   string
	}{
		{name: "500 then fallback", handlers: map[string]func(http.ResponseWriter, *http.Request){"/voice": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }},
			pages: map[string]string{"/fallback": `<Response><Reject reason="busy"/></Response>`}, fallback: true, reject: 486, status: StatusBusy},
		{name: "slow then fallback", handlers: map[string]func(http.ResponseWriter, *http.Request){"/voice": slow},
			pages: map[string]string{"/fallback": `<Response><Reject/></Response>`}, fallback: true, reject: 603, status: StatusNoAnswer},
		{name: "malformed twiml", pages: map[string]string{"/voice": `<Response><Say>unclosed</Response>`}, reject: 500, status: StatusFailed},
		{name: "unknown verb", pages: map[string]string{"/voice": `<Response><Enqueue>q</Enqueue></Response>`}, reject: 500, status: StatusFailed},
		{name: "oversized reply", pages: map[string]string{"/voice": "<Response>" + strings.Repeat("<Pause/>", 9000) + "</Response>"}, reject: 500, status: StatusFailed},
		{name: "json reply", handlers: map[string]func(http.ResponseWriter, *http.Request){"/voice": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"say":"hi"}`)
		}}, reject: 500, status: StatusFailed},
		{name: "redirect chain", pages: map[string]string{"/voice": `<Response><Redirect>b</Redirect></Response>`, "/b": `<Response><Redirect method="GET">/c?x=1</Redirect></Response>`, "/c": `<Response><Reject/></Response>`}, reject: 603, status: StatusNoAnswer},
		{name: "redirect loop", pages: map[string]string{"/voice": `<Response><Redirect>/voice</Redirect></Response>`}, maxDocs: 5, reject: 500, status: StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApp(t, tt.pages)
			for p, h := range tt.handlers {
				a.pages[p] = h
			}
			f := newFixture(t, nil, func(c *Config) { c.MaxDocuments = tt.maxDocs })
			leg := newRTPLeg(t, f.ports)
			call := newCall(a)
			if tt.fallback {
				call.FallbackURL, call.FallbackMethod = a.srv.URL+"/fallback", "POST"
			}
			err := wait(t, f.runCall(call, leg), 5*time.Second)
			_, rejected, _ := leg.state()
			if rejected != tt.reject || call.Status() != tt.status {
				t.Fatalf("rejected %d status %s (err %v); want %d %s", rejected, call.Status(), err, tt.reject, tt.status)
			}
			if tt.status == StatusFailed && err == nil {
				t.Fatal("a failed call returned no error")
			}
			if tt.fallback {
				fb := a.requests("/fallback")
				if len(fb) != 1 || fb[0].form.Get("ErrorCode") != "11200" || !fb[0].signed {
					t.Fatalf("fallback requests %+v", fb)
				}
			}
		})
	}
}

// dialer answers (or not) with a callee leg of its own.
type dialer struct {
	t      *testing.T
	ports  *media.PortRange
	status DialStatus
	mu     sync.Mutex
	callee *rtpLeg
	reqs   []DialRequest
}

func (d *dialer) Dial(ctx context.Context, req DialRequest) (DialResult, error) {
	d.mu.Lock()
	d.reqs = append(d.reqs, req)
	d.mu.Unlock()
	if req.Ringing != nil {
		req.Ringing()
	}
	select {
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
		return DialResult{Status: DialCanceled}, nil
	}
	if d.status != DialAnswered {
		return DialResult{Status: d.status}, nil
	}
	callee := newRTPLeg(d.t, d.ports)
	d.mu.Lock()
	d.callee = callee
	d.mu.Unlock()
	return DialResult{Status: DialAnswered, Leg: callee, Media: callee.media(), CallSid: "CA" + strings.Repeat("d", 32)}, nil
}

func TestDialBridgesMediaBothWays(t *testing.T) {
	for _, record := range []bool{false, true} {
		t.Run(fmt.Sprintf("record=%v", record), func(t *testing.T) { testDialBridges(t, record) })
	}
}

func testDialBridges(t *testing.T, record bool) {
	attr := ""
	if record {
		attr = ` record="record-from-answer"`
	}
	a := newApp(t, map[string]string{
		"/voice":  `<Response><Dial action="/dialed" timeout="5" answerOnBridge="true"` + attr + `><Client>bob</Client></Dial></Response>`,
		"/dialed": `<Response><Hangup/></Response>`,
	})
	ports, _ := media.NewPortRange(45000, 45999)
	d := &dialer{t: t, ports: ports, status: DialAnswered}
	f := newFixture(t, d, nil)
	caller := newRTPLeg(t, f.ports)
	done := f.runCall(newCall(a), caller)
	var callee *rtpLeg
	for deadline := time.Now().Add(2 * time.Second); callee == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		d.mu.Lock()
		callee = d.callee
		d.mu.Unlock()
	}
	if callee == nil {
		t.Fatal("not dialled")
	}
	time.Sleep(100 * time.Millisecond) // bridge set up
	stopA, stopB := make(chan struct{}), make(chan struct{})
	heardByCallee, heardByCaller := collect(callee.PhoneCapture, stopB), collect(caller.PhoneCapture, stopA)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		caller.PhoneSender.PlayULaw(context.Background(), media.PCMU.Encode(nil, media.Tone(1000, 4800, 9000)))
	}()
	go func() {
		defer wg.Done()
		callee.PhoneSender.PlayULaw(context.Background(), media.PCMU.Encode(nil, media.Tone(440, 4800, 9000)))
	}()
	wg.Wait()
	time.Sleep(100 * time.Millisecond)
	close(stopA)
	close(stopB)
	b, c := <-heardByCallee, <-heardByCaller
	if len(b) < 4000 || media.ToneRatio(b, 1000) < 0.7 {
		t.Fatalf("callee heard %d samples, 1 kHz ratio %.2f", len(b), media.ToneRatio(b, 1000))
	}
	if len(c) < 4000 || media.ToneRatio(c, 440) < 0.7 {
		t.Fatalf("caller heard %d samples, 440 Hz ratio %.2f", len(c), media.ToneRatio(c, 440))
	}
	callee.PhoneHangsUp()
	if err := wait(t, done, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	dialed := a.requests("/dialed")
	if len(dialed) != 1 || dialed[0].form.Get("DialCallStatus") != "completed" || dialed[0].form.Get("DialCallSid") == "" ||
		dialed[0].form.Get("DialCallDuration") == "" {
		t.Fatalf("dial action %+v", dialed)
	}
	caller.mu.Lock()
	ringing := caller.ringing
	caller.mu.Unlock()
	if ringing != 1 {
		t.Fatalf("ringing relayed %d times", ringing)
	}
	d.mu.Lock()
	req := d.reqs[0]
	d.mu.Unlock()
	if req.Timeout != 5*time.Second || len(req.Targets) != 1 || len(req.Offer) != 2 {
		t.Fatalf("dial request %+v", req)
	}
	f.events.mu.Lock()
	recs := f.events.recs
	f.events.mu.Unlock()
	if !record {
		if len(recs) != 0 || dialed[0].form.Get("RecordingUrl") != "" {
			t.Fatalf("recorded without record: %+v %v", recs, dialed[0].form)
		}
		return
	}
	// Both sides in one track: 1 kHz from the caller and 440 Hz from the callee.
	if len(recs) != 1 || dialed[0].form.Get("RecordingSid") != recs[0].Sid || dialed[0].form.Get("RecordingDuration") == "" ||
		!strings.HasSuffix(dialed[0].form.Get("RecordingUrl"), recs[0].Sid+".wav") {
		t.Fatalf("dial recording %+v, action %v", recs, dialed[0].form)
	}
	data, err := os.ReadFile(recs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	audio, err := media.DecodeWAV(data)
	if err != nil || len(audio.Samples) < 4800 {
		t.Fatalf("recording: %d samples, %v", len(audio.Samples), err)
	}
	if hi, lo := media.ToneRatio(audio.Samples, 1000), media.ToneRatio(audio.Samples, 440); hi < 0.25 || lo < 0.25 {
		t.Fatalf("recording: 1 kHz ratio %.2f, 440 Hz ratio %.2f (want both sides)", hi, lo)
	}
}

func TestDialNoAnswerRunsAction(t *testing.T) {
	for _, st := range []DialStatus{DialNoAnswer, DialBusy, DialFailed} {
		t.Run(string(st), func(t *testing.T) {
			a := newApp(t, map[string]string{
				"/voice":  `<Response><Dial action="/dialed"><Client>bob</Client></Dial></Response>`,
				"/dialed": `<Response><Hangup/></Response>`,
			})
			f := newFixture(t, &dialer{t: t, status: st}, nil)
			if err := wait(t, f.runCall(newCall(a), newRTPLeg(t, f.ports)), 3*time.Second); err != nil {
				t.Fatal(err)
			}
			dialed := a.requests("/dialed")
			if len(dialed) != 1 || dialed[0].form.Get("DialCallStatus") != string(st) || dialed[0].form.Get("DialCallDuration") != "0" {
				t.Fatalf("dial action %+v", dialed)
			}
		})
	}
}

func TestCallerHangsUpDuringPlay(t *testing.T) {
	a := newApp(t, map[string]string{"/voice": `<Response><Play loop="0">/tone.wav</Play></Response>`})
	f := newFixture(t, nil, nil)
	leg := newRTPLeg(t, f.ports)
	done := f.runCall(newCall(a), leg)
	time.Sleep(300 * time.Millisecond)
	leg.PhoneHangsUp()
	if err := wait(t, done, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, _, hungUp := leg.state(); hungUp {
		t.Fatal("Parley hung up a leg the caller had already left")
	}
	if got := f.events.list(); got != "ringing,in-progress,completed" {
		t.Fatalf("statuses %s", got)
	}
}

func TestSay(t *testing.T) {
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		if os.Getenv("PARLEY_REQUIRE_PEERS") == "1" {
			t.Fatal("espeak-ng is not installed: run make deps")
		}
		t.Skip("espeak-ng not installed")
	}
	a := newApp(t, map[string]string{"/voice": `<Response><Say>-rf hello from Parley</Say></Response>`})
	f := newFixture(t, nil, nil)
	leg := newRTPLeg(t, f.ports)
	stop := make(chan struct{})
	heard := collect(leg.PhoneCapture, stop)
	if err := wait(t, f.runCall(newCall(a), leg), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	close(stop)
	s := <-heard
	if len(s) < 4000 || rms(s) < 300 {
		t.Fatalf("heard %d samples, rms %.0f: no speech", len(s), rms(s))
	}
}

func TestSayWithoutTTSGoesOn(t *testing.T) {
	a := newApp(t, map[string]string{
		"/voice": `<Response><Say>hello</Say><Redirect>/next</Redirect></Response>`,
		"/next":  `<Response><Hangup/></Response>`,
	})
	f := newFixture(t, nil, func(c *Config) { c.TTSCommand = nil })
	if err := wait(t, f.runCall(newCall(a), newRTPLeg(t, f.ports)), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if len(a.requests("/next")) != 1 {
		t.Fatal("the call did not go on after a Say without TTS")
	}
	if _, err := f.engine.speak(context.Background(), "AC1", "x", "", ""); err != ErrNoTTS {
		t.Fatalf("speak without TTS: %v", err)
	}
}

func TestLiveRedirectAndHangup(t *testing.T) {
	a := newApp(t, map[string]string{
		"/voice":      `<Response><Play loop="0">/tone.wav</Play></Response>`,
		"/redirected": `<Response><Pause length="30"/></Response>`,
	})
	f := newFixture(t, nil, nil)
	leg := newRTPLeg(t, f.ports)
	call := newCall(a)
	done := f.runCall(call, leg)
	deadline := time.Now().Add(2 * time.Second)
	for _, ok := f.engine.Live(call.Sid); !ok; _, ok = f.engine.Live(call.Sid) {
		if time.Now().After(deadline) {
			t.Fatal("call never became live")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if err := f.engine.Redirect(call.Sid, a.srv.URL+"/redirected", "POST"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); len(a.requests("/redirected")) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("redirect not fetched: the playing verb was not interrupted")
		}
	}
	if err := f.engine.Hangup(call.Sid); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, done, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, _, hungUp := leg.state(); !hungUp || call.Status() != StatusCompleted {
		t.Fatalf("hung up %v, status %s", hungUp, call.Status())
	}
	if err := f.engine.Hangup(call.Sid); !errors.Is(err, ErrNotLive) {
		t.Fatalf("hangup of an ended call: %v", err)
	}
}

func TestStatusCallbacks(t *testing.T) {
	var mu sync.Mutex
	var got []url.Values
	fails := 1
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		defer mu.Unlock()
		if webhook.Sign(authToken, "http://"+r.Host+r.URL.Path, r.PostForm) != r.Header.Get(webhook.HeaderCompat) {
			t.Error("unsigned status callback")
		}
		if r.PostForm.Get("CallStatus") == StatusCompleted && fails > 0 {
			fails--
			http.Error(w, "try later", http.StatusServiceUnavailable) // the first completed callback fails and is retried
			return
		}
		got = append(got, r.PostForm)
	}))
	defer srv.Close()
	sc := &StatusCallbacks{Webhooks: &webhook.Client{Timeout: time.Second, Policy: loopbackPolicy(t)}, Backoff: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go sc.Run(ctx)

	a := newApp(t, map[string]string{"/voice": `<Response><Pause length="1"/><Play>/tone.wav</Play></Response>`})
	f := newFixture(t, nil, func(c *Config) { c.Events = sc })
	call := newCall(a)
	call.StatusCallback, call.StatusCallbackMethod = srv.URL+"/status", "POST"
	call.StatusCallbackEvents = []string{"ringing", "answered", "completed"}
	if err := wait(t, f.runCall(call, newRTPLeg(t, f.ports)), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callbacks", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	var statuses []string
	for _, v := range got {
		statuses = append(statuses, v.Get("CallStatus")+"#"+v.Get("SequenceNumber"))
	}
	if strings.Join(statuses, ",") != "ringing#0,in-progress#1,completed#2" {
		t.Fatalf("callbacks %v", statuses)
	}
	last := got[2]
	if last.Get("CallDuration") == "" || last.Get("CallDuration") == "0" || last.Get("Timestamp") == "" || last.Get("CallSid") != call.Sid {
		t.Fatalf("completed callback %v", last)
	}
	// Without StatusCallbackEvents only completed is sent.
	c2 := &Call{StatusCallback: "http://x"}
	if c2.wants("ringing") || !c2.wants("completed") {
		t.Fatal("default events")
	}
}

func TestHangupOnStarEndsTheBridgeAndGoesOn(t *testing.T) {
	a := newApp(t, map[string]string{
		"/voice":  `<Response><Dial action="/dialed" hangupOnStar="true" answerOnBridge="true"><Client>bob</Client></Dial></Response>`,
		"/dialed": `<Response><Hangup/></Response>`,
	})
	ports, _ := media.NewPortRange(45000, 45999)
	d := &dialer{t: t, ports: ports, status: DialAnswered}
	f := newFixture(t, d, nil)
	caller := newRTPLeg(t, f.ports)
	done := f.runCall(newCall(a), caller)
	var callee *rtpLeg
	for deadline := time.Now().Add(2 * time.Second); callee == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		d.mu.Lock()
		callee = d.callee
		d.mu.Unlock()
	}
	if callee == nil {
		t.Fatal("not dialled")
	}
	time.Sleep(100 * time.Millisecond)
	if err := caller.PhoneSender.SendDigits(context.Background(), "*"); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, done, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, _, hungUp := callee.state(); !hungUp {
		t.Fatal("* did not hang up the dialled party")
	}
	if _, _, hungUp := caller.state(); !hungUp {
		t.Fatal("the caller was not hung up by the action's <Hangup/>")
	}
	dialed := a.requests("/dialed")
	if len(dialed) != 1 || dialed[0].form.Get("DialCallStatus") != "completed" {
		t.Fatalf("dial action %+v", dialed)
	}
}
