package webrtc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/internal/webhook"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/presence/accesstoken"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/sip"
	"github.com/parleyhq/parley/store"
)

// loopbackEgress lets webhooks reach the tests' httptest applications on
// loopback (webhooks.allow_networks); the default egress policy refuses them.
var loopbackEgress = webhook.NewPolicy(webhook.PolicyOptions{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})

const (
	testDomain   = "pbx.test"
	testPassword = "correct-horse-battery"
)

var lo = netip.MustParseAddr("127.0.0.1")

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("PARLEY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// app is the customer's webhook application.
type app struct {
	srv   *httptest.Server
	mu    sync.Mutex
	docs  map[string]string
	forms map[string][]url.Values
}

func newApp(t *testing.T, docs map[string]string) *app {
	a := &app{docs: docs, forms: map[string][]url.Values{}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		a.mu.Lock()
		a.forms[r.URL.Path] = append(a.forms[r.URL.Path], r.PostForm)
		doc := a.docs[r.URL.Path]
		a.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, doc)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *app) got(path string) []url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]url.Values(nil), a.forms[path]...)
}

// env is a SIP server, the call engine and the gateway on loopback, with an
// account, a key, SIP domain pbx.test and users alice and bob.
type env struct {
	t     *testing.T
	st    *store.Store
	acc   store.Account
	key   store.APIKey
	reg   *presence.Memory
	sip   *sip.Server
	gw    *Gateway
	http  *httptest.Server
	app   *app
	ports *media.PortRange
}

// router sends SIP callers to /voice and browser (token) callers to /outgoing.
type router struct{ e *env }

func (r router) RouteInvite(ctx context.Context, in calls.Invite) (*calls.Call, error) {
	if in.AccountSid != r.e.acc.Sid {
		return nil, calls.ErrNoRoute
	}
	if in.User == "over-limit" {
		return nil, overLimit{}
	}
	c := &calls.Call{Sid: sid.New(sid.Call), AccountSid: in.AccountSid, From: in.From, To: in.To, Direction: "inbound",
		AuthToken: r.e.acc.AuthToken, VoiceURL: r.e.app.srv.URL + "/voice", VoiceMethod: "POST"}
	if in.ApplicationSid != "" {
		c.ApplicationSid, c.VoiceURL = in.ApplicationSid, r.e.app.srv.URL+"/outgoing"
	}
	return c, nil
}

// overLimit is an admission denial as routing reports one: an error with
// RetryAfter().
type overLimit struct{}

func (overLimit) Error() string             { return "calls concurrency reached its limit" }
func (overLimit) RetryAfter() time.Duration { return time.Second }

type noTargets struct{}

func (noTargets) ClientIdentities(ctx context.Context, acct, name string) ([]string, error) {
	return []string{presence.SIPIdentity(name, testDomain)}, nil
}

func newTestEnv(t *testing.T, docs map[string]string, mutate func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, app: newApp(t, docs)}
	if e.acc, err = st.CreateAccount(ctx, store.NewAccount{FriendlyName: "test"}); err != nil {
		t.Fatal(err)
	}
	if e.key, err = st.CreateKey(ctx, e.acc.Sid, "k"); err != nil {
		t.Fatal(err)
	}
	dom, err := st.CreateSIPDomain(ctx, e.acc.Sid, store.NewSIPDomain{DomainName: testDomain, RegistrationEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	list, err := st.CreateSIPCredentialList(ctx, e.acc.Sid, "users")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if _, err := st.CreateSIPCredential(ctx, e.acc.Sid, list.Sid, u, testPassword, "parley"); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.MapSIPCredentialList(ctx, e.acc.Sid, dom.Sid, list.Sid); err != nil {
		t.Fatal(err)
	}
	e.reg, err = presence.NewMemory(ctx, presence.MemoryConfig{Persister: st, FlushInterval: 20 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := sip.DefaultConfig()
	cfg.UDP, cfg.WS, cfg.TCP, cfg.TLS, cfg.WSS = "127.0.0.1:0", "127.0.0.1:0", "", "", ""
	cfg.Hostname = "127.0.0.1"
	tokens := &accesstoken.Verifier{Keys: st}
	if e.ports, err = media.NewPortRange(43000, 43999); err != nil {
		t.Fatal(err)
	}
	forker, err := calls.NewForker(calls.ForkerDeps{Bindings: e.reg, Targets: noTargets{}, SIPIdentity: sip.URIIdentity, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	engine := calls.New(calls.Config{Dialer: forker, Webhooks: &webhook.Client{Timeout: 2 * time.Second, Policy: loopbackEgress}, Log: testLogger(t)})
	gcfg := Config{IncludeLoopback: true, AuthTimeout: 2 * time.Second, ConnectTimeout: 5 * time.Second,
		ICEServers: []ICEServer{{URLs: []string{"stun:stun.invalid:3478"}}}}
	if mutate != nil {
		mutate(&gcfg)
	}
	e.gw, err = New(gcfg, Deps{Tokens: tokens, Registry: e.reg, Ports: e.ports, MediaAddr: lo,
		Router: router{e}, Runner: engine, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	e.sip, err = sip.New(cfg, sip.Deps{Credentials: st, Tokens: tokens, Registry: e.reg, Logger: testLogger(t),
		Calls: &sip.CallConfig{Router: router{e}, Runner: engine, Ports: e.ports, MediaAddr: lo, WebRTC: e.gw}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []string{presence.TransportUDP, presence.TransportTCP, presence.TransportTLS, presence.TransportWS, presence.TransportWSS} {
		forker.SetRinger(tr, e.sip.Ringer())
	}
	forker.SetRinger(presence.TransportWebRTC, e.gw)
	if err := e.sip.Listen(); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		regDone := make(chan struct{})
		go func() { e.reg.Run(rctx); close(regDone) }()
		if err := e.sip.Run(rctx); err != nil {
			t.Errorf("sip run: %v", err)
		}
		<-regDone
	}()
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, e.gw)
	e.http = httptest.NewServer(mux)
	t.Cleanup(func() {
		e.http.CloseClientConnections()
		e.gw.Close()
		e.http.Close()
		cancel()
		<-stopped
		st.Close()
	})
	return e
}

func (e *env) token(identity string, incoming bool, outgoingApp string, ttl time.Duration) string {
	tok, err := accesstoken.Mint(accesstoken.MintParams{AccountSid: e.acc.Sid, KeySid: e.key.Sid, Secret: e.key.Secret,
		Identity: identity, Incoming: incoming, OutgoingApp: outgoingApp, TTL: ttl})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) wsURL() string { return "ws" + strings.TrimPrefix(e.http.URL, "http") + Path }

func (e *env) presence(identity string) presence.Presence {
	p, err := e.reg.Get(context.Background(), e.acc.Sid, identity)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// socket is a raw protocol client.
type socket struct {
	t      *testing.T
	c      *websocket.Conn
	frames chan Frame
	closed chan struct{}
	mu     sync.Mutex
	code   int // close code received
}

func dialSocket(t *testing.T, e *env) *socket {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(e.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &socket{t: t, c: c, frames: make(chan Frame, 256), closed: make(chan struct{})}
	go func() {
		defer close(s.closed)
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					s.mu.Lock()
					s.code = ce.Code
					s.mu.Unlock()
				}
				return
			}
			var f Frame
			if err := json.Unmarshal(data, &f); err != nil {
				t.Errorf("server sent bad JSON %q: %v", data, err)
				continue
			}
			s.frames <- f
		}
	}()
	t.Cleanup(func() { c.Close() })
	return s
}

func (s *socket) send(f Frame) {
	s.t.Helper()
	b, _ := json.Marshal(f)
	s.raw(b)
}

func (s *socket) raw(b []byte) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.c.WriteMessage(websocket.TextMessage, b); err != nil {
		s.t.Fatalf("write: %v", err)
	}
}

// expect returns the next frame of type typ, failing on any error frame
// unless typ is error.
func (s *socket) expect(typ string, d time.Duration) Frame {
	s.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case f := <-s.frames:
			if f.Type == typ {
				return f
			}
			if f.Type == TypeError {
				s.t.Fatalf("waiting for %s: error frame %s: %s", typ, f.Code, f.Message)
			}
		case <-s.closed:
			s.t.Fatalf("waiting for %s: socket closed (code %d)", typ, s.closeCode())
		case <-timeout:
			s.t.Fatalf("no %s frame within %v", typ, d)
		}
	}
}

func (s *socket) closeCode() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.code
}

func (s *socket) register(token string) Frame {
	s.t.Helper()
	s.send(Frame{V: ProtocolVersion, Type: TypeRegister, Token: token})
	return s.expect(TypeRegistered, 5*time.Second)
}
