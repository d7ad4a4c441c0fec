package plugins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	admissionv1 "github.com/parleyhq/parley/plugins/proto/admission/v1"
	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
	pluginv1 "github.com/parleyhq/parley/plugins/proto/plugin/v1"
	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
	"github.com/parleyhq/parley/plugins/sdk"
)

// Errors callers see while a kind cannot be served.
var (
	// ErrUnavailable: the kind's plugin is not running (starting, crashed,
	// restarting). Apply FailOpen(kind).
	ErrUnavailable = errors.New("plugin unavailable")
	// ErrNotConfigured: no plugin is selected for the kind.
	ErrNotConfigured = errors.New("no plugin configured for this kind")
)

// Options are the supervisor's collaborators.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are kept but not exported
}

// Supervisor runs the plugin selected for each kind and keeps it running.
type Supervisor struct {
	cfg     Config
	catalog *Catalog
	log     *slog.Logger
	m       *metrics

	instances map[sdk.Kind]*instance
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// NewSupervisor prepares (but does not start) the plugins selected in cfg.Use.
func NewSupervisor(cfg Config, catalog *Catalog, opts Options) (*Supervisor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Supervisor{cfg: cfg, catalog: catalog, log: log, m: m, instances: map[sdk.Kind]*instance{}}
	for kind, name := range cfg.Use {
		if name == "" {
			continue
		}
		e, err := catalog.Lookup(name)
		if err != nil {
			return nil, err
		}
		s.instances[sdk.Kind(kind)] = &instance{sup: s, entry: e, state: StateStopped, ready: make(chan struct{})}
	}
	return s, nil
}

// Start launches every selected plugin and waits until each has answered
// its first Info call or ctx ends. A plugin that fails to start is retried in
// the background with back-off; Start then returns the first failure so the
// caller can decide whether to serve degraded (per on_failure) or stop.
func (s *Supervisor) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for _, in := range s.instances {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			in.run(runCtx)
		}()
	}
	var errs []error
	for kind, in := range s.instances {
		select {
		case <-in.ready:
			if err := in.firstErr(); err != nil {
				errs = append(errs, fmt.Errorf("%s plugin %q: %w", kind, in.entry.Name, err))
			}
		case <-ctx.Done():
			return fmt.Errorf("starting %s plugin %q: %w", kind, in.entry.Name, ctx.Err())
		}
	}
	return errors.Join(errs...)
}

// Close stops every plugin process and waits for the supervisors to end.
func (s *Supervisor) Close() error {
	s.closeOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
	})
	return nil
}

// FailOpen reports whether callers should proceed (true) or refuse (false)
// while the kind's plugin is unavailable.
func (s *Supervisor) FailOpen(kind sdk.Kind) bool {
	return s.cfg.OnFailure[string(kind)] != FailClosed
}

// Admission returns a client for the running admission plugin, or an error
// wrapping ErrUnavailable / ErrNotConfigured.
func (s *Supervisor) Admission(context.Context) (admissionv1.AdmissionClient, error) {
	return service[admissionv1.AdmissionClient](s, sdk.KindAdmission)
}

// Usage returns a client for the running usage plugin.
func (s *Supervisor) Usage(context.Context) (usagev1.UsageClient, error) {
	return service[usagev1.UsageClient](s, sdk.KindUsage)
}

// Partners returns a client for the running partners plugin.
func (s *Supervisor) Partners(context.Context) (partnersv1.PartnersClient, error) {
	return service[partnersv1.PartnersClient](s, sdk.KindPartners)
}

// Info asks the running plugin of kind who it is (the shared PluginInfo
// service, which is also its health check).
func (s *Supervisor) Info(ctx context.Context, kind sdk.Kind) (*pluginv1.InfoResponse, error) {
	d, err := s.dispensed(kind)
	if err != nil {
		return nil, err
	}
	return d.Info.Info(ctx, &pluginv1.InfoRequest{})
}

// service returns the kind's gRPC client of the running plugin.
func service[C any](s *Supervisor, kind sdk.Kind) (C, error) {
	var zero C
	d, err := s.dispensed(kind)
	if err != nil {
		return zero, err
	}
	c, ok := d.Service.(C)
	if !ok {
		return zero, fmt.Errorf("%s plugin: dispensed %T", kind, d.Service)
	}
	return c, nil
}

func (s *Supervisor) dispensed(kind sdk.Kind) (*sdk.Dispensed, error) {
	in, ok := s.instances[kind]
	if !ok {
		return nil, fmt.Errorf("%s: %w", kind, ErrNotConfigured)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.state != StateRunning || in.raw == nil {
		return nil, fmt.Errorf("%s plugin %q is %s: %w", kind, in.entry.Name, in.state, ErrUnavailable)
	}
	return in.raw, nil
}

// State of a supervised plugin.
type State string

// States.
const (
	StateStopped  State = "stopped"
	StateStarting State = "starting"
	StateRunning  State = "running"
	StateBackoff  State = "restarting" // crashed; waiting before the next start
)

// Status is what `parley plugin list` and /readyz show for a plugin.
type Status struct {
	Entry
	State     State
	PID       int
	Restarts  int
	LastError string
	Since     time.Time // when State was entered
}

// Status lists the catalog with the live state of the supervised plugins.
func (s *Supervisor) Status() []Status {
	var out []Status
	for _, e := range s.catalog.Entries() {
		st := Status{Entry: e, State: StateStopped}
		for _, in := range s.instances {
			if in.entry.Name != e.Name {
				continue
			}
			in.mu.Lock()
			st.State, st.PID, st.Restarts, st.LastError, st.Since = in.state, in.pid, in.restarts, in.lastErr, in.since
			if in.version != "" {
				st.Version = in.version
			}
			in.mu.Unlock()
		}
		out = append(out, st)
	}
	return out
}

// instance supervises one plugin process at a time.
type instance struct {
	sup   *Supervisor
	entry Entry

	mu       sync.Mutex
	state    State
	since    time.Time
	client   *plugin.Client
	raw      *sdk.Dispensed
	pid      int
	restarts int
	lastErr  string
	version  string

	ready     chan struct{} // closed after the first start attempt
	readyOnce sync.Once
	first     error
}

func (in *instance) firstErr() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.first
}

func (in *instance) setState(st State, err error) {
	in.mu.Lock()
	in.state, in.since = st, time.Now()
	if err != nil {
		in.lastErr = err.Error()
	}
	in.mu.Unlock()
	up := 0.0
	if st == StateRunning {
		up = 1
	}
	in.sup.m.up.WithLabelValues(in.entry.Name).Set(up)
}

func (in *instance) run(ctx context.Context) {
	log := in.sup.log.With("plugin", in.entry.Name, "kind", string(in.entry.Kind))
	cfg := in.sup.cfg
	backoff := cfg.RestartBackoff
	for attempt := 0; ; attempt++ {
		in.setState(StateStarting, nil)
		started := time.Now()
		proc, err := in.start(ctx)
		if err == nil {
			in.mu.Lock()
			in.client, in.raw, in.pid = proc.client, proc.raw, proc.pid
			in.mu.Unlock()
			in.setState(StateRunning, nil)
			log.Info("plugin running", "pid", proc.pid, "version", in.version)
		}
		in.readyOnce.Do(func() {
			in.mu.Lock()
			in.first = err
			in.mu.Unlock()
			close(in.ready)
		})
		if err == nil {
			err = in.watch(ctx, proc)
			in.mu.Lock()
			in.raw, in.client, in.pid = nil, nil, 0
			in.mu.Unlock()
			proc.stop()
		}
		if ctx.Err() != nil {
			in.setState(StateStopped, nil)
			return
		}
		if time.Since(started) > cfg.RestartBackoffMax {
			backoff = cfg.RestartBackoff // it ran stably for a while: start over
		}
		in.setState(StateBackoff, err)
		log.Error("plugin down; restarting", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			in.setState(StateStopped, nil)
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, cfg.RestartBackoffMax)
		in.mu.Lock()
		in.restarts++
		in.mu.Unlock()
		in.sup.m.restarts.WithLabelValues(in.entry.Name).Inc()
	}
}

type process struct {
	client *plugin.Client
	raw    *sdk.Dispensed
	pid    int
	done   chan struct{} // closing it lets the locked starter thread exit
}

func (p *process) stop() {
	p.client.Kill()
	close(p.done)
}

// start launches the plugin process, dispenses its kind and checks Info.
func (in *instance) start(ctx context.Context) (*process, error) {
	s := in.sup
	cmd, secure, err := s.catalog.command(in.entry.Name)
	if err != nil {
		return nil, err
	}
	// Pdeathsig: the kernel sends SIGKILL to the plugin when the thread that
	// forked it dies — including when the whole host is SIGKILLed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake(),
		VersionedPlugins: sdk.HostPluginSets(),
		Cmd:              cmd,
		SecureConfig:     secure,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           newHCLog(s.log, in.entry.Name),
		Managed:          true,
		StartTimeout:     s.cfg.StartTimeout,
		GRPCDialOptions:  []grpc.DialOption{grpc.WithChainUnaryInterceptor(s.m.interceptor(in.entry.Name, s.cfg.CallTimeout))},
	})
	proc := &process{client: client, done: make(chan struct{})}

	// Start from a goroutine locked to its OS thread that lives as long as
	// the process: Pdeathsig is tied to the forking thread, and Go may
	// otherwise reuse or retire that thread at any time.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		_, err := client.Start()
		started <- err
		<-proc.done
	}()
	select {
	case err = <-started:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		proc.stop()
		if strings.Contains(err.Error(), "incompatible API version") {
			// go-plugin's own words for a protocol mismatch, e.g. a plugin
			// built against an older plugins/sdk.
			return nil, fmt.Errorf("start: %w (this Parley speaks plugin protocol %d: rebuild the plugin against the current plugins/sdk)", err, sdk.ProtocolVersion)
		}
		return nil, fmt.Errorf("start: %w", err)
	}
	if rc := client.ReattachConfig(); rc != nil {
		proc.pid = rc.Pid
	}
	rpc, err := client.Client()
	if err != nil {
		proc.stop()
		return nil, fmt.Errorf("connect: %w", err)
	}
	raw, err := rpc.Dispense(string(in.entry.Kind))
	if err != nil {
		proc.stop()
		return nil, fmt.Errorf("dispense %s: %w", in.entry.Kind, err)
	}
	d, ok := raw.(*sdk.Dispensed)
	if !ok {
		proc.stop()
		return nil, fmt.Errorf("dispensed %T, not a plugin client", raw)
	}
	proc.raw = d
	if err := in.checkInfo(ctx, d); err != nil {
		proc.stop()
		return nil, err
	}
	return proc, nil
}

// checkInfo calls the plugin's PluginInfo service, verifies kind and
// protocol, and records the version.
func (in *instance) checkInfo(ctx context.Context, d *sdk.Dispensed) error {
	ctx, cancel := context.WithTimeout(ctx, in.sup.cfg.CallTimeout)
	defer cancel()
	r, err := d.Info.Info(ctx, &pluginv1.InfoRequest{})
	if err != nil {
		return fmt.Errorf("info: %w", err)
	}
	if err := sdk.CheckInfo(in.entry.Kind, r.GetKind(), r.GetProtocolVersions()); err != nil {
		return err
	}
	in.mu.Lock()
	in.version = r.GetVersion()
	in.mu.Unlock()
	return nil
}

// watch returns when the process exits, fails three health checks in a row,
// or ctx ends.
func (in *instance) watch(ctx context.Context, proc *process) error {
	const exitPoll = 50 * time.Millisecond
	poll := time.NewTicker(exitPoll)
	defer poll.Stop()
	health := time.NewTicker(in.sup.cfg.HealthInterval)
	defer health.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-poll.C:
			if proc.client.Exited() {
				return errors.New("plugin process exited")
			}
		case <-health.C:
			if err := in.checkInfo(ctx, proc.raw); err != nil {
				failures++
				in.sup.log.Warn("plugin health check failed", "plugin", in.entry.Name, "err", err, "failures", failures)
				if failures >= 3 {
					return fmt.Errorf("health check: %w", err)
				}
				continue
			}
			failures = 0
		}
	}
}

// CleanupAll kills every plugin process started by any Supervisor in this
// process (go-plugin's CleanupClients). Call it deferred in main, as a last
// line after Supervisor.Close.
func CleanupAll() { plugin.CleanupClients() }
