package sip

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/signaling/sip/internal/sipmsg"
	"github.com/parleyhq/parley/signaling/sip/registrar"
	"github.com/parleyhq/parley/signaling/sip/sipauth"
	"github.com/parleyhq/parley/signaling/sip/udpreg"
)

// Credentials finds the Digest credential of a user of a SIP domain
// (server/store implements it; see sipauth.Credentials). When it is a
// sipauth.DomainCredentialSource too, whole domains are held in memory.
type Credentials = sipauth.Credentials

// TokenVerifier checks access tokens (*accesstoken.Verifier implements it).
type TokenVerifier = sipauth.TokenVerifier

// Deps are the server's collaborators.
type Deps struct {
	Credentials Credentials
	Tokens      TokenVerifier
	Registry    presence.Registry
	Logger      *slog.Logger // default slog.Default()
	// Registered, when set, is told of each REGISTER that added or
	// refreshed bindings (usage events); it must not block.
	Registered func(accountSid, key string)
	Now        func() time.Time // default time.Now

	// Calls, when set, makes the server take INVITEs and ring bindings for
	// the call engine (Ringer, Carrier); nil: INVITE is not served.
	Calls *CallConfig
	// Messages, when set, takes the MESSAGE requests clients send (RFC
	// 3428); nil: MESSAGE is not served. Bodies over MaxMessageBytes (when
	// positive) get 413.
	Messages        MessageSubmitter
	MaxMessageBytes int
}

// ErrFlowClosed is returned when a binding's connection is gone and its
// contact cannot be reached another way (WebSocket, .invalid hosts).
var ErrFlowClosed = errors.New("sip: the binding's connection is closed")

// Server is Parley's SIP front: listeners on every configured transport, the
// registrar, and presence subscriptions.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	now     func() time.Time
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	client  *sipgo.Client
	auth    *sipauth.Authenticator
	reg     *registrar.Registrar
	tlsConf *tls.Config
	subs    *subscriptions
	trunk   *trunk            // the carrier for numbers; never nil after New
	udpReg  *udpreg.Stateless // nil with Config.UDPRegisterTransactions

	mu       sync.Mutex
	listened bool
	serve    []func() error
	closers  []func() error
	addrs    map[string]net.Addr
	// listenAddrs are addrs parsed once (isOurAddress runs per REGISTER).
	listenAddrs []netip.AddrPort
	udpLaddr    sip.Addr
	closeOnce   sync.Once
	closed      chan struct{}
	closing     atomic.Bool

	flowsMu sync.Mutex
	flows   map[string]struct{}

	calls    *CallConfig // nil: INVITE is not served (Deps.Calls)
	legs     *callLegs
	draining atomic.Bool // refuse new calls (see Drain)

	messages   MessageSubmitter // nil: MESSAGE is not served (Deps.Messages)
	maxMessage int
}

// New creates a server. It binds nothing until Listen or Run.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if deps.Credentials == nil || deps.Tokens == nil || deps.Registry == nil {
		return nil, errors.New("sip: Credentials, Tokens and Registry are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Server{
		cfg: cfg, deps: deps, now: deps.Now,
		log:    deps.Logger.With("component", "sip"),
		addrs:  map[string]net.Addr{},
		closed: make(chan struct{}),
		flows:  map[string]struct{}{},

		legs:       &callLegs{legs: map[string]dialogLeg{}},
		messages:   deps.Messages,
		maxMessage: deps.MaxMessageBytes,
	}
	if deps.Calls != nil {
		cc := *deps.Calls
		if cc.Router == nil || cc.Runner == nil || cc.Ports == nil || !cc.MediaAddr.IsValid() {
			return nil, errors.New("sip: Calls needs a Router, a Runner, Ports and a MediaAddr")
		}
		if len(cc.Codecs) == 0 {
			cc.Codecs = []string{"PCMU", "PCMA", "opus", "telephone-event"}
		}
		s.calls = &cc
	}
	if s.auth, err = sipauth.New(cfg.auth(), sipauth.Deps{Credentials: deps.Credentials, Tokens: deps.Tokens,
		Logger: s.log, Now: s.now, OurAddress: s.isOurAddress}); err != nil {
		return nil, err
	}
	if s.reg, err = registrar.New(cfg.registrar(), registrar.Deps{Auth: s.auth, Registry: deps.Registry,
		Logger: s.log, Now: s.now, Registered: deps.Registered, Local: s.localAddr, FlowAlive: s.flowAlive}); err != nil {
		return nil, err
	}
	if s.trunk, err = parseTrunk(cfg.Trunk); err != nil {
		return nil, err
	}
	s.subs = newSubscriptions(s)
	return s, nil
}

// Addr returns the bound address of a transport ("udp", "tcp", "tls", "ws",
// "wss") after Listen, or nil.
func (s *Server) Addr(transport string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[transport]
}

// localAddr is the bound address of a transport's listener, or "".
func (s *Server) localAddr(transport string) string {
	if a := s.Addr(transport); a != nil {
		return a.String()
	}
	return ""
}

// Listen binds every configured listener. Run calls it when needed; calling
// it first surfaces port conflicts before anything else starts.
func (s *Server) Listen() (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listened {
		return nil
	}
	defer func() {
		if err != nil {
			for _, c := range s.closers {
				c()
			}
			s.closers, s.serve = nil, nil
		}
	}()
	sipLog := s.log.With("component", "sipgo")
	s.ua, err = sipgo.NewUA(
		sipgo.WithUserAgent(s.cfg.UserAgent),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sipLog)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipLog), sip.WithTransactionLayerTerminateOnConnClose()),
	)
	if err != nil {
		return fmt.Errorf("sip: user agent: %w", err)
	}
	s.closers = append(s.closers, s.ua.Close)
	s.srv, err = sipgo.NewServer(s.ua, sipgo.WithServerLogger(sipLog))
	if err != nil {
		return fmt.Errorf("sip: server: %w", err)
	}
	s.srv.OnRegister(s.guard(s.handleRegister))
	s.srv.OnSubscribe(s.guard(s.subs.handleSubscribe))
	s.srv.OnOptions(s.guard(s.handleOptions))
	s.srv.OnNoRoute(s.guard(s.handleUnsupported))
	s.registerCallHandlers()
	s.registerMessageHandlers()

	if s.cfg.TLS != "" || s.cfg.WSS != "" {
		if s.tlsConf, err = s.loadTLS(); err != nil {
			return err
		}
	}
	if s.cfg.UDP != "" {
		pc, err := net.ListenPacket("udp", s.cfg.UDP)
		if err != nil {
			return fmt.Errorf("sip: listen udp %s: %w", s.cfg.UDP, err)
		}
		s.closers = append(s.closers, pc.Close)
		if uc, ok := pc.(*net.UDPConn); ok && s.cfg.UDPReadBuffer > 0 {
			if err := uc.SetReadBuffer(s.cfg.UDPReadBuffer); err != nil {
				s.log.Warn("sip: cannot set the UDP receive buffer", "bytes", s.cfg.UDPReadBuffer, "error", err)
			}
		}
		ua := pc.LocalAddr().(*net.UDPAddr)
		s.addrs["udp"] = ua
		s.udpLaddr = sip.Addr{IP: ua.IP, Port: ua.Port}
		wrapped, err := s.udpConn(pc)
		if err != nil {
			return err
		}
		s.serve = append(s.serve, func() error { return s.srv.ServeUDP(wrapped) })
	}
	for _, l := range []struct {
		transport, addr string
		tls             bool
		serve           func(net.Listener) error
	}{
		{"tcp", s.cfg.TCP, false, s.srv.ServeTCP},
		{"tls", s.cfg.TLS, true, s.srv.ServeTLS},
		{"ws", s.cfg.WS, false, s.srv.ServeWS},
		{"wss", s.cfg.WSS, true, s.srv.ServeWSS},
	} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("sip: listen %s %s: %w", l.transport, l.addr, err)
		}
		var tc *tls.Config
		if l.tls {
			tc = s.tlsConf
		}
		fl := newFlowListener(ln, l.transport, tc, s.cfg.HandshakeTimeout, s.flowOpened, s.flowClosed)
		s.closers = append(s.closers, fl.Close)
		s.addrs[l.transport] = ln.Addr()
		serve := l.serve
		s.serve = append(s.serve, func() error { return serve(fl) })
	}
	host := s.cfg.Hostname
	if host == "" {
		host = s.advertisedHost()
	}
	s.client, err = sipgo.NewClient(s.ua, sipgo.WithClientHostname(host), sipgo.WithClientLogger(sipLog))
	if err != nil {
		return fmt.Errorf("sip: client: %w", err)
	}
	for _, a := range s.addrs {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			s.listenAddrs = append(s.listenAddrs, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	}
	s.listened = true
	return nil
}

// advertisedHost picks an address for our Via/Contact when Config.Hostname
// is empty: a specific listener address, else the first global IPv4 address.
func (s *Server) advertisedHost() string {
	for _, t := range []string{"udp", "tcp", "tls", "ws", "wss"} {
		if a := s.addrs[t]; a != nil {
			h, _, _ := net.SplitHostPort(a.String())
			if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
				return h
			}
		}
	}
	// Listening on every interface: use the first global unicast address.
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.IsGlobalUnicast() && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// contactFor returns a Contact URI for requests we send on transport.
func (s *Server) contactFor(transport string) sip.Uri {
	host := s.cfg.Hostname
	if host == "" {
		host = s.advertisedHost()
	}
	u := sip.Uri{Scheme: "sip", Host: host}
	if a := s.Addr(transport); a != nil {
		_, p, _ := net.SplitHostPort(a.String())
		u.Port, _ = strconv.Atoi(p)
	}
	if transport != "udp" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", transport)
	}
	return u
}

// Run serves until ctx ends or a listener fails, then closes the server.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	serves := s.serve
	s.mu.Unlock()
	errc := make(chan error, len(serves))
	for _, f := range serves {
		go func() { errc <- f() }()
	}
	stopEvents := s.subs.watch()
	defer stopEvents()
	go s.sweepLoop(ctx)
	go s.auth.Preload(ctx)
	s.log.Info("sip listening", "addrs", s.describeAddrs())
	var err error
	select {
	case <-ctx.Done():
	case <-s.closed:
	case err = <-errc:
		if s.closing.Load() || errors.Is(err, net.ErrClosed) {
			err = nil
		} else {
			err = fmt.Errorf("sip: listener stopped: %w", err)
		}
	}
	return errors.Join(err, s.Close())
}

func (s *Server) describeAddrs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for _, t := range []string{"udp", "tcp", "tls", "ws", "wss"} {
		if a := s.addrs[t]; a != nil {
			parts = append(parts, t+"="+a.String())
		}
	}
	return strings.Join(parts, " ")
}

func (s *Server) sweepLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.closed:
			return
		case <-t.C:
			now := s.now()
			s.auth.Sweep(now)
			s.subs.expire(ctx, now)
			if s.udpReg != nil {
				s.udpReg.Sweep(now)
			}
		}
	}
}

// ForgetCredentials drops cached and indexed Digest credentials; call it
// after SIP credentials, credential lists or domains change so the change
// applies at once instead of after Config.CredentialCacheTTL. Domains in the
// credential index are reloaded in the background; until then their
// lookups go to the database.
func (s *Server) ForgetCredentials() { s.auth.ForgetCredentials() }

// Close stops the listeners and closes every connection. Bindings are kept:
// connections closed by shutdown do not mark anyone offline.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		close(s.closed)
		s.mu.Lock()
		closers := s.closers
		s.mu.Unlock()
		for i := len(closers) - 1; i >= 0; i-- {
			if e := closers[i](); e != nil && !errors.Is(e, net.ErrClosed) {
				err = errors.Join(err, e)
			}
		}
	})
	return err
}

func (s *Server) flowOpened(id string) {
	s.flowsMu.Lock()
	s.flows[id] = struct{}{}
	s.flowsMu.Unlock()
}

func (s *Server) flowClosed(id string) {
	s.flowsMu.Lock()
	delete(s.flows, id)
	s.flowsMu.Unlock()
	if s.closing.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.deps.Registry.DropFlow(ctx, id); err != nil {
		s.log.Error("dropping bindings of closed connection", "flow", id, "error", err)
	}
	s.subs.dropFlow(id)
}

func (s *Server) flowAlive(id string) bool {
	s.flowsMu.Lock()
	defer s.flowsMu.Unlock()
	_, ok := s.flows[id]
	return ok
}

// requestFlow returns the transport (lowercase) and flow id a request came on.
func requestFlow(req *sip.Request) (transport, flow string) {
	transport = strings.ToLower(req.Transport())
	if presence.Reliable(transport) {
		flow = flowID(transport, req.Source())
	}
	return transport, flow
}

func sourceIP(req *sip.Request) string {
	h, _, err := net.SplitHostPort(req.Source())
	if err != nil {
		return req.Source()
	}
	return h
}

// route points req at binding b: over the connection b registered on when
// it is still open, else (TCP/TLS) at its contact address; UDP goes to the
// address the REGISTER came from (rport/received).
func (s *Server) route(b presence.Binding, req *sip.Request) error {
	req.SetTransport(strings.ToUpper(b.Transport))
	switch {
	case b.Transport == presence.TransportUDP:
		req.SetDestination(b.Source)
		req.Laddr = s.udpLaddr
	case s.flowAlive(b.FlowID):
		req.SetDestination(b.Source)
	case b.Transport == presence.TransportTCP || b.Transport == presence.TransportTLS:
		var u sip.Uri
		if err := sip.ParseUri(b.Contact, &u); err != nil {
			return fmt.Errorf("sip: binding contact %q: %w", b.Contact, err)
		}
		if strings.HasSuffix(strings.ToLower(u.Host), ".invalid") {
			return ErrFlowClosed
		}
		port := u.Port
		if port == 0 {
			port = sip.DefaultPort(b.Transport)
		}
		req.SetDestination(net.JoinHostPort(u.Host, strconv.Itoa(port)))
	default:
		return ErrFlowClosed
	}
	return nil
}

// TransactionRequest sends req to binding b over its flow (see route) and
// returns the client transaction. This is how the call engine reaches a
// registered client, including browsers behind WebSocket with .invalid
// contacts. Missing mandatory headers are filled by sipgo.
func (s *Server) TransactionRequest(ctx context.Context, b presence.Binding, req *sip.Request) (sip.ClientTransaction, error) {
	if s.client == nil {
		return nil, errors.New("sip: server not listening")
	}
	if err := s.route(b, req); err != nil {
		return nil, err
	}
	if req.Contact() == nil {
		req.AppendHeader(&sip.ContactHeader{Address: s.contactFor(b.Transport)})
	}
	return s.client.TransactionRequest(ctx, req)
}

// Do sends req to b and waits for the final response.
func (s *Server) Do(ctx context.Context, b presence.Binding, req *sip.Request) (*sip.Response, error) {
	tx, err := s.TransactionRequest(ctx, b, req)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, err
			}
			return nil, errors.New("sip: transaction ended without a response")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// responder answers a request: a sipgo server transaction, or the
// stateless UDP REGISTER path's (udpreg).
type responder interface {
	Respond(res *sip.Response) error
}

// handler is a request handler of this package.
type handler func(req *sip.Request, tx responder)

// guard validates every request before its handler runs and recovers from
// handler panics with a 500, so one bad message never takes the server down.
func (s *Server) guard(h handler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) { s.dispatch(h, req, tx) }
}

func (s *Server) dispatch(h handler, req *sip.Request, tx responder) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("sip handler panic", "method", req.Method, "panic", r)
			s.respond(tx, req, 500, "Server Internal Error")
		}
	}()
	if req.IsAck() {
		return
	}
	if p := sipmsg.Validate(req); p != nil {
		s.log.Debug("sip request rejected", "reason", p.Reason, "source", req.Source())
		s.respond(tx, req, p.Code, p.Reason)
		return
	}
	h(req, tx)
}

// response builds a response with our Server header, received on Via, and a
// To tag, then extra.
func (s *Server) response(req *sip.Request, code int, reason string, extra ...sip.Header) *sip.Response {
	return sipmsg.Response(req, code, reason, s.cfg.UserAgent, extra...)
}

func (s *Server) send(tx responder, res *sip.Response) {
	if err := tx.Respond(res); err != nil {
		s.log.Debug("sip respond failed", "status", res.StatusCode, "error", err)
	}
}

// replier is a responder that renders a response from the request itself,
// without a sip.Response being built (the stateless UDP REGISTER path).
type replier interface {
	Reply(req *sip.Request, code int, reason string, extra []sip.Header) error
}

func (s *Server) respond(tx responder, req *sip.Request, code int, reason string, extra ...sip.Header) {
	if r, ok := tx.(replier); ok {
		if err := r.Reply(req, code, reason, extra); err != nil {
			s.log.Debug("sip respond failed", "status", code, "error", err)
		}
		return
	}
	s.send(tx, s.response(req, code, reason, extra...))
}

// allow lists the methods served.
func (s *Server) allow() string {
	methods := "REGISTER, SUBSCRIBE, OPTIONS"
	if s.calls != nil {
		methods += ", INVITE, ACK, BYE, CANCEL, INFO"
	}
	if s.messages != nil {
		methods += ", MESSAGE"
	}
	return methods
}

func (s *Server) handleOptions(req *sip.Request, tx responder) {
	res := s.response(req, 200, "OK")
	res.AppendHeader(sip.NewHeader("Allow", s.allow()))
	res.AppendHeader(sip.NewHeader("Accept", "application/pidf+xml"))
	s.send(tx, res)
}

func (s *Server) handleUnsupported(req *sip.Request, tx responder) {
	res := s.response(req, 405, "Method Not Allowed")
	res.AppendHeader(sip.NewHeader("Allow", s.allow()))
	s.send(tx, res)
}

// loadTLS loads the configured certificate or generates a self-signed one.
func (s *Server) loadTLS() (*tls.Config, error) {
	if s.cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("sip: load TLS certificate: %w", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
	}
	s.log.Warn("sip: no cert_file/key_file configured; using a generated self-signed certificate for TLS and WSS (clients that verify certificates will refuse it)")
	cert, err := selfSigned(s.cfg.Hostname)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func selfSigned(host string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("sip: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("sip: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "parley self-signed"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if host != "" {
		if ip := net.ParseIP(host); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, host)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("sip: self-signed certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
