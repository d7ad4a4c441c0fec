package webrtc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	pion "github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/presence/accesstoken"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/media"
)

// Path is where the gateway is mounted on the HTTP server.
const Path = "/v1/signal"

// Config tunes the gateway. The zero value works on one host.
type Config struct {
	// NAT1To1IPs are public addresses put in host candidates instead of the
	// local ones (a server behind 1:1 NAT).
	NAT1To1IPs []string
	// ICEServers (STUN/TURN) are handed to clients in registered.
	ICEServers []ICEServer
	// UDPPortMin/Max bound the ports ICE binds (0: any ephemeral port).
	UDPPortMin, UDPPortMax uint16
	// AuthTimeout closes a socket that has not registered (default 10s).
	AuthTimeout time.Duration
	// MaxFrameBytes: larger frames get an error frame (default 64 KiB).
	MaxFrameBytes int64
	// ConnectTimeout bounds ICE+DTLS after an answer (default 15s).
	ConnectTimeout time.Duration
	// ExpiryWarning is how long before a token's expiry tokenWillExpire is sent (default 60s).
	ExpiryWarning time.Duration
	// CheckOrigin, when set, vets the Origin of WebSocket upgrades (default: any origin,
	// since the token is the credential).
	CheckOrigin func(r *http.Request) bool
	// IncludeLoopback adds 127.0.0.1 host candidates (tests, one-host setups).
	IncludeLoopback bool
}

// TokenVerifier checks access tokens (*accesstoken.Verifier implements it).
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (accesstoken.Claims, error)
}

// MessageHook receives message frames from registered sessions (the
// messaging service plugs in here). It returns an error to refuse one.
type MessageHook func(ctx context.Context, accountSid, fromIdentity, to, body string) error

// Deps are the gateway's collaborators.
type Deps struct {
	Tokens   TokenVerifier
	Registry presence.Registry
	// Ports and MediaAddr allocate the anchored RTP endpoint of each browser leg.
	Ports     *media.PortRange
	MediaAddr netip.Addr
	// Router and Runner place browser-originated calls (routing.Calls,
	// which runs them on the call engine), as for a SIP caller with a token.
	Router calls.Router
	Runner calls.Runner
	// Messages, when set, takes message frames.
	Messages MessageHook
	Logger   *slog.Logger
	Now      func() time.Time
}

// Gateway is the browser endpoint. Create it with New and mount it at Path.
type Gateway struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	upgrader websocket.Upgrader
	api      func(codecs []media.RTPCodec) (*pion.API, error)

	draining atomic.Bool // refuse new calls (see Drain)

	mu       sync.Mutex
	sessions map[string]*session // by flow id
	closed   bool
	wg       sync.WaitGroup
}

// New creates a gateway.
func New(cfg Config, deps Deps) (*Gateway, error) {
	if deps.Tokens == nil || deps.Registry == nil || deps.Ports == nil || !deps.MediaAddr.IsValid() {
		return nil, errors.New("webrtc: Tokens, Registry, Ports and MediaAddr are required")
	}
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = 10 * time.Second
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = 64 << 10
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	if cfg.ExpiryWarning <= 0 {
		cfg.ExpiryWarning = time.Minute
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	g := &Gateway{cfg: cfg, deps: deps, log: deps.Logger.With("component", "webrtc"), sessions: map[string]*session{}}
	g.upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096, CheckOrigin: cfg.CheckOrigin,
		HandshakeTimeout: 10 * time.Second, Subprotocols: []string{"parley.v1"}}
	if g.upgrader.CheckOrigin == nil {
		g.upgrader.CheckOrigin = func(*http.Request) bool { return true }
	}
	se := pion.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4, pion.NetworkTypeUDP6})
	if len(cfg.NAT1To1IPs) > 0 {
		if err := se.SetICEAddressRewriteRules(pion.ICEAddressRewriteRule{External: cfg.NAT1To1IPs,
			AsCandidateType: pion.ICECandidateTypeHost, Mode: pion.ICEAddressRewriteReplace}); err != nil {
			return nil, fmt.Errorf("webrtc: nat 1:1 addresses: %w", err)
		}
	}
	if cfg.UDPPortMin > 0 && cfg.UDPPortMax > 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.UDPPortMin, cfg.UDPPortMax); err != nil {
			return nil, fmt.Errorf("webrtc: udp port range: %w", err)
		}
	}
	g.api = func(codecs []media.RTPCodec) (*pion.API, error) {
		me := &pion.MediaEngine{}
		for _, c := range codecs {
			if err := me.RegisterCodec(codecParams(c), pion.RTPCodecTypeAudio); err != nil {
				return nil, fmt.Errorf("webrtc: codec %s: %w", c.Name, err)
			}
		}
		return pion.NewAPI(pion.WithMediaEngine(me), pion.WithSettingEngine(se)), nil
	}
	return g, nil
}

// Drain makes the gateway refuse new calls, placed or received, while the
// calls in progress finish: the start of a graceful shutdown.
func (g *Gateway) Drain() { g.draining.Store(true) }

// Sessions reports how many sockets are open.
func (g *Gateway) Sessions() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sessions)
}

// Close ends every session (hanging up their calls) and refuses new ones.
func (g *Gateway) Close() error {
	g.mu.Lock()
	g.closed = true
	ss := make([]*session, 0, len(g.sessions))
	for _, s := range g.sessions {
		ss = append(ss, s)
	}
	g.mu.Unlock()
	for _, s := range ss {
		s.close(websocket.CloseGoingAway, "server shutting down")
	}
	g.wg.Wait()
	return nil
}

// ServeHTTP upgrades the request to a WebSocket and runs its session.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered with an HTTP error
	}
	s := newSession(g, conn, r)
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting down"), time.Now().Add(time.Second))
		conn.Close()
		return
	}
	g.sessions[s.flow] = s
	g.wg.Add(1)
	g.mu.Unlock()
	defer g.wg.Done()
	s.run()
	g.mu.Lock()
	delete(g.sessions, s.flow)
	g.mu.Unlock()
}

func (g *Gateway) session(flow string) *session {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sessions[flow]
}

// newFlowID names a session; it is the binding's FlowID.
func newFlowID() string { return "webrtc-" + sid.New("WS") }

// remoteIP is the socket peer's address for logs and the binding's Source.
func remoteIP(r *http.Request) string {
	if h, p, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return net.JoinHostPort(h, p)
	}
	return r.RemoteAddr
}

// Ring implements calls.Ringer: it offers the call to the session that
// is binding b and waits for it to answer, refuse, or the context to end.
func (g *Gateway) Ring(ctx context.Context, req calls.RingRequest) (calls.Leg, calls.LegMedia, error) {
	if g.draining.Load() {
		return nil, calls.LegMedia{}, &calls.RingRefused{Status: 503, Reason: "shutting down"}
	}
	s := g.session(req.Binding.FlowID)
	if s == nil || !s.registered() {
		return nil, calls.LegMedia{}, &calls.RingRefused{Status: 480, Reason: "browser session gone"}
	}
	return s.ring(ctx, req)
}

// DeliverTo sends a message frame to the one session whose binding has
// flowID (a messaging.Sink delivers per binding, so that each tab gets the
// message once). It fails when that session is gone or not registered.
func (g *Gateway) DeliverTo(flowID, from, to, body string) error {
	s := g.session(flowID)
	if s != nil {
		// The binding is announced while the session registers: deliver
		// after its registered frame.
		s.registerAnswered()
	}
	if s == nil || !s.registered() {
		return errors.New("webrtc: browser session gone")
	}
	s.send(Frame{Type: TypeMessage, From: from, To: to, Body: body})
	return nil
}

// Deliver sends a message frame to every registered session of identity
// (the bare client name) in the account, for the messaging service. It
// returns how many sessions it reached.
func (g *Gateway) Deliver(accountSid, identity, from, body string) int {
	g.mu.Lock()
	var targets []*session
	for _, s := range g.sessions {
		s.mu.Lock()
		if s.claims != nil && s.claims.AccountSid == accountSid && s.claims.Grants.Identity == identity {
			targets = append(targets, s)
		}
		s.mu.Unlock()
	}
	g.mu.Unlock()
	for _, s := range targets {
		s.send(Frame{Type: TypeMessage, From: from, To: presence.ClientIdentity(identity), Body: body})
	}
	return len(targets)
}
