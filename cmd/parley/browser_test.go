package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleyhq/parley/internal/browsertest"
)

// TestBrowserPhoneAnswersSIPpCall: the demo softphone served by the binary
// registers in headless Chromium with a token, SIPp calls client alice via
// <Dial><Client>, the page answers, and RTP flows both ways: SIPp echoes
// what it receives (-rtp_echo), so packets received by the browser are
// packets SIPp got from it and sent back.
func TestBrowserPhoneAnswersSIPpCall(t *testing.T) {
	sipp := needBinary(t, "sipp")
	b := browsertest.Start(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<Response><Dial timeout="20" answerOnBridge="true"><Client>alice</Client></Dial></Response>`)
	}))
	defer app.Close()
	dir := t.TempDir()
	srv := startServer(t, dir)
	acct := runJSON(t, dir, "account", "create", "--name", "Browser")
	sid := acct["sid"].(string)
	key := runJSON(t, dir, "key", "create", "--account", sid, "--name", "browser")
	run(t, dir, "sip", "domain", "create", "--account", sid, "--name", "pbx.test", "--voice-url", app.URL+"/voice")
	run(t, dir, "sip", "user", "add", "--domain", "pbx.test", "--username", "bob", "--password", "correct-horse-battery")
	token := strings.TrimSpace(run(t, dir, "token", "--key", key["sid"].(string), "--identity", "alice", "--incoming"))

	ctx := b.Tab()
	if err := chromedp.Run(ctx, chromedp.Navigate(srv.base+"/phone"),
		chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SetValue("#token", token, chromedp.ByID),
		chromedp.Click("#register", chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	b.Poll(ctx, `document.getElementById('status').textContent === 'available'`, 10*time.Second)
	browsertest.Screenshot(t, ctx, "phone-registered")

	scenario, _ := filepath.Abs("../../signaling/webrtc/testdata/sipp_call_echo.xml")
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(sctx, sipp, "-sf", scenario, "-s", "alice", "-key", "user", "bob", "-key", "domain", "pbx.test",
		"-au", "bob", "-ap", "correct-horse-battery", "-i", "127.0.0.1", "-p", fmt.Sprint(freeUDPPort(t)),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(freeUDPPort(t)&^1), "-rtp_echo", "-d", "5000", "-m", "1", "-l", "1",
		"-timeout", "45s", "-timeout_error", "-nostdin", srv.sipUDP)
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sippDone := make(chan error, 1)
	go func() { sippDone <- cmd.Wait() }()

	b.Poll(ctx, `!document.getElementById('incoming').hidden`, 15*time.Second)
	var from string
	if err := chromedp.Run(ctx, chromedp.Text("#incomingFrom", &from, chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	if from != "sip:bob@pbx.test" {
		t.Fatalf("incoming from %q", from)
	}
	browsertest.Screenshot(t, ctx, "phone-incoming")
	if err := chromedp.Run(ctx, chromedp.Click("#accept", chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	// getStats: the browser sends, and receives its audio back from SIPp.
	b.Poll(ctx, `(s => s && s.packetsSent > 20 && s.packetsReceived > 20)(window.parleyPhone.lastStats)`, 15*time.Second)
	var stats map[string]any
	chromedp.Run(ctx, chromedp.Evaluate(`window.parleyPhone.lastStats`, &stats))
	t.Logf("browser RTP stats during the call: %v", stats)
	browsertest.Screenshot(t, ctx, "phone-in-call")

	select {
	case err := <-sippDone:
		if err != nil {
			t.Fatalf("sipp: %v\n%s\nserver log:\n%s", err, lastN(out.String(), 25), lastN(srv.stderr.String(), 25))
		}
	case <-time.After(40 * time.Second):
		t.Fatal("sipp did not finish")
	}
	// SIPp hung up: the page shows the call in its log and is available again.
	b.Poll(ctx, `document.querySelectorAll('#log li').length === 1 && document.getElementById('status').textContent === 'available'`, 10*time.Second)
	browsertest.Screenshot(t, ctx, "phone-after-call")
}

// TestBrowserPhoneCallsOutAndSendsDigits: the demo phone places a call
// (SDK connect → invite) through its token's outgoing application; the
// application gathers a digit, pressed on the page's dial pad (dtmf frame →
// RFC 4733 into the call), and hangs up.
func TestBrowserPhoneCallsOutAndSendsDigits(t *testing.T) {
	b := browsertest.Start(t)
	gathered := make(chan string, 1)
	voice := make(chan string, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "text/xml")
		switch r.URL.Path {
		case "/outgoing":
			select {
			case voice <- r.PostForm.Get("From") + " " + r.PostForm.Get("To"):
			default:
			}
			io.WriteString(w, `<Response><Gather numDigits="1" action="/gathered" timeout="15"><Pause length="15"/></Gather></Response>`)
		case "/gathered":
			select {
			case gathered <- r.PostForm.Get("Digits"):
			default:
			}
			io.WriteString(w, `<Response><Hangup/></Response>`)
		}
	}))
	defer app.Close()
	dir := t.TempDir()
	srv := startServer(t, dir)
	acct := runJSON(t, dir, "account", "create", "--name", "Browser")
	sid := acct["sid"].(string)
	key := runJSON(t, dir, "key", "create", "--account", sid, "--name", "browser")
	ap := runJSON(t, dir, "app", "create", "--account", sid, "--name", "softphone", "--voice-url", app.URL+"/outgoing")
	token := strings.TrimSpace(run(t, dir, "token", "--key", key["sid"].(string), "--identity", "alice", "--outgoing-app", ap["sid"].(string)))

	ctx := b.Tab()
	if err := chromedp.Run(ctx, chromedp.Navigate(srv.base+"/phone"),
		chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SetValue("#token", token, chromedp.ByID),
		chromedp.Click("#register", chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	b.Poll(ctx, `document.getElementById('status').textContent === 'available'`, 10*time.Second)
	if err := chromedp.Run(ctx, chromedp.SetValue("#number", "support", chromedp.ByID), chromedp.Click("#call", chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-voice:
		if v != "client:alice support" {
			t.Fatalf("outgoing webhook From/To: %q", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the outgoing application was not called\nconsole:\n%s", b.Console)
	}
	b.Poll(ctx, `(s => s && s.packetsSent > 10 && s.packetsReceived > 10)(window.parleyPhone.lastStats)`, 15*time.Second)
	browsertest.Screenshot(t, ctx, "phone-outgoing-call")
	if err := chromedp.Run(ctx, chromedp.Click(`#pad button[data-digit="5"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-gathered:
		if d != "5" {
			t.Fatalf("gathered %q", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no digit gathered\nconsole:\n%s", b.Console)
	}
	// <Hangup/> ends the call: the page logs it.
	b.Poll(ctx, `document.querySelectorAll('#log li').length === 1 && document.getElementById('status').textContent === 'available'`, 10*time.Second)
}

// TestSDKRefreshesToken: a Device whose token expires within a minute is
// told tokenWillExpire at once, gets a new token from onTokenWillExpire and
// stays registered with the new expiry.
func TestSDKRefreshesToken(t *testing.T) {
	b := browsertest.Start(t)
	dir := t.TempDir()
	srv := startServer(t, dir)
	acct := runJSON(t, dir, "account", "create", "--name", "Browser")
	key := runJSON(t, dir, "key", "create", "--account", acct["sid"].(string), "--name", "browser")
	short := strings.TrimSpace(run(t, dir, "token", "--key", key["sid"].(string), "--identity", "alice", "--incoming", "--ttl", "30s"))
	long := strings.TrimSpace(run(t, dir, "token", "--key", key["sid"].(string), "--identity", "alice", "--incoming", "--ttl", "1h"))
	ctx := b.Tab()
	script := fmt.Sprintf(`window.sdk = {registered: 0, asked: 0, error: ''};
import('/sdk/parley.js').then(({Device}) => {
  const d = new Device(%q, {onTokenWillExpire: async () => { sdk.asked++; return %q; }});
  window.device = d;
  d.on('registered', () => { sdk.registered++; });
  d.on('error', e => { sdk.error = e.message; });
  d.register();
}); true`, short, long)
	if err := chromedp.Run(ctx, chromedp.Navigate(srv.base+"/phone"), chromedp.Evaluate(script, nil)); err != nil {
		t.Fatal(err)
	}
	b.Poll(ctx, `window.sdk.asked === 1 && window.sdk.registered === 2 && window.device.state === 'registered'`, 10*time.Second)
	var errMsg string
	chromedp.Run(ctx, chromedp.Evaluate(`window.sdk.error`, &errMsg))
	if errMsg != "" {
		t.Fatalf("SDK error: %s", errMsg)
	}
}
