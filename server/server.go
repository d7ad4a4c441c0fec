package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/internal/webhook"
	"github.com/parleyhq/parley/partners"
	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/plugins/builtin"
	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/presence/accesstoken"
	"github.com/parleyhq/parley/routing"
	"github.com/parleyhq/parley/server/api"
	"github.com/parleyhq/parley/server/config"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/messaging"
	"github.com/parleyhq/parley/signaling/sip"
	"github.com/parleyhq/parley/signaling/webrtc"
	"github.com/parleyhq/parley/store"
	"github.com/parleyhq/parley/usage"
	"github.com/parleyhq/parley/web"
)

// Server is one running Parley node.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	version string
	lock    *dirLock
	store   *store.Store
	reg     *prometheus.Registry
	metrics *httpMetrics
	ready   atomic.Bool
	egress  *webhook.Policy // every fetch of a tenant URL goes through it

	plugins   *plugins.Supervisor
	admission *admission.Client
	usage     *usage.Publisher
	triggers  *usage.Deliverer
	usageAPI  *usage.Client
	partners  *partners.Client // nil when partner delegation is disabled

	registry   *presence.Memory
	creds      *store.SIPCredentials
	sip        *sip.Server
	engine     *calls.Engine
	callbacks  *calls.StatusCallbacks
	messages   *messaging.Service
	gateway    *webrtc.Gateway // browsers
	originator *routing.Originator
	voiceCtx   context.Context // lives until the voice stack stops; outbound calls run in it
	stopVoice  context.CancelFunc
	voice      sync.WaitGroup // the voice stack's loops (see startVoice)

	// publicURL is known once the HTTP listener is bound (public_url, else
	// its address): Run sets it before anything that reads it starts.
	publicURL atomic.Pointer[string]
}

// DBFile is the core database's file name inside the data directory.
const DBFile = "parley.db"

// PartnersDBFile is the built-in partners plugin's database in the data directory.
const PartnersDBFile = "partners.db"

// PrepareDataDir creates the data directory (0700) if it does not exist.
func PrepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	return nil
}

// OpenStore opens (and migrates) the core database of a data directory,
// creating the directory if needed. The CLI uses it directly; a server uses New.
func OpenStore(ctx context.Context, dataDir string) (*store.Store, error) {
	if err := PrepareDataDir(dataDir); err != nil {
		return nil, err
	}
	return store.Open(ctx, filepath.Join(dataDir, DBFile))
}

// New prepares a server: it locks the data directory and opens the store.
// Run starts serving; Run's return releases everything New took.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, version string) (*Server, error) {
	if err := PrepareDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, filepath.Join(cfg.DataDir, DBFile))
	if err != nil {
		lock.release()
		return nil, err
	}
	reg, m := newRegistry()
	egress, err := cfg.Webhooks.Policy()
	if err != nil {
		st.Close()
		lock.release()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, version: version, lock: lock, store: st, reg: reg, metrics: m, egress: egress}
	if err := s.newPlugins(); err != nil {
		st.Close()
		lock.release()
		return nil, err
	}
	if err := s.newVoice(ctx); err != nil {
		st.Close()
		lock.release()
		return nil, err
	}
	return s, nil
}

// newVoice builds the voice and messaging stack, each part given its
// collaborators as it is created, in dependency order: presence, messaging,
// the call engine and its forking, routing, the WebRTC gateway, the SIP
// server. The call engine dials out through the transports and the
// transports run calls on the engine, so the forker and the messaging
// service get the transports' ringers and sinks, one per binding
// transport, once those exist. Nothing listens yet (Run does that).
func (s *Server) newVoice(ctx context.Context) (err error) {
	reg, err := presence.NewMemory(ctx, presence.MemoryConfig{Persister: s.store, Logger: s.log.With("component", "presence")})
	if err != nil {
		return fmt.Errorf("presence: %w", err)
	}
	s.registry = reg
	// The media address comes from the config, so it is known before
	// anything listens.
	mediaAddr, err := s.mediaAddr()
	if err != nil {
		return err
	}
	ports, err := media.NewPortRange(s.cfg.Media.RTPPortMin, s.cfg.Media.RTPPortMax)
	if err != nil {
		return err
	}
	creds, err := s.store.SIPCredentials(ctx) // a prepared statement: the registrar's hot lookup
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			creds.Close()
		}
	}()
	hooks := &webhook.Client{Policy: s.egress, Timeout: s.cfg.Calls.WebhookTimeout, UserAgent: "Parley/" + s.version}
	s.callbacks = &calls.StatusCallbacks{Webhooks: hooks, Log: s.log}
	msgs, err := messaging.New(s.cfg.Messaging, messaging.Deps{
		Store: messageStore{s.store}, Registry: reg, Resolver: routing.NewMessages(s.store), Webhooks: hooks,
		Admit: func(ctx context.Context, acct string) (func(), error) {
			return s.admission.Acquire(ctx, acct, admission.ResourceMessages)
		},
		Created: func(m messaging.Message) {
			s.publish(usage.Message(m.AccountSid, m.Sid, m.Direction, m.DateCreated)...)
		},
		Log: s.log,
	})
	if err != nil {
		return fmt.Errorf("messaging: %w", err)
	}
	callsLog := s.log.With("component", "calls")
	forker, err := calls.NewForker(calls.ForkerDeps{Bindings: reg, Targets: routing.NewTargets(s.store), SIPIdentity: sip.URIIdentity, Log: callsLog})
	if err != nil {
		return err
	}
	s.engine = calls.New(calls.Config{
		Webhooks:      hooks,
		Dialer:        forker,
		Events:        calls.Fanout{routing.NewRecords(s.store, s.log, s.publish), s.callbacks},
		Fetched:       func(c *calls.Call, n int) { s.publish(usage.TwiMLFetch(c.AccountSid, c.Sid, n, time.Now())) },
		Messages:      routing.NewMessenger(msgs),
		Log:           callsLog,
		TTSCommand:    s.cfg.Calls.TTSCommand,
		RecordingsDir: filepath.Join(s.cfg.DataDir, "recordings"),
		RecordingURL: func(acct, rec string) string {
			base := ""
			if p := s.publicURL.Load(); p != nil {
				base = *p
			}
			return base + api.Prefix + "/Accounts/" + acct + "/Recordings/" + rec + ".wav"
		},
	})
	router := routing.NewCalls(s.store, s.admission, s.engine)
	gw, err := s.newGateway(router, ports, mediaAddr, msgs)
	if err != nil {
		return err
	}
	sipSrv, err := sip.New(s.cfg.SIP, sip.Deps{Credentials: creds, Tokens: &accesstoken.Verifier{Keys: s.store}, Registry: reg, Logger: s.log,
		Registered: func(acct, key string) { s.publish(usage.Registration(acct, key, time.Now())) },
		Calls:      &sip.CallConfig{Router: router, Runner: router, Ports: ports, MediaAddr: mediaAddr, WebRTC: gw},
		Messages:   msgs, MaxMessageBytes: msgs.Config().MaxBodyBytes})
	if err != nil {
		return err
	}
	// SIP bindings are rung by INVITE and reached by MESSAGE over their
	// flow; browser sessions (transport webrtc) get an incoming frame and a
	// message frame on their socket.
	for _, t := range []string{presence.TransportUDP, presence.TransportTCP, presence.TransportTLS, presence.TransportWS, presence.TransportWSS} {
		forker.SetRinger(t, sipSrv.Ringer())
		msgs.SetSink(t, sipSrv.MessageSink())
	}
	if c := sipSrv.Carrier(); c != nil {
		forker.SetCarrier(c)
	}
	forker.SetRinger(presence.TransportWebRTC, gw)
	msgs.SetSink(messaging.TransportWebRTC, messaging.SinkFunc(func(ctx context.Context, b presence.Binding, d messaging.Delivery) error {
		return gw.DeliverTo(b.FlowID, d.From, d.To, string(d.Body))
	}))
	s.creds, s.messages, s.gateway, s.sip = creds, msgs, gw, sipSrv
	// Calls placed over REST outlive their request: they run until the
	// voice stack stops.
	s.voiceCtx, s.stopVoice = context.WithCancel(context.WithoutCancel(ctx))
	s.originator = routing.NewOriginator(routing.OriginatorConfig{Context: s.voiceCtx, Store: s.store, Admitter: s.admission,
		Engine: s.engine, Dialer: forker, Log: s.log, Numbers: s.cfg.SIP.Trunk.URI != ""})
	return nil
}

// Messages is the server's messaging service (tests register sinks on it).
func (s *Server) Messages() *messaging.Service { return s.messages }

// mediaAddr is the address RTP binds and SDP advertises: media.address,
// else sip.hostname, else the SIP listen address when it is a specific IP.
func (s *Server) mediaAddr() (netip.Addr, error) {
	addr := s.cfg.Media.Address
	if addr == "" {
		addr = s.cfg.SIP.Hostname
	}
	if addr == "" {
		addr = hostOf(s.cfg.SIP.UDP, s.cfg.SIP.TCP)
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("media.address: set it (or sip.hostname) to this host's IP: %q is not one", addr)
	}
	return ip, nil
}

// newGateway builds the browser gateway from the webrtc settings.
func (s *Server) newGateway(router *routing.Calls, ports *media.PortRange, ip netip.Addr, msgs *messaging.Service) (*webrtc.Gateway, error) {
	w := s.cfg.WebRTC
	var ice []webrtc.ICEServer
	if u := config.List(w.STUNURLs); len(u) > 0 {
		ice = append(ice, webrtc.ICEServer{URLs: u})
	}
	if u := config.List(w.TURNURLs); len(u) > 0 {
		ice = append(ice, webrtc.ICEServer{URLs: u, Username: w.TURNUsername, Credential: w.TURNCredential})
	}
	gw, err := webrtc.New(webrtc.Config{NAT1To1IPs: config.List(w.NAT1To1IPs), ICEServers: ice,
		UDPPortMin: uint16(w.UDPPortMin), UDPPortMax: uint16(w.UDPPortMax), AuthTimeout: w.AuthTimeout,
		IncludeLoopback: ip.IsLoopback()},
		webrtc.Deps{Tokens: &accesstoken.Verifier{Keys: s.store}, Registry: s.registry, Ports: ports, MediaAddr: ip,
			Router: router, Runner: router, Logger: s.log, Messages: routing.BrowserMessages(msgs)})
	if err != nil {
		return nil, fmt.Errorf("webrtc gateway: %w", err)
	}
	return gw, nil
}

// hostOf returns the first listen address's host when it is a specific IP,
// else this host's first global IPv4 address.
func hostOf(addrs ...string) string {
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil {
			if ip, err := netip.ParseAddr(h); err == nil && !ip.IsUnspecified() {
				return h
			}
		}
	}
	if ifaces, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifaces {
			if n, ok := a.(*net.IPNet); ok && n.IP.IsGlobalUnicast() && n.IP.To4() != nil {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// NewPluginCatalog lists the built-in and configured external plugins, with
// the built-ins started by re-executing this binary.
func NewPluginCatalog(cfg config.Config) (*plugins.Catalog, error) {
	self, err := plugins.SelfCommand()
	if err != nil {
		return nil, err
	}
	env, err := cfg.Admission.PluginEnv(filepath.Join(cfg.DataDir, "admission.db"))
	if err != nil {
		return nil, err
	}
	usageEnv, err := cfg.Usage.Plugin.PluginEnv(filepath.Join(cfg.DataDir, "usage.db"))
	if err != nil {
		return nil, err
	}
	partnersEnv, err := partnersv1.PluginEnv(filepath.Join(cfg.DataDir, PartnersDBFile), cfg.Partners.Skew)
	if err != nil {
		return nil, err
	}
	cat, err := plugins.NewCatalog(cfg.Plugins, builtin.Specs(), self,
		map[string][]string{builtin.Admission: env, builtin.Usage: usageEnv, builtin.Partners: partnersEnv})
	if err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	return cat, nil
}

func (s *Server) newPlugins() error {
	cat, err := NewPluginCatalog(s.cfg)
	if err != nil {
		return err
	}
	sup, err := plugins.NewSupervisor(s.cfg.Plugins, cat, plugins.Options{Logger: s.log, Registerer: s.reg})
	if err != nil {
		return fmt.Errorf("plugins: %w", err)
	}
	adm, err := admission.NewClient(sup, s.cfg.Admission, admission.ClientOptions{Logger: s.log, Registerer: s.reg})
	if err != nil {
		return fmt.Errorf("admission: %w", err)
	}
	s.plugins, s.admission = sup, adm
	if s.cfg.Plugins.Use["usage"] != "" {
		pub, err := usage.NewPublisher(sup, s.cfg.Usage, usage.PublisherOptions{
			SpoolDir: filepath.Join(s.cfg.DataDir, "usage-spool"), Logger: s.log, Registerer: s.reg})
		if err != nil {
			return fmt.Errorf("usage: %w", err)
		}
		del, err := usage.NewDeliverer(sup, s.cfg.Usage, usage.DelivererOptions{
			Accounts: storeAccounts{Store: s.store}, Actions: platformActions{Store: s.store, Limits: adm},
			Webhook: &webhook.Client{Policy: s.egress, Timeout: s.cfg.Usage.CallbackTimeout, UserAgent: "Parley-Usage-Trigger/1.0"},
			Logger:  s.log, Registerer: s.reg})
		if err != nil {
			return fmt.Errorf("usage: %w", err)
		}
		s.usage, s.triggers, s.usageAPI = pub, del, usage.NewClient(sup, s.cfg.Plugins.CallTimeout)
	}
	if s.cfg.Plugins.Use["partners"] != "" {
		s.partners = partners.NewClient(sup, s.cfg.Plugins.CallTimeout)
	}
	return nil
}

// publish sends usage events when usage is enabled; it never blocks.
func (s *Server) publish(evs ...usage.Event) {
	if s.usage == nil {
		return
	}
	if err := s.usage.PublishAll(evs); err != nil {
		s.log.Warn("usage event refused", "err", err)
	}
}

// PublicURL is the base URL clients use to reach this server: public_url,
// else http://<the bound HTTP address> once Run listens.
func (s *Server) PublicURL() string {
	if p := s.publicURL.Load(); p != nil {
		return *p
	}
	return s.cfg.PublicURL
}

// Store exposes the server's store (for tests and embedding).
func (s *Server) Store() *store.Store { return s.store }

// Handler is the whole HTTP surface of the server.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	opts := api.Options{Log: s.log, Admission: s.admission, Limits: s.admission, Calls: s.engine,
		SIP: api.SIPAdmin{Realm: s.sip.Realm(), CredentialsChanged: s.sip.ForgetCredentials, Presence: s.registry,
			ReservedDomainNames: s.cfg.ReservedSIPDomainNames()},
		Originator: originator{s.originator}}
	opts.Messages = s.messages
	if s.usageAPI != nil {
		opts.Usage, opts.Events = s.usageAPI, s.usage
	}
	if s.partners != nil {
		opts.Partners = api.PartnerOptions{Partners: s.partners, Accounts: partnerAccounts{s.store}, OperatorToken: s.cfg.Partners.OperatorToken, PublicURL: s.PublicURL, URLTTL: s.cfg.Partners.URLTTL}
		popts := partners.PortalOptions{Sessions: s.partners, Accounts: partnerAccounts{s.store}, Calls: portalCalls{s.store}, Presence: s.registry,
			SessionTTL: s.cfg.Partners.SessionTTL, Log: s.log.With("component", "portal")}
		if s.usageAPI != nil {
			popts.Usage = s.usageAPI
		}
		portal := partners.NewPortal(popts)
		mux.Handle("/portal", portal)
		mux.Handle("/portal/", portal)
		mux.Handle("GET /embed/", partners.EmbedHandler())
	}
	rest := api.New(s.store, opts)
	mux.Handle(api.Prefix+"/", rest)
	mux.Handle("/v1/", rest)
	mux.Handle("GET "+webrtc.Path, s.gateway)
	web.Mount(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"status\":\"ok\",\"version\":%q}\n", s.version)
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	return s.metrics.wrap(mux)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if !s.ready.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "{\"status\":\"not ready\",\"reason\":\"starting or draining\"}\n")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "{\"status\":\"not ready\",\"reason\":%q}\n", "database: "+err.Error())
		return
	}
	// A plugin whose kind fails closed must be running: while it is not,
	// the requests that depend on it are refused.
	for _, st := range s.plugins.Status() {
		if st.Selected && st.State != plugins.StateRunning && !s.plugins.FailOpen(st.Kind) {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "{\"status\":\"not ready\",\"reason\":%q}\n", fmt.Sprintf("plugin %s is %s: %s", st.Name, st.State, st.LastError))
			return
		}
	}
	io.WriteString(w, "{\"status\":\"ready\"}\n")
}

// drainCalls refuses new calls and lets those in progress end, for at most
// d; then it hangs up the rest. HTTP still serves meanwhile (REST can end
// calls too).
func (s *Server) drainCalls(d time.Duration) {
	s.sip.Drain()
	s.gateway.Drain()
	deadline := time.Now().Add(d)
	if n := s.engine.Active(); n > 0 {
		s.log.Info("draining calls", "calls", n, "for at most", d.String())
	}
	for s.engine.Active() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := s.engine.Active(); n > 0 {
		s.log.Warn("hanging up calls still in progress", "calls", n)
		s.engine.HangupAll()
		for end := time.Now().Add(3 * time.Second); s.engine.Active() > 0 && time.Now().Before(end); {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Listening describes where a started server can be reached.
type Listening struct {
	HTTP    string            // host:port actually bound
	SIP     map[string]string // transport → host:port
	DataDir string
}

// Run serves until ctx is cancelled, then shuts down gracefully within the
// configured timeout and releases the store and the data-directory lock.
// started, if not nil, is called once every listener is bound.
//
// The server's components start in the order of the steps below and stop
// in reverse, which is the shutdown order: /readyz turns 503 → calls drain
// → HTTP drains → the SIP server and presence stop (the registry flushes
// its bindings) → the usage deliverer and publisher close → the admission
// client returns its leases and the supervisor stops the plugins → the
// control socket closes → plugin clients are cleaned up as the last line →
// the store closes and the data-dir lock is released.
func (s *Server) Run(ctx context.Context, started func(Listening)) error {
	var ln net.Listener
	var hs *http.Server
	var stopControl func()
	serveErr := make(chan error, 1) // the HTTP server stopped on its own
	fiveSeconds := func(ctx context.Context) (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, 5*time.Second)
	}
	steps := []step{
		{name: "store and data-directory lock", stop: func(context.Context) error {
			return errors.Join(s.store.Close(), s.lock.release())
		}},
		// Plugins outlive nothing: closed after everything that uses them
		// (below), and killed outright as a last line however Run returns.
		{name: "plugin clients", stop: func(context.Context) error { plugins.CleanupAll(); return nil }},
		{name: "plugins and admission", start: func(ctx context.Context) error {
			if err := s.plugins.Start(ctx); err != nil {
				s.log.Error("plugins did not all start; retrying in the background", "err", err)
			}
			s.admission.Start(ctx)
			return nil
		}},
		{name: "control socket", start: func(ctx context.Context) error {
			var err error
			stopControl, err = s.serveControl(ctx)
			return err
		}, stop: func(context.Context) error { stopControl(); return nil }},
		// The admission client and the plugins stop after the usage queues
		// below (which need the usage plugin to finish) and while the
		// control socket, which serves their limits, is still open.
		{name: "admission leases and plugins", stop: func(ctx context.Context) error {
			cctx, cancel := fiveSeconds(ctx)
			defer cancel()
			return errors.Join(s.admission.Close(cctx), s.plugins.Close())
		}},
	}
	if s.usage != nil {
		// After the voice stack and HTTP drained, so that the last calls'
		// events are sent.
		steps = append(steps, step{name: "usage", start: func(context.Context) error {
			s.usage.Start()
			s.triggers.Start()
			return nil
		}, stop: func(ctx context.Context) error {
			s.triggers.Close()
			cctx, cancel := fiveSeconds(ctx)
			defer cancel()
			return s.usage.Close(cctx)
		}})
	}
	steps = append(steps,
		step{name: "http listener", start: func(context.Context) error {
			var err error
			if ln, err = net.Listen("tcp", s.cfg.HTTP.Addr); err != nil {
				return fmt.Errorf("http listener: %w", err)
			}
			public := s.cfg.PublicURL
			if public == "" {
				public = "http://" + ln.Addr().String()
			}
			s.publicURL.Store(&public)
			return nil
		}, stop: func(context.Context) error {
			ln.Close() // closed already when the HTTP server shut down
			return nil
		}},
		step{name: "sip credentials", stop: func(context.Context) error { s.creds.Close(); return nil }},
		step{name: "voice", start: func(context.Context) error { return s.startVoice() }, stop: func(context.Context) error {
			s.stopVoice()
			s.gateway.Close()
			s.voice.Wait() // the registry flushes its bindings as it stops
			return nil
		}},
		step{name: "http", start: func(ctx context.Context) error {
			hs = &http.Server{
				Handler:           s.Handler(),
				ReadHeaderTimeout: 10 * time.Second,
				ReadTimeout:       30 * time.Second,
				WriteTimeout:      60 * time.Second,
				IdleTimeout:       120 * time.Second,
				MaxHeaderBytes:    64 << 10,
				ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
				BaseContext:       func(net.Listener) context.Context { return ctx },
			}
			go func() {
				if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
					serveErr <- fmt.Errorf("http server: %w", err)
				}
			}()
			return nil
		}, stop: func(ctx context.Context) error {
			sctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
			defer cancel()
			if err := hs.Shutdown(sctx); err != nil {
				return fmt.Errorf("http shutdown: %w", err)
			}
			return nil
		}},
		// Calls drain before HTTP does: REST can still end calls meanwhile.
		step{name: "calls", stop: func(context.Context) error {
			s.drainCalls(s.cfg.ShutdownTimeout * 3 / 4)
			return nil
		}},
		step{name: "ready", start: func(context.Context) error {
			s.ready.Store(true)
			abs, _ := filepath.Abs(s.cfg.DataDir)
			s.log.Info("parley started", "version", s.version, "http", ln.Addr().String(), "data_dir", abs)
			if started != nil {
				l := Listening{HTTP: ln.Addr().String(), DataDir: abs, SIP: map[string]string{}}
				for _, t := range []string{"udp", "tcp", "tls", "ws", "wss"} {
					if a := s.sip.Addr(t); a != nil {
						l.SIP[t] = a.String()
					}
				}
				started(l)
			}
			return nil
		}, stop: func(context.Context) error {
			s.ready.Store(false)
			s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout.String())
			return nil
		}},
	)
	err := runSteps(ctx, s.log, steps, serveErr)
	if err == nil {
		s.log.Info("stopped")
	}
	return err
}

// startVoice binds the SIP listeners and starts the loops of the voice
// stack: presence, messaging, status callbacks and the SIP server. They
// run until stopVoice.
func (s *Server) startVoice() error {
	if err := s.sip.Listen(); err != nil {
		return err
	}
	s.voice.Add(4)
	go func() { defer s.voice.Done(); _ = s.registry.Run(s.voiceCtx) }()
	go func() {
		defer s.voice.Done()
		if err := s.messages.Run(s.voiceCtx); err != nil {
			s.log.Error("messaging stopped", "err", err)
		}
	}()
	go func() { defer s.voice.Done(); s.callbacks.Run(s.voiceCtx) }()
	go func() {
		defer s.voice.Done()
		if err := s.sip.Run(s.voiceCtx); err != nil {
			s.log.Error("sip server stopped", "err", err)
		}
	}()
	return nil
}
