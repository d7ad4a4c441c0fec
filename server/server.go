package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/plugins/builtin"
	"github.com/parleyhq/parley/server/api"
	"github.com/parleyhq/parley/server/config"
	"github.com/parleyhq/parley/server/store"
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

	plugins   *plugins.Supervisor
	admission *admission.Client
}

// DBFile is the core database's file name inside the data directory.
const DBFile = "parley.db"

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
	s := &Server{cfg: cfg, log: log, version: version, lock: lock, store: st, reg: reg, metrics: m}
	if err := s.newPlugins(); err != nil {
		st.Close()
		lock.release()
		return nil, err
	}
	return s, nil
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
	cat, err := plugins.NewCatalog(cfg.Plugins, builtin.Specs(), self, map[string][]string{admission.PluginName: env})
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
	return nil
}

// Store exposes the server's store (for tests and embedding).
func (s *Server) Store() *store.Store { return s.store }

// Handler is the whole HTTP surface of the server.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	rest := api.New(s.store, api.Options{Log: s.log, Admission: s.admission, Limits: s.admission})
	mux.Handle(api.Prefix+"/", rest)
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

// Listening describes where a started server can be reached.
type Listening struct {
	HTTP    string // host:port actually bound
	DataDir string
}

// Run serves until ctx is cancelled, then shuts down gracefully within the
// configured timeout and releases the store and the data-directory lock.
// started, if not nil, is called once every listener is bound.
func (s *Server) Run(ctx context.Context, started func(Listening)) (err error) {
	defer func() {
		err = errors.Join(err, s.store.Close(), s.lock.release())
	}()
	// Plugins outlive nothing: closed after the HTTP server drained, and
	// killed outright as a last line however Run returns.
	defer plugins.CleanupAll()
	if err := s.plugins.Start(ctx); err != nil {
		s.log.Error("plugins did not all start; retrying in the background", "err", err)
	}
	s.admission.Start(ctx)
	stopControl, err := s.serveControl(ctx)
	if err != nil {
		return err
	}
	defer stopControl()
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err = errors.Join(err, s.admission.Close(cctx), s.plugins.Close())
	}()
	ln, err := net.Listen("tcp", s.cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	s.ready.Store(true)
	abs, _ := filepath.Abs(s.cfg.DataDir)
	s.log.Info("parley started", "version", s.version, "http", ln.Addr().String(), "data_dir", abs)
	if started != nil {
		started(Listening{HTTP: ln.Addr().String(), DataDir: abs})
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	s.ready.Store(false)
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	s.log.Info("stopped")
	return nil
}
