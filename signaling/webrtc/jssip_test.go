package webrtc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleyhq/parley/internal/browsertest"
	"github.com/parleyhq/parley/presence"
)

// jssipBundle builds JsSIP (installed from npm by `make jsdeps` into
// testdata/jssip) into one browser script with esbuild.
func jssipBundle(t *testing.T) string {
	t.Helper()
	return npmBundle(t, filepath.Join("jssip", "lib", "JsSIP.js"), "JsSIP")
}

// npmBundle bundles entry (under testdata/jssip/node_modules) as the global name.
func npmBundle(t *testing.T, entry, global string) string {
	t.Helper()
	dir, _ := filepath.Abs("testdata/jssip")
	esbuild := filepath.Join(dir, "node_modules", ".bin", "esbuild")
	if _, err := os.Stat(esbuild); err != nil {
		if os.Getenv("PARLEY_REQUIRE_PEERS") == "1" {
			t.Fatalf("JsSIP fixture not installed: run `make jsdeps` (%v)", err)
		}
		t.Skip("JsSIP fixture not installed: run `make jsdeps`")
	}
	out := filepath.Join(t.TempDir(), global+".js")
	cmd := exec.Command(esbuild, filepath.Join(dir, "node_modules", entry), "--bundle", "--format=iife",
		"--global-name="+global, "--log-level=warning", "--outfile="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("esbuild: %v\n%s", err, b)
	}
	return out
}

const jssipPage = `<!doctype html><title>JsSIP</title><script src="/jssip.js"></script><script>
window.state = {registered: false, sessions: 0, confirmed: false, errors: []};
const ua = new JsSIP.UA({
  sockets: [new JsSIP.WebSocketInterface(%q)],
  uri: 'sip:alice@pbx.test',
  authorization_jwt: %q,
  register: true,
});
ua.on('registered', () => { state.registered = true; });
ua.on('registrationFailed', e => state.errors.push('registration: ' + e.cause));
ua.on('newRTCSession', ({session, originator}) => {
  if (originator !== 'remote') return; // calls it places are set up by callOut
  state.sessions++;
  window.session = session;
  session.on('confirmed', () => { state.confirmed = true; });
  session.on('failed', e => state.errors.push('failed: ' + e.cause));
  session.on('ended', () => { state.ended = true; });
  session.answer({mediaConstraints: {audio: true, video: false}, pcConfig: {iceServers: []}});
});
window.callOut = target => {
  const session = ua.call(target, {mediaConstraints: {audio: true, video: false}, pcConfig: {iceServers: []}});
  window.session = session;
  session.on('confirmed', () => { state.confirmed = true; });
  session.on('failed', e => state.errors.push('failed: ' + e.cause));
  session.on('ended', () => { state.ended = true; });
};
window.rtp = async () => {
  const out = {in: 0, out: 0};
  if (!window.session || !session.connection) return out;
  (await session.connection.getStats()).forEach(r => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') out.in += r.packetsReceived;
    if (r.type === 'outbound-rtp' && r.kind === 'audio') out.out += r.packetsSent;
  });
  window.lastRTP = out;
  return out;
};
JsSIP.debug.enable('JsSIP:Transport JsSIP:UA JsSIP:RegistratorS JsSIP:Registrator');
ua.start();
</script>`

// JsSIP registers over the SIP WebSocket transport with a Bearer token
// (authorization_jwt) and answers a <Dial><Client> call; its DTLS-SRTP
// media is terminated by pion and bridged to the SIP caller's RTP.
func TestJsSIPOverWebSocketAnswersCall(t *testing.T) {
	bundle := jssipBundle(t)
	b := browsertest.Start(t)
	e := newTestEnv(t, map[string]string{
		"/voice": `<Response><Dial timeout="15" answerOnBridge="true"><Client>alice</Client></Dial></Response>`,
	}, nil)
	_, wsPort, _ := net.SplitHostPort(e.sip.Addr("ws").String())
	// JsSIP sends authorization_jwt verbatim as the Authorization value.
	page := fmt.Sprintf(jssipPage, "ws://127.0.0.1:"+wsPort, "Bearer "+e.token("alice", true, "", time.Hour))
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/jssip.js" {
			http.ServeFile(w, r, bundle)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(page))
	}))
	defer web.Close()
	ctx := b.Tab()
	if err := chromedp.Run(ctx, chromedp.Navigate(web.URL)); err != nil {
		t.Fatal(err)
	}
	b.Poll(ctx, `window.state && window.state.registered`, 10*time.Second)
	bs, err := e.reg.Bindings(context.Background(), e.acc.Sid, presence.ClientIdentity("alice"))
	if err != nil || len(bs) != 1 || (bs[0].Transport != presence.TransportWS && bs[0].Transport != presence.TransportWSS) {
		t.Fatalf("bindings of client:alice: %+v %v", bs, err)
	}

	caller := newSIPCaller(t, e)
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := caller.call(cctx, "alice"); err != nil {
		t.Fatalf("SIP caller: %v\nbrowser console:\n%s", err, b.Console)
	}
	b.Poll(ctx, `window.state.confirmed`, 10*time.Second)
	go caller.sender.Silence(cctx, 3*time.Second)
	// The browser receives the caller's RTP and sends its fake microphone.
	b.Poll(ctx, `window.rtp().then(() => false), (window.lastRTP && window.lastRTP.in > 20 && window.lastRTP.out > 20)`, 10*time.Second)
	if n, _ := caller.heard(500*time.Millisecond, 1000); n < 1000 {
		t.Fatalf("SIP caller heard %d samples from JsSIP", n)
	}
	browsertest.Screenshot(t, ctx, "jssip-in-call")
	if err := caller.dc.Bye(cctx); err != nil {
		t.Fatal(err)
	}
	b.Poll(ctx, `window.state.ended === true`, 10*time.Second)
	waitFor(t, "ports released", func() bool { return e.ports.InUse() == 0 })
}

// JsSIP places a call (an INVITE with a WebRTC offer, Bearer token): Parley
// answers it with pion, runs the token's outgoing application, and an
// RFC 4733 digit from the browser reaches <Gather>.
func TestJsSIPPlacesCall(t *testing.T) {
	bundle := jssipBundle(t)
	b := browsertest.Start(t)
	e := newTestEnv(t, map[string]string{
		"/outgoing": `<Response><Gather numDigits="1" action="/gathered" timeout="15"><Pause length="15"/></Gather></Response>`,
		"/gathered": `<Response><Hangup/></Response>`,
	}, nil)
	_, wsPort, _ := net.SplitHostPort(e.sip.Addr("ws").String())
	page := fmt.Sprintf(jssipPage, "ws://127.0.0.1:"+wsPort, "Bearer "+e.token("alice", true, "AP0123456789", time.Hour))
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/jssip.js" {
			http.ServeFile(w, r, bundle)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(page))
	}))
	defer web.Close()
	ctx := b.Tab()
	if err := chromedp.Run(ctx, chromedp.Navigate(web.URL)); err != nil {
		t.Fatal(err)
	}
	b.Poll(ctx, `window.state && window.state.registered`, 10*time.Second)
	if err := chromedp.Run(ctx, chromedp.Evaluate(`callOut('sip:support@pbx.test'), true`, nil)); err != nil {
		t.Fatal(err)
	}
	b.Poll(ctx, `window.state.confirmed`, 15*time.Second)
	o := e.app.got("/outgoing")
	if len(o) != 1 || o[0].Get("From") != presence.ClientIdentity("alice") || o[0].Get("ApplicationSid") != "AP0123456789" {
		t.Fatalf("outgoing webhook: %v", o)
	}
	// <Pause> inside <Gather> sends silence: the browser receives RTP.
	b.Poll(ctx, `window.rtp().then(() => false), (window.lastRTP && window.lastRTP.in > 20 && window.lastRTP.out > 20)`, 10*time.Second)
	if err := chromedp.Run(ctx, chromedp.Evaluate(`session.sendDTMF('7', {transportType: 'RFC2833'}), true`, nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "gather action", func() bool { return len(e.app.got("/gathered")) == 1 })
	if d := e.app.got("/gathered")[0].Get("Digits"); d != "7" {
		t.Fatalf("gathered %q", d)
	}
	b.Poll(ctx, `window.state.ended === true`, 10*time.Second)
	waitFor(t, "ports released", func() bool { return e.ports.InUse() == 0 })
}

const sipjsPage = `<!doctype html><title>SIP.js</title><script src="/lib.js"></script><script>
window.state = {registered: false, established: false, ended: false, errors: []};
const ua = new SIP.UserAgent({
  uri: SIP.UserAgent.makeURI('sip:alice@pbx.test'),
  transportOptions: {server: %q},
  authorizationUsername: 'alice',
  authorizationPassword: %q,
  sessionDescriptionHandlerFactoryOptions: {peerConnectionConfiguration: {iceServers: []}, iceGatheringTimeout: 1000},
  delegate: {
    onInvite(invitation) {
      window.session = invitation;
      invitation.stateChange.addListener(s => {
        if (s === SIP.SessionState.Established) state.established = true;
        if (s === SIP.SessionState.Terminated) state.ended = true;
      });
      invitation.accept({sessionDescriptionHandlerOptions: {constraints: {audio: true, video: false}}})
        .catch(e => state.errors.push('accept: ' + e));
    },
  },
});
window.rtp = async () => {
  const out = {in: 0, out: 0};
  const pc = window.session && session.sessionDescriptionHandler && session.sessionDescriptionHandler.peerConnection;
  if (!pc) return out;
  (await pc.getStats()).forEach(r => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') out.in += r.packetsReceived;
    if (r.type === 'outbound-rtp' && r.kind === 'audio') out.out += r.packetsSent;
  });
  window.lastRTP = out;
  return out;
};
ua.start().then(() => new SIP.Registerer(ua).register({requestDelegate: {
  onAccept() { state.registered = true; },
  onReject(r) { state.errors.push('register: ' + r.message.statusCode); },
}})).catch(e => state.errors.push('start: ' + e));
</script>`

// SIP.js registers over the SIP WebSocket transport with Digest and
// answers a <Dial><Client> call with DTLS-SRTP media terminated by pion.
func TestSIPjsOverWebSocketAnswersCall(t *testing.T) {
	bundle := npmBundle(t, filepath.Join("sip.js", "lib", "index.js"), "SIP")
	b := browsertest.Start(t)
	e := newTestEnv(t, map[string]string{
		"/voice": `<Response><Dial timeout="15" answerOnBridge="true"><Client>alice</Client></Dial></Response>`,
	}, nil)
	_, wsPort, _ := net.SplitHostPort(e.sip.Addr("ws").String())
	page := fmt.Sprintf(sipjsPage, "ws://127.0.0.1:"+wsPort, testPassword)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/lib.js" {
			http.ServeFile(w, r, bundle)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(page))
	}))
	defer web.Close()
	ctx := b.Tab()
	if err := chromedp.Run(ctx, chromedp.Navigate(web.URL)); err != nil {
		t.Fatal(err)
	}
	b.Poll(ctx, `window.state && window.state.registered`, 10*time.Second)
	caller := newSIPCaller(t, e)
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := caller.call(cctx, "alice"); err != nil {
		var errs []string
		chromedp.Run(ctx, chromedp.Evaluate(`window.state.errors`, &errs))
		t.Fatalf("SIP caller: %v; page errors %v\nbrowser console:\n%s", err, errs, b.Console)
	}
	b.Poll(ctx, `window.state.established`, 10*time.Second)
	go caller.sender.Silence(cctx, 3*time.Second)
	b.Poll(ctx, `window.rtp().then(() => false), (window.lastRTP && window.lastRTP.in > 20 && window.lastRTP.out > 20)`, 10*time.Second)
	if n, _ := caller.heard(500*time.Millisecond, 1000); n < 1000 {
		t.Fatalf("SIP caller heard %d samples from SIP.js", n)
	}
	if err := caller.dc.Bye(cctx); err != nil {
		t.Fatal(err)
	}
	b.Poll(ctx, `window.state.ended === true`, 10*time.Second)
	waitFor(t, "ports released", func() bool { return e.ports.InUse() == 0 })
}
