package usage_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	twclient "github.com/twilio/twilio-go/client"

	"github.com/parleyhq/parley/internal/webhook"
	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/plugins/builtin"
	"github.com/parleyhq/parley/plugins/sdk"
	"github.com/parleyhq/parley/usage"
)

// loopbackEgress lets webhooks reach the tests' httptest applications on
// loopback (webhooks.allow_networks); the default egress policy refuses them.
var loopbackEgress = webhook.NewPolicy(webhook.PolicyOptions{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})

// TestMain doubles as the plugin process: the supervisor re-executes this
// test binary as `<test binary> plugin serve usage` (go-plugin's
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

const (
	acct  = "AC0123456789abcdef0123456789abcdef"
	token = "auth-token-of-the-account"
)

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testConfig() usage.Config {
	cfg := usage.DefaultConfig()
	cfg.Plugin.BackoffMin, cfg.Plugin.BackoffMax, cfg.Plugin.MaxAttempts = 50*time.Millisecond, 200*time.Millisecond, 1000
	cfg.RetryInterval = 100 * time.Millisecond
	cfg.ClaimWait = 300 * time.Millisecond
	cfg.Lease = 3 * time.Second
	cfg.CallbackTimeout = 2 * time.Second
	cfg.Holder = "host-a"
	return cfg
}

// host is one Parley host: a supervisor running the real usage plugin as a
// subprocess, a publisher, a client and (optionally) a deliverer, all on dir.
type host struct {
	dir  string
	cfg  usage.Config
	sup  *plugins.Supervisor
	pub  *usage.Publisher
	cli  *usage.Client
	del  *usage.Deliverer
	acts *actions
}

func startHost(t testing.TB, dir string, cfg usage.Config, deliver bool) *host {
	t.Helper()
	h := &host{dir: dir, cfg: cfg, acts: &actions{}}
	pcfg := plugins.DefaultConfig()
	pcfg.Dir = filepath.Join(dir, "plugins")
	pcfg.Use[string(sdk.KindUsage)] = builtin.Usage
	pcfg.HealthInterval = 200 * time.Millisecond
	pcfg.RestartBackoff = 50 * time.Millisecond
	pcfg.RestartBackoffMax = 400 * time.Millisecond
	pcfg.CallTimeout = 2 * time.Second
	penv, err := cfg.Plugin.PluginEnv(filepath.Join(dir, "usage.db"))
	if err != nil {
		t.Fatal(err)
	}
	delete(pcfg.Use, string(sdk.KindAdmission))
	cat, err := plugins.NewCatalog(pcfg, builtin.Specs(), plugins.Command{Path: os.Args[0], Args: []string{"plugin", "serve"}},
		map[string][]string{builtin.Usage: penv})
	if err != nil {
		t.Fatal(err)
	}
	h.sup, err = plugins.NewSupervisor(pcfg, cat, plugins.Options{Logger: testLogger(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.sup.Start(ctx); err != nil {
		h.sup.Close()
		t.Fatalf("start supervisor: %v", err)
	}
	h.pub, err = usage.NewPublisher(h.sup, cfg, usage.PublisherOptions{SpoolDir: filepath.Join(dir, "usage-spool"), Logger: testLogger(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	h.pub.Start()
	h.cli = usage.NewClient(h.sup, 5*time.Second)
	if deliver {
		h.startDeliverer(t)
	}
	t.Cleanup(h.close)
	return h
}

func (h *host) startDeliverer(t testing.TB) {
	t.Helper()
	var err error
	h.del, err = usage.NewDeliverer(h.sup, h.cfg, usage.DelivererOptions{
		Accounts: accounts{"ACgone": ""}, Actions: h.acts, Logger: testLogger(), Registerer: prometheus.NewRegistry(),
		Webhook: &webhook.Client{Timeout: time.Second, Policy: loopbackEgress},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.del.Start()
}

func (h *host) close() {
	if h.del != nil {
		h.del.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = h.pub.Close(ctx)
	_ = h.sup.Close()
}

func (h *host) pid(t testing.TB) int {
	t.Helper()
	for _, st := range h.sup.Status() {
		if st.Name == builtin.Usage && st.State == plugins.StateRunning {
			return st.PID
		}
	}
	return 0
}

// allTime is the all-time count of a category, or -1 while the plugin is down.
func (h *host) allTime(category string) int64 {
	recs, err := h.cli.Records(context.Background(), usage.RecordsQuery{AccountSid: acct, Category: category, Granularity: "alltime"})
	if err != nil || len(recs) != 1 {
		return -1
	}
	return recs[0].Count
}

// accounts gives every account the same auth token except the ones in
// unknown, which do not exist.
type accounts map[string]string

func (a accounts) AuthToken(_ context.Context, sid string) (string, error) {
	if _, gone := a[sid]; gone {
		return "", fmt.Errorf("account %s: not found", sid)
	}
	return token, nil
}

// actions records the trigger actions the deliverer carried out.
type actions struct {
	mu        sync.Mutex
	suspended []string
	limits    []string
}

func (a *actions) SuspendAccount(_ context.Context, sid string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.suspended = append(a.suspended, sid)
	return nil
}

func (a *actions) LimitAdmission(_ context.Context, sid, resource string, limit int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.limits = append(a.limits, fmt.Sprintf("%s %s %d", sid, resource, limit))
	return nil
}

// callback is one request the receiver got.
type callback struct {
	params   map[string]string
	valid    bool // the X-Twilio-Signature verified with the helper library's validator
	received time.Time
}

// receiver is a callback endpoint that answers status() (200 by default)
// and checks every signature independently with twilio-go's validator.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []callback
	// status answers each request; nil: 200.
	status func(n int) int
	notify chan callback
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{notify: make(chan callback, 10000)}
	v := twclient.NewRequestValidator(token)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := req.ParseForm(); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		p := map[string]string{}
		for k := range req.PostForm {
			p[k] = req.PostForm.Get(k)
		}
		fullURL := "http://" + req.Host + req.URL.RequestURI()
		c := callback{params: p, valid: v.Validate(fullURL, p, req.Header.Get("X-Twilio-Signature")), received: time.Now()}
		if req.Method == http.MethodGet {
			for k := range req.URL.Query() {
				c.params[k] = req.URL.Query().Get(k)
			}
			c.valid = v.Validate(fullURL, map[string]string{}, req.Header.Get("X-Twilio-Signature"))
		}
		r.mu.Lock()
		n := len(r.got)
		r.got = append(r.got, c)
		st := 200
		if r.status != nil {
			st = r.status(n)
		}
		r.mu.Unlock()
		w.WriteHeader(st)
		if st == 200 {
			r.notify <- c
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) all() []callback {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]callback(nil), r.got...)
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

func publishN(t testing.TB, p *usage.Publisher, category string, n int, prefix string) {
	t.Helper()
	for i := range n {
		if err := p.Publish(usage.Event{ID: fmt.Sprintf("%s-%d", prefix, i), AccountSid: acct, Category: category, Count: 1, Usage: 1}); err != nil {
			t.Fatal(err)
		}
	}
}
