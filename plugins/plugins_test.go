package plugins_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/plugins/builtin"
	admissionplugin "github.com/parleyhq/parley/plugins/builtin/admission"
	admissionv1 "github.com/parleyhq/parley/plugins/proto/admission/v1"
	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
	"github.com/parleyhq/parley/plugins/sdk"
)

const (
	envExternal = "PARLEY_TEST_EXTERNAL" // the copied test binary serves the admission plugin
	envHostDir  = "PARLEY_TEST_HOST_DIR" // the test binary acts as a host
	envHangFile = "PARLEY_TEST_HANG"     // slow plugin: Info hangs while this file exists
)

// TestMain doubles as a plugin process (built-in: `plugin serve <name>`;
// external: a copy of this binary in the plugin dir) and as a host process
// for the orphan test.
func TestMain(m *testing.M) {
	hs := sdk.Handshake()
	if os.Getenv(hs.MagicCookieKey) == hs.MagicCookieValue {
		var err error
		switch {
		case len(os.Args) >= 4 && os.Args[1] == "plugin" && os.Args[2] == "serve":
			err = builtin.Serve(context.Background(), os.Args[3])
		case os.Getenv(envExternal) == "slow":
			slow := slowAdmission{hangFile: os.Getenv(envHangFile)}
			sdk.ServeAdmission(slow, sdk.Options{Name: "slow", Version: "0.0.3", Health: slow.health})
		case os.Getenv(envExternal) == "v1":
			serveProtocol1()
		case os.Getenv(envExternal) == "usage":
			sdk.ServeUsage(usageStub{}, sdk.Options{Name: "test-usage", Version: "0.0.1"})
		case os.Getenv(envExternal) == "partners":
			sdk.ServePartners(partnersStub{}, sdk.Options{Name: "test-partners", Version: "0.0.2"})
		case os.Getenv(envExternal) != "":
			err = admissionplugin.Serve(context.Background(), os.Getenv)
		default:
			err = errors.New("plugin helper: nothing to serve")
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if dir := os.Getenv(envHostDir); dir != "" {
		os.Exit(runHost(dir))
	}
	os.Exit(m.Run())
}

// usageStub and partnersStub are the smallest plugins of the other kinds:
// the SDK answers Info (the runtime's contract) and they nothing else yet.
type usageStub struct {
	usagev1.UnimplementedUsageServer
}

type partnersStub struct {
	partnersv1.UnimplementedPartnersServer
}

// serveProtocol1 is a plugin built against plugin protocol 1 (an Info RPC
// in each kind's service, no PluginInfo service): it offers version 1 only.
func serveProtocol1() {
	hs := sdk.Handshake()
	hs.ProtocolVersion = 1
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{1: {"admission": &protocol1Plugin{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}

type protocol1Plugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (protocol1Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	admissionv1.RegisterAdmissionServer(s, admissionv1.UnimplementedAdmissionServer{})
	return nil
}

func (protocol1Plugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("host side unused")
}

// slowAdmission never answers Acquire in time, and stops answering Info
// (its health check hangs) while hangFile exists.
type slowAdmission struct {
	admissionv1.UnimplementedAdmissionServer
	hangFile string
}

func (s slowAdmission) health(ctx context.Context) error {
	if _, err := os.Stat(s.hangFile); err == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (slowAdmission) Acquire(ctx context.Context, _ *admissionv1.AcquireRequest) (*admissionv1.AcquireResponse, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(10 * time.Second):
		return &admissionv1.AcquireResponse{Granted: true, Count: 1}, nil
	}
}

// runHost starts a supervisor with the built-in admission plugin, prints
// the plugin's PID and waits to be killed.
func runHost(dir string) int {
	cfg := testConfig(dir)
	sup, err := newSupervisor(cfg, nil, slog.New(slog.NewTextHandler(os.Stderr, nil)), prometheus.NewRegistry())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := sup.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, st := range sup.Status() {
		if st.State == plugins.StateRunning {
			fmt.Printf("PLUGIN_PID=%d\n", st.PID)
		}
	}
	select {}
}

func testConfig(dir string) plugins.Config {
	cfg := plugins.DefaultConfig()
	cfg.Dir = filepath.Join(dir, "plugins")
	cfg.HealthInterval = 100 * time.Millisecond
	cfg.RestartBackoff = 50 * time.Millisecond
	cfg.RestartBackoffMax = 500 * time.Millisecond
	cfg.CallTimeout = time.Second
	cfg.StartTimeout = 20 * time.Second
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		panic(err)
	}
	return cfg
}

func admissionEnv(dir string) []string {
	env, err := admission.DefaultConfig().PluginEnv(filepath.Join(dir, "admission.db"))
	if err != nil {
		panic(err)
	}
	return env
}

func usageEnv(dir string) []string {
	env, err := usagev1.DefaultConfig().PluginEnv(filepath.Join(dir, "usage.db"))
	if err != nil {
		panic(err)
	}
	return env
}

func partnersEnv(dir string) []string {
	env, err := partnersv1.PluginEnv(filepath.Join(dir, "partners.db"), 0)
	if err != nil {
		panic(err)
	}
	return env
}

func newSupervisor(cfg plugins.Config, _ []string, log *slog.Logger, reg prometheus.Registerer) (*plugins.Supervisor, error) {
	dir := filepath.Dir(cfg.Dir)
	cat, err := plugins.NewCatalog(cfg, builtin.Specs(),
		plugins.Command{Path: os.Args[0], Args: []string{"plugin", "serve"}},
		map[string][]string{builtin.Admission: admissionEnv(dir)})
	if err != nil {
		return nil, err
	}
	return plugins.NewSupervisor(cfg, cat, plugins.Options{Logger: log, Registerer: reg})
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

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

func statusOf(t testing.TB, sup *plugins.Supervisor, name string) plugins.Status {
	t.Helper()
	for _, st := range sup.Status() {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("plugin %q not listed", name)
	return plugins.Status{}
}

func metricValue(t testing.TB, reg *prometheus.Registry, name, plugin string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "plugin" && l.GetValue() == plugin {
					switch {
					case m.GetCounter() != nil:
						sum += m.GetCounter().GetValue()
					case m.GetHistogram() != nil:
						sum += float64(m.GetHistogram().GetSampleCount())
					case m.GetGauge() != nil:
						sum += m.GetGauge().GetValue()
					}
				}
			}
		}
	}
	return sum
}

func TestBuiltinPluginLoadRestartAndMetrics(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	sup, err := newSupervisor(cfg, nil, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sup.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sup.Close()

	st := statusOf(t, sup, builtin.Admission)
	if !st.Builtin || st.State != plugins.StateRunning || st.PID == 0 || st.Version != admissionplugin.Version || !st.Selected {
		t.Fatalf("status = %+v", st)
	}
	if _, err := sup.Admission(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := sup.Info(ctx, sdk.KindAdmission)
	if err != nil || info.GetName() != builtin.Admission || info.GetKind() != "admission" {
		t.Fatalf("info = %v, %v", info, err)
	}
	if _, err := sup.Usage(ctx); !errors.Is(err, plugins.ErrNotConfigured) {
		t.Fatalf("usage kind: got %v, want ErrNotConfigured", err)
	}
	waitFor(t, 5*time.Second, "plugin logs tagged with its name", func() bool {
		return strings.Contains(logs.String(), `"plugin":"admission"`) && strings.Contains(logs.String(), `"msg":"serving"`)
	})
	waitFor(t, 5*time.Second, "health checks to be counted", func() bool {
		return metricValue(t, reg, "parley_plugin_calls_total", builtin.Admission) >= 2 &&
			metricValue(t, reg, "parley_plugin_call_duration_seconds", builtin.Admission) >= 2
	})

	// Crash: the supervisor notices, restarts with a new process, counts it.
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a restart", func() bool {
		now := statusOf(t, sup, builtin.Admission)
		return now.State == plugins.StateRunning && now.PID != st.PID && now.Restarts == 1
	})
	if got := metricValue(t, reg, "parley_plugin_restarts_total", builtin.Admission); got != 1 {
		t.Fatalf("restarts metric = %v, want 1", got)
	}
	if got := metricValue(t, reg, "parley_plugin_up", builtin.Admission); got != 1 {
		t.Fatalf("up metric = %v, want 1", got)
	}
	if _, err := sup.Admission(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sup.Info(ctx, sdk.KindAdmission); err != nil {
		t.Fatalf("after restart: %v", err)
	}

	// Close stops the process.
	pid := statusOf(t, sup, builtin.Admission).PID
	sup.Close()
	waitFor(t, 5*time.Second, "the plugin to exit on Close", func() bool { return processGone(pid) })
	if _, err := sup.Admission(ctx); !errors.Is(err, plugins.ErrUnavailable) {
		t.Fatalf("after Close: %v", err)
	}
}

// copyTestBinary installs a copy of this test binary as an external plugin.
func copyTestBinary(t testing.TB, dst string) string {
	t.Helper()
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	sum, err := plugins.HashFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestExternalPlugin(t *testing.T) {
	wrong := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		sha     func(good string) string
		wantErr string
	}{
		{"pinned sha256 loads", func(good string) string { return good }, ""},
		{"wrong sha256 refused", func(string) string { return wrong }, "checksums did not match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(dir)
			good := copyTestBinary(t, filepath.Join(cfg.Dir, "policy"))
			t.Setenv(envExternal, "1")
			t.Setenv(admissionv1.PluginConfigEnv, admissionEnv(dir)[0][len(admissionv1.PluginConfigEnv)+1:])
			cfg.External = []plugins.External{{Name: "ext-policy", Kind: "admission", File: "policy", SHA256: tc.sha(good)}}
			cfg.Use = map[string]string{"admission": "ext-policy"}
			cat, err := plugins.NewCatalog(cfg, builtin.Specs(), plugins.Command{Path: "/nonexistent"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			sup, err := plugins.NewSupervisor(cfg, cat, plugins.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer sup.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = sup.Start(ctx)
			st := statusOf(t, sup, "ext-policy")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("start: got %v, want %q", err, tc.wantErr)
				}
				if st.State == plugins.StateRunning {
					t.Fatal("plugin with a wrong checksum is running")
				}
				if _, err := sup.Admission(ctx); !errors.Is(err, plugins.ErrUnavailable) {
					t.Fatalf("admission with refused plugin: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Builtin || st.State != plugins.StateRunning || st.SHA256 != good || st.Version != admissionplugin.Version {
				t.Fatalf("status = %+v", st)
			}
			cl, err := sup.Admission(ctx)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := cl.Acquire(ctx, &admissionv1.AcquireRequest{AccountSid: "AC1", Resource: "api", MinCount: 1, MaxCount: 1, TtlMs: 1000})
			if err != nil || !resp.GetGranted() {
				t.Fatalf("acquire through external plugin: %v %v", resp, err)
			}
			// The built-in is listed but not running.
			if b := statusOf(t, sup, builtin.Admission); !b.Builtin || b.Selected || b.State != plugins.StateStopped {
				t.Fatalf("built-in status = %+v", b)
			}
		})
	}
}

// A plugin built against an older plugin protocol is refused at the
// handshake with an error that says what to do.
func TestProtocol1PluginRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	sum := copyTestBinary(t, filepath.Join(cfg.Dir, "old"))
	t.Setenv(envExternal, "v1")
	cfg.External = []plugins.External{{Name: "old", Kind: "admission", File: "old", SHA256: sum}}
	cfg.Use = map[string]string{"admission": "old"}
	cat, err := plugins.NewCatalog(cfg, nil, plugins.Command{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := plugins.NewSupervisor(cfg, cat, plugins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = sup.Start(ctx)
	want := fmt.Sprintf("this Parley speaks plugin protocol %d: rebuild the plugin against the current plugins/sdk", sdk.ProtocolVersion)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Plugin version: 1") {
		t.Fatalf("start: got %v, want %q", err, want)
	}
	waitFor(t, 5*time.Second, "the refusal in the plugin's status", func() bool {
		st := statusOf(t, sup, "old")
		return st.State != plugins.StateRunning && strings.Contains(st.LastError, want)
	})
}

func TestResolveInDir(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "plugins")
	outside := filepath.Join(root, "outside")
	for _, d := range []string{dir, outside, filepath.Join(dir, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string, mode os.FileMode) {
		if err := os.WriteFile(p, []byte("#!/bin/true\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "ok"), 0o755)
	write(filepath.Join(dir, "sub", "nested"), 0o755)
	write(filepath.Join(dir, "noexec"), 0o644)
	write(filepath.Join(outside, "evil"), 0o755)
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	link(filepath.Join(outside, "evil"), "escape-abs")
	link("../outside/evil", "escape-rel")
	link("ok", "inside-link")
	link(outside, "outdir")

	tests := []struct {
		file    string
		wantErr error
		errText string
	}{
		{file: "ok"},
		{file: "sub/nested"},
		{file: "inside-link"},
		{file: "escape-abs", wantErr: plugins.ErrOutsideDir},
		{file: "escape-rel", wantErr: plugins.ErrOutsideDir},
		{file: "outdir/evil", wantErr: plugins.ErrOutsideDir},
		{file: "../outside/evil", wantErr: plugins.ErrOutsideDir},
		{file: filepath.Join(outside, "evil"), wantErr: plugins.ErrOutsideDir},
		{file: "noexec", errText: "not executable"},
		{file: "sub", errText: "not a regular file"},
		{file: "missing", errText: "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got, err := plugins.ResolveInDir(dir, tc.file)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %q, %v; want %v", got, err, tc.wantErr)
				}
			case tc.errText != "":
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("got %q, %v; want error containing %q", got, err, tc.errText)
				}
			default:
				if err != nil || !strings.HasPrefix(got, dir) && !strings.Contains(got, "plugins") {
					t.Fatalf("got %q, %v", got, err)
				}
			}
		})
	}
}

func TestCatalogRefusesBadConfig(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "plugins")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "evil"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "evil"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "good"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	sha := strings.Repeat("0", 64)
	tests := []struct {
		name    string
		mutate  func(*plugins.Config)
		errText string
	}{
		{"symlink escaping the dir", func(c *plugins.Config) {
			c.External = []plugins.External{{Name: "x", Kind: "admission", File: "link", SHA256: sha}}
		}, "outside the plugin directory"},
		{"file outside by path", func(c *plugins.Config) {
			c.External = []plugins.External{{Name: "x", Kind: "admission", File: "../evil", SHA256: sha}}
		}, "inside plugins.dir"},
		{"bad sha256", func(c *plugins.Config) {
			c.External = []plugins.External{{Name: "x", Kind: "admission", File: "good", SHA256: "abc"}}
		}, "64 hex digits"},
		{"unknown kind", func(c *plugins.Config) {
			c.External = []plugins.External{{Name: "x", Kind: "billing", File: "good", SHA256: sha}}
		}, "unknown kind"},
		{"name clash with built-in", func(c *plugins.Config) {
			c.External = []plugins.External{{Name: "admission", Kind: "admission", File: "good", SHA256: sha}}
		}, "taken by a built-in"},
		{"use of an unknown plugin", func(c *plugins.Config) { c.Use["admission"] = "nope" }, "unknown plugin"},
		{"use with the wrong kind", func(c *plugins.Config) {
			c.External = []plugins.External{{Name: "x", Kind: "usage", File: "good", SHA256: sha}}
			c.Use["admission"] = "x"
		}, "is of kind usage"},
		{"bad on_failure", func(c *plugins.Config) { c.OnFailure["admission"] = "maybe" }, "neither open nor closed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := plugins.DefaultConfig()
			cfg.Dir = dir
			tc.mutate(&cfg)
			_, err := plugins.NewCatalog(cfg, builtin.Specs(), plugins.Command{}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.errText) {
				t.Fatalf("got %v, want error containing %q", err, tc.errText)
			}
		})
	}
}

func TestHashFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := plugins.HashFile(p)
	if err != nil || got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashFile = %q, %v", got, err)
	}
	if _, err := plugins.HashFile(p + ".missing"); err == nil {
		t.Fatal("missing file hashed")
	}
}

// The host is SIGKILLed: no plugin process may remain.
func TestHostKilledLeavesNoPlugin(t *testing.T) {
	dir := t.TempDir()
	host := exec.Command(os.Args[0])
	host.Env = append(os.Environ(), envHostDir+"="+dir)
	stdout, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	host.Stderr = os.Stderr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer host.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading plugin pid from host: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "PLUGIN_PID=")))
	if err != nil || pid <= 0 {
		t.Fatalf("host said %q", line)
	}
	if processGone(pid) {
		t.Fatalf("plugin %d not running before the host is killed", pid)
	}
	if err := host.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = host.Wait()
	waitFor(t, 5*time.Second, fmt.Sprintf("plugin %d to die with its host", pid), func() bool { return processGone(pid) })
}

func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	st := string(b)
	f := strings.Fields(st[strings.LastIndexByte(st, ')')+1:])
	return len(f) > 0 && f[0] == "Z" // exited, not yet reaped
}

func TestProbeListsBuiltinAndExternal(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	good := copyTestBinary(t, filepath.Join(cfg.Dir, "policy"))
	copyTestBinary(t, filepath.Join(cfg.Dir, "tampered"))
	t.Setenv(envExternal, "1")
	t.Setenv(admissionv1.PluginConfigEnv, admissionEnv(dir)[0][len(admissionv1.PluginConfigEnv)+1:])
	cfg.External = []plugins.External{
		{Name: "ext-ok", Kind: "admission", File: "policy", SHA256: good},
		{Name: "ext-bad", Kind: "admission", File: "tampered", SHA256: strings.Repeat("cd", 32)},
	}
	cat, err := plugins.NewCatalog(cfg, builtin.Specs(),
		plugins.Command{Path: os.Args[0], Args: []string{"plugin", "serve"}},
		map[string][]string{builtin.Admission: admissionEnv(dir), builtin.Usage: usageEnv(dir), builtin.Partners: partnersEnv(dir)})
	if err != nil {
		t.Fatal(err)
	}
	list, err := plugins.Probe(context.Background(), cfg, cat, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		builtin bool
		ok      bool
	}{"admission": {true, true}, "usage": {true, true}, "partners": {true, true}, "ext-ok": {false, true}, "ext-bad": {false, false}}
	if len(list) != len(want) {
		t.Fatalf("listed %d plugins: %+v", len(list), list)
	}
	for _, st := range list {
		w := want[st.Name]
		if st.Builtin != w.builtin || (st.State == plugins.StateRunning) != w.ok {
			t.Errorf("%s: %+v", st.Name, st)
		}
		if w.ok && (st.Version != admissionplugin.Version || st.PID == 0) {
			t.Errorf("%s: version %q pid %d", st.Name, st.Version, st.PID)
		}
		if !w.ok && !strings.Contains(st.LastError, "checksum") {
			t.Errorf("%s: last error %q", st.Name, st.LastError)
		}
		if st.PID != 0 {
			waitFor(t, 5*time.Second, "probe process to exit", func() bool { return processGone(st.PID) })
		}
	}
}

// The runtime launches every kind and checks its Info: a plugin must serve
// the kind it is declared as.
func TestExternalKinds(t *testing.T) {
	tests := []struct {
		serve, declared string
		version         string
		ok              bool
	}{
		{"usage", "usage", "0.0.1", true},
		{"partners", "partners", "0.0.2", true},
		{"usage", "partners", "", false}, // serves usage, declared partners: refused
	}
	for _, tc := range tests {
		t.Run(tc.serve+" as "+tc.declared, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(dir)
			sum := copyTestBinary(t, filepath.Join(cfg.Dir, "p"))
			t.Setenv(envExternal, tc.serve)
			cfg.External = []plugins.External{{Name: "p", Kind: tc.declared, File: "p", SHA256: sum}}
			cfg.Use = map[string]string{tc.declared: "p"}
			cat, err := plugins.NewCatalog(cfg, nil, plugins.Command{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			sup, err := plugins.NewSupervisor(cfg, cat, plugins.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer sup.Close()
			ctx := context.Background()
			err = sup.Start(ctx)
			if !tc.ok {
				if err == nil {
					t.Fatal("a plugin serving the wrong kind was accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st := statusOf(t, sup, "p"); st.Version != tc.version || st.State != plugins.StateRunning {
				t.Fatalf("status %+v", st)
			}
			switch tc.declared {
			case "usage":
				if _, err := sup.Usage(ctx); err != nil {
					t.Fatal(err)
				}
				if info, err := sup.Info(ctx, sdk.KindUsage); err != nil || info.GetKind() != "usage" {
					t.Fatal(info, err)
				}
			case "partners":
				if _, err := sup.Partners(ctx); err != nil {
					t.Fatal(err)
				}
				if info, err := sup.Info(ctx, sdk.KindPartners); err != nil || info.GetKind() != "partners" {
					t.Fatal(info, err)
				}
			}
		})
	}
}

// Every call gets the configured deadline; a plugin that stops answering
// health checks is restarted.
func TestCallDeadlineAndHealthRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.CallTimeout = 200 * time.Millisecond
	sum := copyTestBinary(t, filepath.Join(cfg.Dir, "slow"))
	hang := filepath.Join(dir, "hang")
	t.Setenv(envExternal, "slow")
	t.Setenv(envHangFile, hang)
	cfg.External = []plugins.External{{Name: "slow", Kind: "admission", File: "slow", SHA256: sum}}
	cfg.Use = map[string]string{"admission": "slow"}
	cat, err := plugins.NewCatalog(cfg, nil, plugins.Command{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	sup, err := plugins.NewSupervisor(cfg, cat, plugins.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Close()
	ctx := context.Background()
	if err := sup.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := sup.Admission(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	_, err = cl.Acquire(ctx, &admissionv1.AcquireRequest{AccountSid: "AC1", Resource: "api"}) // no deadline of its own
	if el := time.Since(t0); err == nil || el > 2*time.Second {
		t.Fatalf("slow call: %v after %s, want a deadline error after ~200ms", err, el)
	}
	if got := metricValue(t, reg, "parley_plugin_call_errors_total", "slow"); got < 1 {
		t.Fatalf("errors metric = %v", got)
	}

	before := statusOf(t, sup, "slow")
	if err := os.WriteFile(hang, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the hung plugin to be replaced", func() bool {
		st := statusOf(t, sup, "slow")
		return st.Restarts > before.Restarts
	})
	// The process never exited: only failed health checks (or, on the next
	// attempt, the Info check at start) can have brought it down.
	if st := statusOf(t, sup, "slow"); !strings.Contains(st.LastError, "health check") && !strings.Contains(st.LastError, "info:") {
		t.Fatalf("last error %q", st.LastError)
	}
	if err := os.Remove(hang); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the restarted plugin to run", func() bool {
		return statusOf(t, sup, "slow").State == plugins.StateRunning
	})
	if processGone(before.PID) == false {
		t.Fatalf("hung plugin %d still running after its replacement", before.PID)
	}
}
