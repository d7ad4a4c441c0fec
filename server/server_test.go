package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/plugins/builtin"
	"github.com/parleyhq/parley/server/api"
	"github.com/parleyhq/parley/server/config"
	"github.com/parleyhq/parley/store"
)

// The server starts built-in plugins by re-executing its binary as
// `<binary> plugin serve <name>`; in tests the binary is this test binary.
func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == "plugin" && os.Args[2] == "serve" {
		if err := builtin.Serve(context.Background(), os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func testConfig(t testing.TB) config.Config {
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Plugins.Dir = filepath.Join(cfg.DataDir, "plugins")
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.SIP.UDP, cfg.SIP.TCP, cfg.SIP.TLS, cfg.SIP.WS, cfg.SIP.WSS = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Media = config.Media{Address: "127.0.0.1", RTPPortMin: 41000, RTPPortMax: 41999}
	cfg.ShutdownTimeout = 5 * time.Second
	// The tests' applications are httptest servers on loopback, which the
	// egress policy refuses by default: allow it as a same-host operator would.
	cfg.Webhooks.AllowNetworks = []string{"127.0.0.0/8", "::1/128"}
	return cfg
}

// started runs a server until the test ends and returns its base URL.
func started(t testing.TB, cfg config.Config) (*Server, string) {
	t.Helper()
	s, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(l Listening) { addr <- l.HTTP }) }()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("server stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("server did not start")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s, base
}

func waitReady(t testing.TB, base string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("server not ready within 20s")
}

func TestReadyAndControlSocket(t *testing.T) {
	cfg := testConfig(t)
	cfg.Plugins.OnFailure["admission"] = "closed" // then readiness waits for the plugin
	s, base := started(t, cfg)
	waitReady(t, base)
	acct, err := s.Store().CreateAccount(context.Background(), store.NewAccount{})
	if err != nil {
		t.Fatal(err)
	}
	cc := NewControlClient(cfg.DataDir)
	if _, err := cc.SetLimit(context.Background(), acct.Sid, admission.ResourceCalls, 3); err != nil {
		t.Fatal(err)
	}
	ls, err := cc.Limits(context.Background(), acct.Sid)
	if err != nil {
		t.Fatal(err)
	}
	got := map[admission.Resource]int64{}
	for _, l := range ls {
		got[l.Resource] = l.Limit
	}
	if got[admission.ResourceCalls] != 3 || got[admission.ResourceAPI] != cfg.Admission.Defaults[admission.ResourceAPI] {
		t.Fatalf("limits %v", got)
	}
	if _, err := cc.SetLimit(context.Background(), acct.Sid, "bogus", 3); err == nil {
		t.Fatal("bogus resource accepted")
	}
	st, err := os.Stat(ControlSocket(cfg.DataDir))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("control socket mode %v, %v", st.Mode(), err)
	}
	// The lock keeps a second server off the data directory.
	if _, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), "test"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second server: %v", err)
	}
}

// BenchmarkRESTAdmission measures Parley's own REST API (Basic auth against
// SQLite, account fetch) over loopback with and without admission through
// the real plugin, in the same run, with the whole server running beside
// it: 8 concurrent keep-alive clients over 64 accounts.
func BenchmarkRESTAdmission(b *testing.B) {
	cfg := testConfig(b)
	s, base := started(b, cfg)
	waitReady(b, base)
	type cred struct{ sid, token string }
	creds := make([]cred, 64)
	for i := range creds {
		a, err := s.Store().CreateAccount(context.Background(), store.NewAccount{})
		if err != nil {
			b.Fatal(err)
		}
		creds[i] = cred{a.Sid, a.AuthToken}
	}
	// Both sides are the same API with the same options (usage events
	// included) but for admission, so the difference is admission's cost.
	opts := api.Options{Events: s.usage}
	off := httptest.NewServer(api.New(s.Store(), opts))
	defer off.Close()
	opts.Admission = s.admission
	on := httptest.NewServer(api.New(s.Store(), opts))
	defer on.Close()
	results := map[string][3]float64{}
	for _, mode := range []struct{ name, base string }{{"off", off.URL}, {"on", on.URL}} {
		b.Run(mode.name, func(b *testing.B) {
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			var mu sync.Mutex
			var all []time.Duration
			var n atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			begin := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var local []time.Duration
				i := int(n.Add(1))
				for pb.Next() {
					c := creds[i%len(creds)]
					i++
					req, _ := http.NewRequest("GET", mode.base+"/2010-04-01/Accounts/"+c.sid+".json", nil)
					req.SetBasicAuth(c.sid, c.token)
					t0 := time.Now()
					res, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					local = append(local, time.Since(t0))
					if res.StatusCode != 200 {
						b.Errorf("status %d", res.StatusCode)
						return
					}
				}
				mu.Lock()
				all = append(all, local...)
				mu.Unlock()
			})
			el := time.Since(begin)
			if len(all) == 0 {
				return
			}
			sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
			r := [3]float64{float64(len(all)) / el.Seconds(), float64(all[len(all)/2].Microseconds()), float64(all[len(all)*99/100].Microseconds())}
			b.ReportMetric(r[0], "req/s")
			b.ReportMetric(r[1], "p50-µs")
			b.ReportMetric(r[2], "p99-µs")
			results[mode.name] = r
		})
	}
	if off, on := results["off"], results["on"]; off[0] > 0 && on[0] > 0 {
		fmt.Printf("Parley REST with admission: %.1f%% of the throughput without (%.0f vs %.0f req/s); p50 %+.0f µs, p99 %+.0f µs\n",
			100*on[0]/off[0], on[0], off[0], on[1]-off[1], on[2]-off[2])
	}
}
