package webrtc

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley/presence"
)

func outgoingEnv(t *testing.T) (*env, *browser, *sipCaller) {
	e := newTestEnv(t, map[string]string{
		"/outgoing": `<Response><Dial action="/dialed" timeout="10"><Sip>sip:alice@pbx.test</Sip></Dial></Response>`,
		"/dialed":   `<Response><Hangup/></Response>`,
	}, nil)
	phone := newSIPCaller(t, e)
	phone.answerCalls("alice")
	b := newBrowser(t, e, e.token("bob", false, "AP0123456789", time.Hour))
	return e, b, phone
}

// A browser places a call through its token's outgoing application to a
// registered SIP phone: media both ways, DTMF to the phone, the phone hangs
// up and the browser gets hangup.
func TestBrowserCallsSIPPhone(t *testing.T) {
	e, b, phone := outgoingEnv(t)
	b.invite("r1", "alice", map[string]string{"Campaign": "spring"})
	select {
	case phone.dtx = <-phone.answered:
	case <-time.After(10 * time.Second):
		t.Fatal("the phone was not called")
	}
	ans := b.expect(TypeAnswer, 10*time.Second)
	if ans.Ref != "r1" || ans.CallSid == "" {
		t.Fatalf("answer: %+v", ans)
	}
	b.acceptAnswer(ans)
	o := e.app.got("/outgoing")
	if len(o) != 1 || o[0].Get("From") != presence.ClientIdentity("bob") || o[0].Get("To") != "alice" || o[0].Get("Campaign") != "spring" ||
		o[0].Get("ApplicationSid") != "AP0123456789" {
		t.Fatalf("outgoing webhook: %v", o)
	}
	if n, r := phone.heard(time.Second, 1000); n < 3000 || r < 0.6 {
		t.Fatalf("phone heard %d samples, 1 kHz ratio %.2f", n, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	silent := make(chan struct{})
	go func() { phone.sender.Silence(ctx, time.Second); close(silent) }()
	waitFor(t, "RTP at the browser", func() bool { return b.received.Load() > 20 })
	<-silent
	b.send(Frame{Type: TypeDTMF, CallSid: ans.CallSid, Digits: "42"})
	for _, want := range []byte("42") {
		select {
		case d := <-phone.capture.Digits:
			if d != want {
				t.Fatalf("phone got %q, want %q", d, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("phone got no digit %q", want)
		}
	}
	if err := phone.dtx.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	if f := b.expect(TypeHangup, 5*time.Second); f.CallSid != ans.CallSid {
		t.Fatalf("hangup: %+v", f)
	}
	waitFor(t, "dial action", func() bool { return len(e.app.got("/dialed")) == 1 })
	waitFor(t, "ports released", func() bool { return e.ports.InUse() == 0 })
}

// The browser hangs up its call: the SIP phone gets a BYE.
func TestBrowserHangsUpOutgoingCall(t *testing.T) {
	e, b, phone := outgoingEnv(t)
	b.invite("r2", "alice", nil)
	select {
	case phone.dtx = <-phone.answered:
	case <-time.After(10 * time.Second):
		t.Fatal("the phone was not called")
	}
	ans := b.expect(TypeAnswer, 10*time.Second)
	b.acceptAnswer(ans)
	if n, _ := phone.heard(500*time.Millisecond, 1000); n < 1000 {
		t.Fatalf("phone heard %d samples", n)
	}
	b.send(Frame{Type: TypeHangup, Ref: "r2"})
	select {
	case <-phone.byes:
	case <-time.After(5 * time.Second):
		t.Fatal("no BYE at the phone")
	}
	waitFor(t, "ports released", func() bool { return e.ports.InUse() == 0 })
}

// Without an outgoing grant, invite is refused with an error frame.
func TestInviteNeedsOutgoingGrant(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	b := newBrowser(t, e, e.token("carol", true, "", time.Hour))
	b.invite("r3", "alice", nil)
	if f := b.expect(TypeError, 5*time.Second); f.Code != CodeForbidden || f.Ref != "r3" {
		t.Fatalf("error: %+v", f)
	}
}

// Browser to browser: bob's outgoing application dials client alice, a
// browser too; media flows both ways through two anchored legs, and bob's
// hangup reaches alice.
func TestBrowserCallsBrowser(t *testing.T) {
	e := newTestEnv(t, map[string]string{
		"/outgoing": `<Response><Dial timeout="10"><Client>alice</Client></Dial></Response>`,
	}, nil)
	alice := newBrowser(t, e, e.token("alice", true, "", time.Hour))
	bob := newBrowser(t, e, e.token("bob", false, "AP0123456789", time.Hour))
	bob.invite("r1", "client:alice", nil)
	in := alice.expect(TypeIncoming, 10*time.Second)
	if in.From != presence.ClientIdentity("bob") {
		t.Fatalf("incoming: %+v", in)
	}
	alice.answer(in)
	ans := bob.expect(TypeAnswer, 10*time.Second)
	bob.acceptAnswer(ans)
	waitFor(t, "RTP both ways", func() bool { return alice.received.Load() > 20 && bob.received.Load() > 20 })
	bob.send(Frame{Type: TypeHangup, CallSid: ans.CallSid})
	if f := alice.expect(TypeHangup, 5*time.Second); f.CallSid != in.CallSid {
		t.Fatalf("hangup: %+v", f)
	}
	waitFor(t, "ports released", func() bool { return e.ports.InUse() == 0 })
}

// A draining gateway refuses new browser calls.
func TestDrainRefusesInvites(t *testing.T) {
	e, b, _ := outgoingEnv(t)
	e.gw.Drain()
	b.invite("r9", "alice", nil)
	if f := b.expect(TypeError, 5*time.Second); f.Code != CodeUnavailable || f.Ref != "r9" {
		t.Fatalf("error: %+v", f)
	}
}

// A call over the account's limits (a denial: an error with RetryAfter())
// is refused as unavailable, not as a failed call.
func TestInviteOverLimitIsUnavailable(t *testing.T) {
	_, b, _ := outgoingEnv(t)
	b.invite("r8", "over-limit", nil)
	if f := b.expect(TypeError, 5*time.Second); f.Code != CodeUnavailable || f.Ref != "r8" || f.Message != "over the account's limits" {
		t.Fatalf("error: %+v", f)
	}
}
