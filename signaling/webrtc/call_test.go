package webrtc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/presence"
)

// A SIP caller reaches a browser through <Dial><Client>: the browser gets
// incoming with an SDP offer, answers, and media flows both ways through
// Parley; DTMF crosses in both directions; the browser hangs up and the SIP
// caller gets a BYE.
func TestSIPCallToBrowserBridgesMediaDTMFAndBrowserHangsUp(t *testing.T) {
	e := newTestEnv(t, map[string]string{
		"/voice":  `<Response><Dial action="/dialed" timeout="10"><Client>alice</Client></Dial></Response>`,
		"/dialed": `<Response><Hangup/></Response>`,
	}, nil)
	b := newBrowser(t, e, e.token("alice", true, "", time.Hour))
	caller := newSIPCaller(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	answered := make(chan error, 1)
	go func() { answered <- caller.call(ctx, "alice") }()

	in := b.expect(TypeIncoming, 10*time.Second)
	if in.CallSid == "" || in.From != presence.SIPIdentity("bob", testDomain) || in.SDP == "" {
		t.Fatalf("incoming: %+v", in)
	}
	b.send(Frame{Type: TypeRinging, CallSid: in.CallSid})
	b.answer(in)
	if err := <-answered; err != nil {
		t.Fatalf("SIP caller: %v", err)
	}
	// The caller is answered at once (no answerOnBridge); alice is busy once
	// her answer connected.
	waitFor(t, "alice busy", func() bool { return e.presence(presence.ClientIdentity("alice")).Status == presence.Busy })
	// Browser → SIP: the browser's 1 kHz tone reaches the caller.
	if n, r := caller.heard(700*time.Millisecond, 1000); n < 3000 || r < 0.6 {
		t.Fatalf("SIP caller heard %d samples, 1 kHz ratio %.2f", n, r)
	}
	// SIP → browser: RTP arrives at the browser's track.
	silent := make(chan struct{})
	go func() { caller.sender.Silence(ctx, time.Second); close(silent) }()
	waitFor(t, "RTP at the browser", func() bool { return b.received.Load() > 20 })
	<-silent // one sender at a time

	// DTMF SIP → browser: RFC 4733 from the caller becomes a dtmf frame.
	go caller.sender.SendDigits(ctx, "5")
	if f := b.expect(TypeDTMF, 5*time.Second); f.Digits != "5" || f.CallSid != in.CallSid {
		t.Fatalf("dtmf to browser: %+v", f)
	}
	// DTMF browser → SIP: a dtmf frame becomes RFC 4733 at the caller.
	b.send(Frame{Type: TypeDTMF, CallSid: in.CallSid, Digits: "7#"})
	for _, want := range []byte("7#") {
		select {
		case d := <-caller.capture.Digits:
			if d != want {
				t.Fatalf("caller got digit %q, want %q", d, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("caller got no digit %q", want)
		}
	}

	// The browser hangs up: the caller gets a BYE and the Dial action runs.
	b.send(Frame{Type: TypeHangup, CallSid: in.CallSid})
	select {
	case <-caller.byes:
	case <-time.After(5 * time.Second):
		t.Fatal("no BYE at the SIP caller")
	}
	waitFor(t, "dial action", func() bool { return len(e.app.got("/dialed")) == 1 })
	if d := e.app.got("/dialed")[0]; d.Get("DialCallStatus") != "completed" {
		t.Fatalf("dial action: %v", d)
	}
	waitFor(t, "alice available again", func() bool { return e.presence(presence.ClientIdentity("alice")).Status == presence.Available })
	waitFor(t, "ports released", func() bool { return e.ports.InUse() == 0 })
}

// The SIP caller hangs up: the browser gets hangup.
func TestSIPCallerHangsUpBrowserGetsHangup(t *testing.T) {
	e := newTestEnv(t, map[string]string{
		"/voice": `<Response><Dial timeout="10"><Client>alice</Client></Dial></Response>`,
	}, nil)
	b := newBrowser(t, e, e.token("alice", true, "", time.Hour))
	caller := newSIPCaller(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	answered := make(chan error, 1)
	go func() { answered <- caller.call(ctx, "alice") }()
	in := b.expect(TypeIncoming, 10*time.Second)
	b.answer(in)
	if err := <-answered; err != nil {
		t.Fatalf("SIP caller: %v", err)
	}
	go caller.sender.Silence(ctx, 3*time.Second)
	waitFor(t, "RTP at the browser", func() bool { return b.received.Load() > 5 })
	if err := caller.dc.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	if f := b.expect(TypeHangup, 5*time.Second); f.CallSid != in.CallSid {
		t.Fatalf("hangup: %+v", f)
	}
	waitFor(t, "ports released", func() bool { return e.ports.InUse() == 0 })
}

// A browser that declines makes the Dial busy; an unanswered ring is
// cancelled at the Dial timeout with a hangup frame.
func TestBrowserDeclinesAndRingTimesOut(t *testing.T) {
	e := newTestEnv(t, map[string]string{
		"/voice":  `<Response><Dial action="/dialed" timeout="2"><Client>alice</Client></Dial></Response>`,
		"/dialed": `<Response><Hangup/></Response>`,
	}, nil)
	b := newBrowser(t, e, e.token("alice", true, "", time.Hour))
	caller := newSIPCaller(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go caller.call(ctx, "alice")
	in := b.expect(TypeIncoming, 10*time.Second)
	b.send(Frame{Type: TypeReject, CallSid: in.CallSid, Status: 486})
	waitFor(t, "dial action", func() bool { return len(e.app.got("/dialed")) == 1 })
	if d := e.app.got("/dialed")[0]; d.Get("DialCallStatus") != "busy" {
		t.Fatalf("declined: %v", d)
	}

	caller2 := newSIPCaller(t, e)
	go caller2.call(ctx, "alice")
	in = b.expect(TypeIncoming, 10*time.Second)
	if f := b.expect(TypeHangup, 5*time.Second); f.CallSid != in.CallSid {
		t.Fatalf("cancel: %+v", f)
	}
	waitFor(t, "second dial action", func() bool { return len(e.app.got("/dialed")) == 2 })
	if d := e.app.got("/dialed")[1]; d.Get("DialCallStatus") != "no-answer" {
		t.Fatalf("unanswered: %v", d)
	}
}

// With NAT 1:1 addresses configured, Parley's candidates carry the public
// address instead of the local one.
func TestNAT1To1AddressInOffer(t *testing.T) {
	e := newTestEnv(t, map[string]string{
		"/voice": `<Response><Dial timeout="5"><Client>alice</Client></Dial></Response>`,
	}, func(c *Config) { c.NAT1To1IPs = []string{"203.0.113.7"} })
	b := newBrowser(t, e, e.token("alice", true, "", time.Hour))
	caller := newSIPCaller(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go caller.call(ctx, "alice")
	in := b.expect(TypeIncoming, 10*time.Second)
	if !strings.Contains(in.SDP, " 203.0.113.7 ") || strings.Contains(in.SDP, " 127.0.0.1 ") {
		t.Fatalf("offer candidates:\n%s", in.SDP)
	}
	b.send(Frame{Type: TypeReject, CallSid: in.CallSid})
}
