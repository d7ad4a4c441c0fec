package admission_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/admission"
)

const accountHeader = "X-Test-Account"

func accountFromHeader(r *http.Request) (string, bool) {
	a := r.Header.Get(accountHeader)
	return a, a != ""
}

// Concurrent REST requests over the limit get 429 with Retry-After and the
// concurrency headers, and the handler never runs more than limit at once.
func TestMiddlewareConcurrentRequests(t *testing.T) {
	e := start(t, setup{admission: func(c *admission.Config) { c.Block = 2 }})
	ctx := context.Background()
	const limit = 5
	a := acct()
	if _, err := e.client.SetLimit(ctx, a, admission.ResourceAPI, limit); err != nil {
		t.Fatal(err)
	}
	var inFlight, peak atomic.Int64
	h := admission.Middleware(e.client, accountFromHeader, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		if n > limit {
			t.Errorf("%d requests in the handler, limit %d", n, limit)
		}
		time.Sleep(2 * time.Millisecond)
		w.Write([]byte(`{}`))
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	var ok, tooMany atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				req, _ := http.NewRequest("GET", srv.URL, nil)
				req.Header.Set(accountHeader, a)
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusTooManyRequests:
					tooMany.Add(1)
					if resp.Header.Get("Retry-After") == "" ||
						resp.Header.Get(admission.HeaderConcurrencyLimit) != strconv.Itoa(limit) ||
						resp.Header.Get(admission.HeaderConcurrentRequests) != strconv.Itoa(limit) {
						t.Errorf("429 headers: %v", resp.Header)
					}
					var e struct{ Status int }
					if json.Unmarshal(body, &e) != nil || e.Status != 429 {
						t.Errorf("429 body %s", body)
					}
				default:
					t.Errorf("status %d: %s", resp.StatusCode, body)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("200: %d, 429: %d, peak %d", ok.Load(), tooMany.Load(), peak.Load())
	if tooMany.Load() == 0 || ok.Load() == 0 || peak.Load() > limit {
		t.Fatalf("200=%d 429=%d peak=%d", ok.Load(), tooMany.Load(), peak.Load())
	}
}

func TestWriteDenial(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		code       int
		retry      string
		hasHeaders bool
	}{
		{"over limit", &admission.Denial{Resource: admission.ResourceAPI, Current: 3, Limit: 3, Wait: 1500 * time.Millisecond}, 429, "2", true},
		{"sub-second retry rounds up", &admission.Denial{Resource: admission.ResourceAPI, Current: 1, Limit: 1, Wait: time.Millisecond}, 429, "1", true},
		{"unavailable", &admission.Denial{Resource: admission.ResourceAPI, Unavailable: true, Wait: time.Second}, 503, "1", false},
		{"other error", errors.New("boom"), 500, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			admission.WriteDenial(rec, tc.err)
			if rec.Code != tc.code || rec.Header().Get("Retry-After") != tc.retry ||
				(rec.Header().Get(admission.HeaderConcurrencyLimit) != "") != tc.hasHeaders {
				t.Fatalf("code %d headers %v", rec.Code, rec.Header())
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("body %q", rec.Body)
			}
		})
	}
}

// BenchmarkREST compares a small REST-like handler over loopback HTTP with
// and without the admission middleware (real plugin subprocess behind it),
// 8 concurrent keep-alive clients over 64 accounts.
func BenchmarkREST(b *testing.B) {
	e := start(b, setup{})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"sid": r.Header.Get(accountHeader), "status": "active", "friendly_name": "bench"})
	})
	accounts := make([]string, 64)
	for i := range accounts {
		accounts[i] = acct()
	}
	results := map[string][3]float64{}
	for _, mode := range []string{"off", "on"} {
		var h http.Handler = handler
		if mode == "on" {
			h = admission.Middleware(e.client, accountFromHeader, handler)
		}
		srv := httptest.NewServer(h)
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		client := &http.Client{Transport: tr}
		b.Run(mode, func(b *testing.B) {
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
					req, _ := http.NewRequest("GET", srv.URL+"/2010-04-01/Accounts/x.json", nil)
					req.Header.Set(accountHeader, accounts[i%len(accounts)])
					i++
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					local = append(local, time.Since(t0))
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
				mu.Lock()
				all = append(all, local...)
				mu.Unlock()
			})
			el := time.Since(begin)
			sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
			if len(all) == 0 {
				return
			}
			rps := float64(len(all)) / el.Seconds()
			p50 := float64(all[len(all)/2].Nanoseconds())
			p99 := float64(all[int(0.99*float64(len(all)-1))].Nanoseconds())
			b.ReportMetric(rps, "req/s")
			b.ReportMetric(p50, "p50-ns")
			b.ReportMetric(p99, "p99-ns")
			results[mode] = [3]float64{rps, p50, p99}
		})
		srv.Close()
		tr.CloseIdleConnections()
	}
	off, on := results["off"], results["on"]
	if off[0] > 0 && on[0] > 0 {
		fmt.Printf("REST with admission: %.1f%% of the throughput without (%.0f vs %.0f req/s); p50 %+.0f µs, p99 %+.0f µs\n",
			100*on[0]/off[0], on[0], off[0], (on[1]-off[1])/1e3, (on[2]-off[2])/1e3)
	}
}
