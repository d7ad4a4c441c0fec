package webrtc

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/presence/accesstoken"
)

func TestRegisterMakesBindingsPerTabAndCloseRemovesThem(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	tok := e.token("alice", true, "", time.Hour)
	tab1, tab2 := dialSocket(t, e), dialSocket(t, e)
	r1 := tab1.register(tok)
	if r1.Identity != "alice" || r1.Incoming == nil || !*r1.Incoming || r1.Session == "" || len(r1.ICEServers) != 1 {
		t.Fatalf("registered: %+v", r1)
	}
	tab2.register(tok)
	p := e.presence(presence.ClientIdentity("alice"))
	if p.Status != presence.Available || len(p.Bindings) != 2 {
		t.Fatalf("presence after two tabs: %+v", p)
	}
	for _, b := range p.Bindings {
		if b.Transport != presence.TransportWebRTC || b.FlowID == "" {
			t.Fatalf("binding: %+v", b)
		}
	}
	tab1.c.Close()
	waitFor(t, "one binding left", func() bool { return len(e.presence(presence.ClientIdentity("alice")).Bindings) == 1 })
	tab2.c.Close()
	waitFor(t, "alice offline", func() bool { return e.presence(presence.ClientIdentity("alice")).Status == presence.Offline })
}

func TestRegisterRefusals(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	s := dialSocket(t, e)
	s.send(Frame{Type: TypeRegister, Token: "not-a-token"})
	if f := s.expect(TypeError, 5*time.Second); f.Code != CodeUnauthorized {
		t.Fatalf("bad token: %+v", f)
	}
	// Outgoing only: registered, but not a binding.
	r := s.register(e.token("bob", false, "AP123", time.Hour))
	if r.Incoming == nil || *r.Incoming {
		t.Fatalf("outgoing-only token registered as incoming: %+v", r)
	}
	if p := e.presence(presence.ClientIdentity("bob")); len(p.Bindings) != 0 {
		t.Fatalf("outgoing-only session is a binding: %+v", p)
	}
	// A refresh may not change the identity.
	s.send(Frame{Type: TypeRefresh, Token: e.token("mallory", true, "", time.Hour)})
	if f := s.expect(TypeError, 5*time.Second); f.Code != CodeForbidden {
		t.Fatalf("identity change: %+v", f)
	}
	// Before registering, calls are refused.
	s2 := dialSocket(t, e)
	s2.send(Frame{Type: TypeHangup, CallSid: "CA1"})
	if f := s2.expect(TypeError, 5*time.Second); f.Code != CodeNotRegistered {
		t.Fatalf("unregistered hangup: %+v", f)
	}
}

func TestMalformedAndOversizedFramesKeepSocketHealthy(t *testing.T) {
	e := newTestEnv(t, nil, func(c *Config) { c.MaxFrameBytes = 4096 })
	s := dialSocket(t, e)
	cases := []struct {
		name, frame, code string
	}{
		{"not json", `{"type":`, CodeBadFrame},
		{"no type", `{"token":"x"}`, CodeBadFrame},
		{"unknown type", `{"type":"launch"}`, CodeBadFrame},
		{"wrong version", `{"v":9,"type":"ping"}`, CodeBadFrame},
		{"missing field", `{"type":"answer","callSid":"CA1"}`, CodeBadFrame},
		{"bad digit", `{"type":"dtmf","callSid":"CA1","digits":"1x"}`, CodeBadFrame},
		{"trailing data", `{"type":"ping"} {}`, CodeBadFrame},
		{"oversized", `{"type":"message","to":"bob","body":"` + strings.Repeat("a", 5000) + `"}`, CodeTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.t = t
			s.raw([]byte(c.frame))
			if f := s.expect(TypeError, 5*time.Second); f.Code != c.code {
				t.Fatalf("error frame %+v, want code %s", f, c.code)
			}
			s.send(Frame{Type: TypePing})
			s.expect(TypePong, 5*time.Second)
		})
	}
	s.t = t
	if err := s.c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if f := s.expect(TypeError, 5*time.Second); f.Code != CodeBadFrame {
		t.Fatalf("binary frame: %+v", f)
	}
	s.register(e.token("alice", true, "", time.Hour)) // still healthy
}

func TestUnauthenticatedSocketClosedAfterDeadline(t *testing.T) {
	e := newTestEnv(t, nil, func(c *Config) { c.AuthTimeout = 300 * time.Millisecond })
	s := dialSocket(t, e)
	start := time.Now()
	if f := s.expect(TypeError, 5*time.Second); f.Code != CodeAuthTimeout {
		t.Fatalf("frame %+v", f)
	}
	select {
	case <-s.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("socket still open")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("closed after %v", d)
	}
	if s.closeCode() != closeAuthTimeout {
		t.Fatalf("close code %d", s.closeCode())
	}
	// A registered socket outlives the deadline.
	r := dialSocket(t, e)
	r.register(e.token("alice", true, "", time.Hour))
	time.Sleep(600 * time.Millisecond)
	r.send(Frame{Type: TypePing})
	r.expect(TypePong, 5*time.Second)
}

func TestTokenExpiryEndsBinding(t *testing.T) {
	e := newTestEnv(t, nil, func(c *Config) { c.ExpiryWarning = 1500 * time.Millisecond })
	s := dialSocket(t, e)
	s.register(e.token("alice", true, "", 2*time.Second))
	if p := e.presence(presence.ClientIdentity("alice")); p.Status != presence.Available {
		t.Fatalf("presence: %+v", p)
	}
	s.expect(TypeTokenWillExpire, 3*time.Second)
	if f := s.expect(TypeError, 5*time.Second); f.Code != CodeTokenExpired {
		t.Fatalf("frame %+v", f)
	}
	select {
	case <-s.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("socket still open after expiry")
	}
	waitFor(t, "alice offline", func() bool { return e.presence(presence.ClientIdentity("alice")).Status == presence.Offline })
}

func TestRefreshExtendsBinding(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	s := dialSocket(t, e)
	s.register(e.token("alice", true, "", 2*time.Second))
	time.Sleep(time.Second)
	s.send(Frame{Type: TypeRefresh, Token: e.token("alice", true, "", time.Hour)})
	r := s.expect(TypeRegistered, 5*time.Second)
	if time.Until(time.Unix(r.Expires, 0)) < 50*time.Minute {
		t.Fatalf("refresh did not extend: %+v", r)
	}
	time.Sleep(1500 * time.Millisecond) // past the first token's expiry
	bs, _ := e.reg.Bindings(context.Background(), e.acc.Sid, presence.ClientIdentity("alice"))
	if len(bs) != 1 {
		t.Fatalf("bindings after refresh: %+v", bs)
	}
	s.send(Frame{Type: TypePing})
	s.expect(TypePong, 5*time.Second)
}

func TestMessagesHookAndDelivery(t *testing.T) {
	var got []string
	e := newTestEnv(t, nil, nil)
	e.gw.deps.Messages = func(ctx context.Context, acct, from, to, body string) error {
		got = append(got, from+">"+to+":"+body)
		if body == "refuse" {
			return errors.New("no route for messages")
		}
		return nil
	}
	a := dialSocket(t, e)
	a.register(e.token("alice", true, "", time.Hour))
	a.send(Frame{Type: TypeMessage, To: "bob", Body: "hi"})
	a.send(Frame{Type: TypeMessage, To: "bob", Body: "refuse"})
	if f := a.expect(TypeError, 5*time.Second); f.Code != CodeMessageRefused {
		t.Fatalf("refused message: %+v", f)
	}
	if len(got) != 2 || got[0] != "client:alice>bob:hi" {
		t.Fatalf("hook got %v", got)
	}
	if n := e.gw.Deliver(e.acc.Sid, "alice", "client:bob", "hello"); n != 1 {
		t.Fatalf("delivered to %d sessions", n)
	}
	if f := a.expect(TypeMessage, 5*time.Second); f.From != "client:bob" || f.Body != "hello" {
		t.Fatalf("message: %+v", f)
	}
}

// slowAnnounce is a registry whose Apply lets a change's subscriber run
// before it returns, as a busy machine may: the session is then still
// registering when the subscriber delivers.
type slowAnnounce struct {
	presence.Registry
	onApply func(presence.Update)
}

func (r slowAnnounce) Apply(ctx context.Context, u presence.Update) ([]presence.Binding, error) {
	bs, err := r.Registry.Apply(ctx, u)
	if err == nil {
		r.onApply(u)
	}
	return bs, err
}

// TestMessageDeliveredAsBindingAppears: presence announces a browser's
// binding while the session is still registering; a message delivered then
// (as the messaging service does with stored messages) is accepted and
// arrives after the registered frame.
func TestMessageDeliveredAsBindingAppears(t *testing.T) {
	e := newTestEnv(t, nil, nil)
	delivered := make(chan error, 1)
	var gw *Gateway
	reg := slowAnnounce{Registry: e.reg, onApply: func(u presence.Update) {
		go func() { delivered <- gw.DeliverTo(u.Contacts[0].FlowID, "client:ops", u.Identity, "stored while away") }()
		time.Sleep(200 * time.Millisecond) // the delivery runs first
	}}
	var err error
	gw, err = New(Config{IncludeLoopback: true, AuthTimeout: 2 * time.Second}, Deps{Tokens: &accesstoken.Verifier{Keys: e.st},
		Registry: reg, Ports: e.ports, MediaAddr: lo, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() { srv.CloseClientConnections(); gw.Close(); srv.Close() })
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteJSON(Frame{V: ProtocolVersion, Type: TypeRegister, Token: e.token("web", true, "", time.Hour)}); err != nil {
		t.Fatal(err)
	}
	next := func() Frame {
		var f Frame
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := c.ReadJSON(&f); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if f := next(); f.Type != TypeRegistered {
		t.Fatalf("first frame %+v, want registered", f)
	}
	if err := <-delivered; err != nil {
		t.Fatalf("delivery as the binding appeared: %v", err)
	}
	if f := next(); f.Type != TypeMessage || f.Body != "stored while away" {
		t.Fatalf("second frame %+v, want the message", f)
	}
}
