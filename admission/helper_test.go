package admission_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/plugins/builtin"
	"github.com/parleyhq/parley/plugins/sdk"
)

// TestMain doubles as the plugin process: the supervisor re-executes this
// test binary as `<test binary> plugin serve <name>` (go-plugin's
// helperProcess pattern), with the handshake cookie in the environment.
func TestMain(m *testing.M) {
	hs := sdk.Handshake()
	if os.Getenv(hs.MagicCookieKey) == hs.MagicCookieValue && len(os.Args) >= 4 && os.Args[1] == "plugin" && os.Args[2] == "serve" {
		if err := builtin.Serve(context.Background(), os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type env struct {
	sup    *plugins.Supervisor
	client *admission.Client
	cfg    admission.Config
	dir    string
}

type setup struct {
	onFailure string
	admission func(*admission.Config)
	holder    string
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// start runs the real built-in admission plugin as a subprocess under a
// supervisor and returns a started client.
func start(t testing.TB, s setup) *env {
	t.Helper()
	dir := t.TempDir()
	acfg := admission.DefaultConfig()
	acfg.Holder = "host-a"
	if s.holder != "" {
		acfg.Holder = s.holder
	}
	if s.admission != nil {
		s.admission(&acfg)
	}
	pcfg := plugins.DefaultConfig()
	pcfg.Dir = filepath.Join(dir, "plugins")
	pcfg.HealthInterval = 200 * time.Millisecond
	pcfg.RestartBackoff = 50 * time.Millisecond
	pcfg.RestartBackoffMax = 400 * time.Millisecond
	pcfg.CallTimeout = time.Second
	if s.onFailure != "" {
		pcfg.OnFailure[string(sdk.KindAdmission)] = s.onFailure
	}
	penv, err := acfg.PluginEnv(filepath.Join(dir, "admission.db"))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := plugins.NewCatalog(pcfg, builtin.Specs(),
		plugins.Command{Path: os.Args[0], Args: []string{"plugin", "serve"}},
		map[string][]string{builtin.Admission: penv})
	if err != nil {
		t.Fatal(err)
	}
	sup, err := plugins.NewSupervisor(pcfg, cat, plugins.Options{Logger: testLogger(t), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sup.Start(ctx); err != nil {
		sup.Close()
		t.Fatalf("start supervisor: %v", err)
	}
	t.Cleanup(func() { sup.Close() })
	e := &env{sup: sup, cfg: acfg, dir: dir}
	e.client = e.newClient(t, acfg.Holder, true)
	return e
}

// newClient is another host (holder) against the same plugin.
func (e *env) newClient(t testing.TB, holder string, maintain bool) *admission.Client {
	t.Helper()
	cfg := e.cfg
	cfg.Holder = holder
	c, err := admission.NewClient(e.sup, cfg, admission.ClientOptions{Logger: testLogger(t), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if maintain {
		c.Start(context.Background())
		t.Cleanup(func() { c.Close(context.Background()) })
	}
	return c
}

func (e *env) pluginPID(t testing.TB) int {
	t.Helper()
	for _, st := range e.sup.Status() {
		if st.Name == builtin.Admission && st.State == plugins.StateRunning {
			return st.PID
		}
	}
	t.Fatalf("admission plugin not running: %+v", e.sup.Status())
	return 0
}

func (e *env) status(t testing.TB) plugins.Status {
	t.Helper()
	for _, st := range e.sup.Status() {
		if st.Name == builtin.Admission {
			return st
		}
	}
	t.Fatal("admission plugin not in status")
	return plugins.Status{}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
