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
	return &Server{cfg: cfg, log: log, version: version, lock: lock, store: st, reg: reg, metrics: m}, nil
}

// Store exposes the server's store (for tests and embedding).
func (s *Server) Store() *store.Store { return s.store }

// Handler is the whole HTTP surface of the server.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	rest := api.New(s.store, api.Options{Log: s.log})
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
