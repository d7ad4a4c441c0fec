package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/internal/webhook"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/store"
)

// loopbackEgress lets webhooks reach the tests' httptest applications on
// loopback (webhooks.allow_networks); the default egress policy refuses them.
var loopbackEgress = webhook.NewPolicy(webhook.PolicyOptions{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})

var lo = netip.MustParseAddr("127.0.0.1")

// callApp is the customer's webhook application: TwiML documents by path,
// WAV files by path, and handlers for anything special.
type callApp struct {
	srv      *httptest.Server
	fallback string // path of the fallback URL, "" for none
	mu       sync.Mutex
	forms    map[string][]url.Values
	wavs     map[string][]byte
	handlers map[string]http.HandlerFunc
}

func newCallApp(t *testing.T, docs map[string]string) *callApp {
	a := &callApp{forms: map[string][]url.Values{}, wavs: map[string][]byte{}, handlers: map[string]http.HandlerFunc{}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		a.mu.Lock()
		a.forms[r.URL.Path] = append(a.forms[r.URL.Path], r.PostForm)
		wav, h := a.wavs[r.URL.Path], a.handlers[r.URL.Path]
		a.mu.Unlock()
		switch {
		case h != nil:
			h(w, r)
		case wav != nil:
			w.Header().Set("Content-Type", "audio/wav")
			w.Write(wav)
		default:
			w.Header().Set("Content-Type", "text/xml")
			io.WriteString(w, docs[r.URL.Path])
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *callApp) got(path string) []url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]url.Values(nil), a.forms[path]...)
}

// router sends every call of the env's account to the app's /voice.
type router struct {
	e   *env
	app *callApp
}

func (r router) RouteInvite(ctx context.Context, in calls.Invite) (*calls.Call, error) {
	if in.AccountSid != r.e.acc.Sid {
		return nil, calls.ErrNoRoute
	}
	c := &calls.Call{Sid: sid.New(sid.Call), AccountSid: in.AccountSid, From: in.From, To: in.To, Direction: "inbound",
		AuthToken: r.e.acc.AuthToken, VoiceURL: r.app.srv.URL + "/voice", VoiceMethod: "POST"}
	if r.app.fallback != "" {
		c.FallbackURL, c.FallbackMethod = r.app.srv.URL+r.app.fallback, "POST"
	}
	return c, nil
}

type domainTargets struct{}

func (domainTargets) ClientIdentities(ctx context.Context, acct, name string) ([]string, error) {
	return []string{presence.SIPIdentity(name, testDomain)}, nil
}

func newCallEnv(t *testing.T, app *callApp) *env {
	ports, err := media.NewPortRange(46000, 46999)
	if err != nil {
		t.Fatal(err)
	}
	recordings := t.TempDir()
	var forker *calls.Forker
	return newEnvWith(t, "", nil, func(e *env, d *Deps) {
		e.recordings = recordings
		forker, err = calls.NewForker(calls.ForkerDeps{Bindings: e.reg, Targets: domainTargets{}, SIPIdentity: URIIdentity, Log: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		engine := calls.New(calls.Config{Dialer: forker, Webhooks: &webhook.Client{Timeout: 2 * time.Second, Policy: loopbackEgress}, Log: testLogger(t),
			RecordingsDir: recordings, RecordingURL: func(acct, rec string) string { return "http://127.0.0.1:9/" + rec + ".wav" }})
		d.Calls = &CallConfig{Router: router{e, app}, Runner: engine, Ports: ports, MediaAddr: lo}
	}, func(e *env) {
		for _, tr := range []string{"udp", "tcp", "tls", "ws", "wss"} {
			forker.SetRinger(tr, e.srv.Ringer())
		}
	})
}

// phone is a SIP user agent with real RTP: it can register, answer and call.
type phone struct {
	*client
	ports     *media.PortRange
	ep        *media.Endpoint
	capture   *media.Capture
	sender    *media.Sender
	mu        sync.Mutex
	dtx       *sipgo.DialogServerSession // the call it answered
	cancelled int                        // calls that ended before it answered (CANCEL)
	answer    chan struct{}              // closed by the test: answer the ringing call
	ready     chan struct{}              // closed by the phone: its media is set up
	hangup    chan struct{}
}

func newPhone(t *testing.T, e *env, base int) *phone {
	ports, err := media.NewPortRange(base, base+99)
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{client: e.newClient("udp"), ports: ports, answer: make(chan struct{}), ready: make(chan struct{}), hangup: make(chan struct{})}
	ua := &sipgo.DialogUA{Client: p.c, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "phone", Host: "127.0.0.1", Port: 5999}}}
	var legs sync.Map
	p.srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		offer, err := media.ParseSDP(req.Body())
		if err != nil {
			tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
			return
		}
		dtx, err := ua.ReadInvite(req, tx)
		if err != nil {
			return
		}
		legs.Store(req.CallID().Value(), dtx)
		p.mu.Lock()
		p.dtx = dtx
		p.mu.Unlock()
		dtx.Respond(180, "Ringing", nil)
		select {
		case <-p.answer:
		case <-dtx.Context().Done():
			p.mu.Lock()
			p.cancelled++
			p.mu.Unlock()
			return
		}
		p.media(t, offer)
		close(p.ready)
		sess := media.Session{Addr: lo, Port: int(p.ep.Local().Port()), Codecs: media.Negotiate(offer.Codecs, "PCMU", "telephone-event")}
		if err := dtx.RespondSDP(sess.Marshal(1, 1)); err != nil {
			t.Errorf("phone answer: %v", err)
		}
		<-dtx.Context().Done()
	})
	p.srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		if d, ok := legs.Load(req.CallID().Value()); ok {
			d.(*sipgo.DialogServerSession).ReadAck(req, tx)
		}
	})
	p.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if d, ok := legs.Load(req.CallID().Value()); ok {
			d.(*sipgo.DialogServerSession).ReadBye(req, tx)
			return
		}
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil)) // BYE for a call this phone placed
		close(p.hangup)
	})
	return p
}

func (p *phone) media(t *testing.T, remote media.Session) {
	ep, err := p.ports.Listen(lo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	if remote.Port != 0 {
		ep.SetRemote(remote.RTP())
	}
	p.ep, p.capture, p.sender = ep, media.NewCapture(101), media.NewSender(ep, media.PCMU, 101)
	ep.SetSink(p.capture.Sink)
}

// heard collects d of audio and returns its strength at freq.
func (p *phone) heard(d time.Duration, freq float64) (int, float64) {
	var s []int16
	end := time.After(d)
	for {
		select {
		case c := <-p.capture.Samples:
			s = append(s, c...)
		case <-end:
			return len(s), media.ToneRatio(s, freq)
		}
	}
}

// call places a call from the phone (authenticating as bob) to user at the
// test domain; once answered it ACKs and points the phone's RTP at Parley.
// A final error response comes back as *sipgo.ErrDialogResponse.
func (p *phone) call(ctx context.Context, t *testing.T, user string, onResponse func(*sip.Response)) (*sipgo.DialogClientSession, error) {
	t.Helper()
	p.media(t, media.Session{})
	offer := media.Session{Addr: lo, Port: int(p.ep.Local().Port()), Codecs: []media.RTPCodec{
		{PT: 0, Name: "PCMU", Rate: 8000, Channels: 1}, {PT: 101, Name: "telephone-event", Rate: 8000, Channels: 1, Fmtp: "0-15"}}}
	inv := p.request(sip.INVITE, "bob", sip.Uri{Scheme: "sip", User: user, Host: testDomain})
	inv.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: testDomain}, Params: sip.NewParams()})
	inv.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: 5998}})
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody(offer.Marshal(2, 2))
	cua := &sipgo.DialogUA{Client: p.c, ContactHDR: *inv.Contact(), RewriteContact: true}
	dc, err := cua.WriteInvite(ctx, inv)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { dc.Close() })
	if err := dc.WaitAnswer(ctx, sipgo.AnswerOptions{Username: "bob", Password: testPassword, OnResponse: func(r *sip.Response) error {
		if onResponse != nil {
			onResponse(r)
		}
		return nil
	}}); err != nil {
		return nil, err
	}
	if err := dc.Ack(ctx); err != nil {
		return nil, err
	}
	answer, err := media.ParseSDP(dc.InviteResponse.Body())
	if err != nil {
		return nil, err
	}
	p.ep.SetRemote(answer.RTP())
	return dc, nil
}

func TestInviteDialClientBridges(t *testing.T) {
	app := newCallApp(t, map[string]string{
		"/voice":  `<Response><Dial action="/dialed" timeout="10" answerOnBridge="true"><Client>alice</Client></Dial></Response>`,
		"/dialed": `<Response><Hangup/></Response>`,
	})
	e := newCallEnv(t, app)
	callee := newPhone(t, e, 47000)
	if res := callee.register("alice", testPassword, []string{"<sip:alice@127.0.0.1:5999>"}); res.StatusCode != 200 {
		t.Fatalf("register: %d", res.StatusCode)
	}
	caller := newPhone(t, e, 47100)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ringing := false
	go func() {
		// Answer once Parley has forked to alice and relayed ringing.
		time.Sleep(300 * time.Millisecond)
		close(callee.answer)
	}()
	_, err := caller.call(ctx, t, "alice", func(r *sip.Response) { ringing = ringing || r.StatusCode == 180 })
	if err != nil {
		t.Fatalf("caller: %v", err)
	}

	<-callee.ready
	// Audio flows both ways through Parley's anchored media.
	go caller.sender.PlayULaw(context.Background(), media.PCMU.Encode(nil, media.Tone(1000, 6000, 9000)))
	if n, r := callee.heard(700*time.Millisecond, 1000); n < 3000 || r < 0.6 {
		t.Fatalf("callee heard %d samples, 1 kHz ratio %.2f", n, r)
	}
	go callee.sender.PlayULaw(context.Background(), media.PCMU.Encode(nil, media.Tone(440, 6000, 9000)))
	if n, r := caller.heard(700*time.Millisecond, 440); n < 3000 || r < 0.6 {
		t.Fatalf("caller heard %d samples, 440 Hz ratio %.2f", n, r)
	}
	if p, _ := e.reg.Get(ctx, e.acc.Sid, presence.SIPIdentity("alice", testDomain)); p.Status != presence.Busy {
		t.Fatalf("alice is %s during the call", p.Status)
	}

	// The callee hangs up: Parley runs the Dial action, which hangs up the caller.
	callee.mu.Lock()
	dtx := callee.dtx
	callee.mu.Unlock()
	if err := dtx.Bye(ctx); err != nil {
		t.Fatalf("callee bye: %v", err)
	}
	select {
	case <-caller.hangup:
	case <-time.After(5 * time.Second):
		t.Fatal("Parley did not hang up the caller")
	}
	d := app.got("/dialed")
	if len(d) != 1 || d[0].Get("DialCallStatus") != "completed" || d[0].Get("DialCallDuration") == "" {
		t.Fatalf("dial action: %v", d)
	}
	v := app.got("/voice")
	if len(v) != 1 || v[0].Get("From") != presence.SIPIdentity("bob", testDomain) || v[0].Get("To") != "sip:alice@"+testDomain {
		t.Fatalf("voice webhook: %v", v)
	}
	if !ringing {
		t.Error("ringing was not relayed to the caller")
	}
	waitFor(t, "alice available again", func() bool {
		p, _ := e.reg.Get(ctx, e.acc.Sid, presence.SIPIdentity("alice", testDomain))
		return p.Status == presence.Available
	})
}

// runSIPp runs one SIPp scenario against the env's UDP listener.
func runSIPp(t *testing.T, e *env, scenario string, args ...string) {
	t.Helper()
	sipp := needPeer(t, "sipp")
	dir := t.TempDir()
	path, err := filepath.Abs(filepath.Join("testdata", scenario))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	full := append([]string{"-sf", path, "-i", "127.0.0.1", "-p", fmt.Sprint(freePort(t)),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(freePort(t) &^ 1), "-m", "1", "-l", "1",
		"-timeout", "30s", "-timeout_error", "-trace_err", "-nostdin"}, args...)
	full = append(full, fmt.Sprintf("127.0.0.1:%d", portOf(e.srv.Addr("udp"))))
	cmd := exec.CommandContext(ctx, sipp, full...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		logs, _ := filepath.Glob(filepath.Join(dir, "*errors.log"))
		var errLog []byte
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			errLog = append(errLog, b...)
		}
		t.Fatalf("sipp %s: %v\n%s\n%s", scenario, err, lastLines(out.String(), 30), errLog)
	}
}

func TestSIPpCallerGather(t *testing.T) {
	app := newCallApp(t, map[string]string{
		"/voice":    `<Response><Gather numDigits="2" action="/gathered" timeout="8"><Pause length="8"/></Gather></Response>`,
		"/gathered": `<Response><Hangup/></Response>`,
	})
	e := newCallEnv(t, app)
	runSIPp(t, e, "sipp_call_dtmf.xml", "-s", "ivr", "-key", "user", "bob", "-key", "domain", testDomain, "-au", "bob", "-ap", testPassword)
	g := app.got("/gathered")
	if len(g) != 1 || g[0].Get("Digits") != "42" {
		t.Fatalf("gather action: %v", g)
	}
}

// startBaresip runs baresip registered as user over UDP, answering calls
// automatically with a 440 Hz sine and writing what it hears to WAV files
// in the returned directory.
func startBaresip(t *testing.T, e *env, user, password string) (dumpDir string) {
	t.Helper()
	baresip := needPeer(t, "baresip")
	dir, dumps := t.TempDir(), t.TempDir()
	listen := freeBaresipPort(t)
	config := fmt.Sprintf(`poll_method		epoll
sip_listen		127.0.0.1:%d
module_path		/usr/lib/baresip/modules
module			g711.so
module			ausine.so
module			sndfile.so
module_app		account.so
module_app		menu.so
audio_player		nil
audio_source		ausine,600
ausrc_srate		48000
ausrc_channels		2
audio_alert		nil
snd_path		%s
rtp_ports		48000-48999
`, listen, dumps)
	account := fmt.Sprintf("<sip:%s@%s;transport=udp>;auth_pass=%s;outbound=\"sip:127.0.0.1:%d;transport=udp\";regint=120;answermode=auto;audio_codecs=PCMU\n",
		user, testDomain, password, portOf(e.srv.Addr("udp")))
	for name, body := range map[string]string{"config": config, "accounts": account, "contacts": "", "uuid": "00000000-0000-4000-8000-000000000009\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	cmd := exec.CommandContext(ctx, baresip, "-f", dir, "-t", "35")
	var out bytes.Buffer
	var mu sync.Mutex
	cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &out}, lockedWriter{&mu, &out}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("baresip output:\n%s", lastLines(out.String(), 40))
			mu.Unlock()
		}
	})
	waitFor(t, "baresip registered", func() bool { return len(e.bindings(presence.SIPIdentity(user, testDomain))) > 0 })
	return dumps
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestBaresipAnswersDialClient(t *testing.T) {
	app := newCallApp(t, map[string]string{
		"/voice":  `<Response><Dial action="/dialed" timeout="10"><Client>dave</Client></Dial></Response>`,
		"/dialed": `<Response><Hangup/></Response>`,
	})
	e := newCallEnv(t, app)
	ctx := context.Background()
	lists, _, err := e.st.ListSIPCredentialLists(ctx, e.acc.Sid, store.Page{Size: 1})
	if err != nil || len(lists) == 0 {
		t.Fatalf("lists: %v", err)
	}
	const pw = "baresip-secret-2" // baresip's account syntax cannot carry spaces
	if _, err := e.st.CreateSIPCredential(ctx, e.acc.Sid, lists[0].Sid, "dave", pw, "parley"); err != nil {
		t.Fatal(err)
	}
	dumps := startBaresip(t, e, "dave", pw)

	caller := newPhone(t, e, 47200)
	caller.media(t, media.Session{})
	dc := caller.invite(t, "dave")
	// Parley answered the caller at once and plays ringback (440+480 Hz)
	// until baresip answers; baresip sends its 600 Hz once it hears RTP.
	// The caller talks (1 kHz) until it has heard baresip for a while; how
	// soon baresip answers depends on how busy the machine is, so it
	// listens in half-second windows for up to 8 s.
	talkCtx, stopTalking := context.WithCancel(ctx)
	talking := make(chan error, 1)
	go func() {
		talking <- caller.sender.PlayULaw(talkCtx, media.PCMU.Encode(nil, media.Tone(1000, 12*8000, 9000)))
	}()
	windows, best600 := 0, 0.0
	for deadline := time.Now().Add(8 * time.Second); windows < 4 && time.Now().Before(deadline); {
		if n, r := caller.heard(500*time.Millisecond, 600); n >= 3000 && r >= 0.5 {
			windows++ // baresip's 600 Hz, through Parley
		} else {
			best600 = max(best600, r)
		}
	}
	stopTalking()
	if err := <-talking; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if windows < 4 {
		t.Fatalf("caller heard baresip's 600 Hz in %d half-second windows (best other ratio %.2f)", windows, best600)
	}
	bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := dc.Bye(bctx); err != nil {
		t.Fatalf("caller bye: %v", err)
	}
	waitFor(t, "the dial action", func() bool { return len(app.got("/dialed")) == 1 })
	if d := app.got("/dialed")[0]; d.Get("DialCallStatus") != "completed" {
		t.Fatalf("dial action %v", d)
	}
	waitFor(t, "dave available again", func() bool {
		p, _ := e.reg.Get(ctx, e.acc.Sid, presence.SIPIdentity("dave", testDomain))
		return p.Status == presence.Available
	})
	// baresip wrote what it heard: the caller's 1 kHz tone.
	var heard []int16
	waitFor(t, "baresip's recording", func() bool {
		files, _ := filepath.Glob(filepath.Join(dumps, "*dec.wav"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if a, err := media.DecodeWAV(b); err == nil && len(a.Samples) > len(heard) {
				heard = a.Resample()
			}
		}
		return len(heard) > 8000
	})
	best := 0.0
	for i := 0; i+4000 <= len(heard); i += 2000 {
		best = max(best, media.ToneRatio(heard[i:i+4000], 1000))
	}
	if best < 0.6 {
		t.Fatalf("baresip heard %d samples, best 1 kHz ratio %.2f", len(heard), best)
	}
}

// invite calls user through Parley as bob with the phone's media and
// returns the established dialog.
func (p *phone) invite(t *testing.T, user string) *sipgo.DialogClientSession {
	t.Helper()
	offer := media.Session{Addr: lo, Port: int(p.ep.Local().Port()), Codecs: []media.RTPCodec{
		{PT: 0, Name: "PCMU", Rate: 8000, Channels: 1}, {PT: 101, Name: "telephone-event", Rate: 8000, Channels: 1, Fmtp: "0-15"}}}
	inv := p.request(sip.INVITE, "bob", sip.Uri{Scheme: "sip", User: user, Host: testDomain})
	inv.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: testDomain}, Params: sip.NewParams()})
	inv.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: 5998}})
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody(offer.Marshal(2, 2))
	ua := &sipgo.DialogUA{Client: p.c, ContactHDR: *inv.Contact(), RewriteContact: true}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	dc, err := ua.WriteInvite(ctx, inv)
	if err != nil {
		t.Fatal(err)
	}
	if err := dc.WaitAnswer(ctx, sipgo.AnswerOptions{Username: "bob", Password: testPassword}); err != nil {
		t.Fatalf("invite %s: %v", user, err)
	}
	if err := dc.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	answer, err := media.ParseSDP(dc.InviteResponse.Body())
	if err != nil {
		t.Fatal(err)
	}
	p.ep.SetRemote(answer.RTP())
	return dc
}

func TestForkFirstAnswerWinsOthersCancelled(t *testing.T) {
	app := newCallApp(t, map[string]string{
		"/voice":  `<Response><Dial action="/dialed" timeout="10" answerOnBridge="true"><Client>alice</Client></Dial></Response>`,
		"/dialed": `<Response><Hangup/></Response>`,
	})
	e := newCallEnv(t, app)
	desk, mobile := newPhone(t, e, 47300), newPhone(t, e, 47400)
	for i, p := range []*phone{desk, mobile} {
		contact := fmt.Sprintf("<sip:alice@127.0.0.1:%d>", 5990+i)
		if res := p.register("alice", testPassword, []string{contact}); res.StatusCode != 200 {
			t.Fatalf("register: %d", res.StatusCode)
		}
	}
	if n := len(e.bindings(presence.SIPIdentity("alice", testDomain))); n != 2 {
		t.Fatalf("%d bindings", n)
	}
	caller := newPhone(t, e, 47500)
	caller.media(t, media.Session{})
	go func() {
		time.Sleep(400 * time.Millisecond) // both ring
		close(mobile.answer)
	}()
	dc := caller.invite(t, "alice")
	<-mobile.ready
	waitFor(t, "the desk phone cancelled", func() bool {
		desk.mu.Lock()
		defer desk.mu.Unlock()
		return desk.cancelled == 1
	})
	desk.mu.Lock()
	st := desk.dtx.LoadState()
	answered := st == sip.DialogStateEstablished || st == sip.DialogStateConfirmed
	desk.mu.Unlock()
	if answered {
		t.Fatal("the desk phone's dialog was established")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := dc.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(app.got("/dialed")) != 1 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("no dial action\n%s", buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func openFDs() int {
	fds, _ := os.ReadDir("/proc/self/fd")
	return len(fds)
}

// TestNoLeaksAfter1000Calls runs 1 000 bridged calls through the B2BUA and
// checks that goroutines, RTP ports and file descriptors return to baseline.
// sippCounter reads a cumulative counter ("Failed call") from SIPp's final
// statistics screen; -1 when it is not there.
func sippCounter(out, name string) int {
	i := strings.LastIndex(out, name)
	if i < 0 {
		return -1
	}
	fields := strings.Split(out[i:], "|")
	if len(fields) < 3 {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(fields[2], "\n", 2)[0]))
	if err != nil {
		return -1
	}
	return n
}

func TestNoLeaksAfter1000Calls(t *testing.T) {
	if testing.Short() {
		t.Skip("1 000 calls")
	}
	sipp := needPeer(t, "sipp")
	// answerOnBridge: callers are answered once bridged, so every call is a
	// bridged call (cancellation races are the fork test's subject).
	app := newCallApp(t, map[string]string{"/voice": `<Response><Dial timeout="5" answerOnBridge="true"><Client>alice</Client></Dial></Response>`})
	e := newCallEnv(t, app)
	ports := e.srv.calls.Ports
	port := fmt.Sprint(freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	testdata, _ := filepath.Abs("testdata")
	reg := exec.CommandContext(ctx, sipp, "-sf", filepath.Join(testdata, "sipp_register_keep.xml"), "-key", "user", "alice",
		"-key", "domain", testDomain, "-au", "alice", "-ap", testPassword, "-i", "127.0.0.1", "-p", port,
		"-m", "1", "-timeout", "10s", "-timeout_error", "-nostdin", e.addr("udp"))
	reg.Dir = t.TempDir()
	if b, err := reg.CombinedOutput(); err != nil {
		t.Fatalf("register: %v\n%s", err, lastLines(string(b), 20))
	}
	time.Sleep(200 * time.Millisecond) // let the first requests' goroutines settle
	baseG, baseFD := runtime.NumGoroutine(), openFDs()

	n := 1000
	if v, err := strconv.Atoi(os.Getenv("PARLEY_LEAK_CALLS")); err == nil {
		n = v
	}
	uas := exec.CommandContext(ctx, sipp, "-sf", filepath.Join(testdata, "sipp_uas_answer.xml"), "-key", "user", "alice",
		"-i", "127.0.0.1", "-p", port, "-mi", "127.0.0.1", "-mp", fmt.Sprint(freePort(t)&^1), "-m", fmt.Sprint(n), "-nostdin")
	uas.Dir = t.TempDir()
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	defer uas.Process.Kill()
	uac := exec.CommandContext(ctx, sipp, "-sf", filepath.Join(testdata, "sipp_call_basic.xml"), "-s", "alice",
		"-key", "user", "bob", "-key", "domain", testDomain, "-au", "bob", "-ap", testPassword,
		"-i", "127.0.0.1", "-p", fmt.Sprint(freePort(t)), "-mi", "127.0.0.1", "-mp", fmt.Sprint(freePort(t)&^1),
		"-m", fmt.Sprint(n), "-r", "100", "-l", "200", "-d", "0", "-timeout", "60s", "-timeout_error", "-nostdin", e.addr("udp"))
	uac.Dir = t.TempDir()
	var out bytes.Buffer
	uac.Stdout, uac.Stderr = &out, &out
	if err := uac.Run(); err != nil {
		// On a loaded machine (the whole suite runs packages in parallel
		// on two cores) a few calls may time out in SIPp; this test is
		// about what they leave behind, so up to 2 % are tolerated —
		// failed calls must not leak either.
		failed := sippCounter(out.String(), "Failed call")
		if failed < 0 || failed > n/50 {
			t.Fatalf("sipp caller: %v (%d failed)\n%s", err, failed, lastLines(out.String(), 30))
		}
		t.Logf("%d of %d calls failed in SIPp under load", failed, n)
	}
	if got := len(app.got("/voice")); got < n-n/50 {
		t.Fatalf("%d instruction fetches for %d calls", got, n)
	}
	for end := time.Now().Add(10 * time.Second); ports.InUse() != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			buf := make([]byte, 4<<20)
			t.Fatalf("%d RTP port pairs still in use\n%s", ports.InUse(), buf[:runtime.Stack(buf, true)])
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseG+10 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > baseG+10 {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines %d, baseline %d\n%s", g, baseG, buf[:runtime.Stack(buf, true)])
	}
	if fd := openFDs(); fd > baseFD+10 {
		t.Fatalf("open files %d, baseline %d", fd, baseFD)
	}
}
