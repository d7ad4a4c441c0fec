package admission_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/admission"
	admissionv1 "github.com/parleyhq/parley/plugins/proto/admission/v1"
)

// reportLatency records decisions/s and p50/p99 of the given samples.
func reportLatency(b *testing.B, samples []time.Duration, elapsed time.Duration) {
	if len(samples) == 0 {
		return
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	p := func(q float64) float64 { return float64(samples[int(q*float64(len(samples)-1))].Nanoseconds()) }
	b.ReportMetric(float64(len(samples))/elapsed.Seconds(), "decisions/s")
	b.ReportMetric(p(0.50), "p50-ns")
	b.ReportMetric(p(0.99), "p99-ns")
}

// BenchmarkAdmission measures one admission decision (Acquire; the release
// is outside the timed sample) through the real plugin subprocess:
//
//   - client-serial: the host client's leased-block fast path, one goroutine
//   - client-parallel: the same from GOMAXPROCS*4 goroutines, 64 accounts
//   - plugin-rpc: a bare Acquire RPC per decision (what every request would
//     cost without the fast path)
//   - calls-cps: the rate resource, which asks the plugin every time
func BenchmarkAdmission(b *testing.B) {
	e := start(b, setup{admission: func(c *admission.Config) {
		c.Defaults = map[admission.Resource]int64{admission.ResourceAPI: 1000, admission.ResourceCallsCPS: -1}
	}})
	ctx := context.Background()
	a := acct()

	b.Run("client-serial", func(b *testing.B) {
		samples := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		begin := time.Now()
		for range b.N {
			t0 := time.Now()
			rel, err := e.client.Acquire(ctx, a, admission.ResourceAPI)
			samples = append(samples, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
			rel()
		}
		reportLatency(b, samples, time.Since(begin))
	})

	b.Run("client-parallel", func(b *testing.B) {
		accounts := make([]string, 64)
		for i := range accounts {
			accounts[i] = acct()
		}
		var mu sync.Mutex
		var all []time.Duration
		var n int
		b.SetParallelism(4)
		b.ResetTimer()
		begin := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			mu.Lock()
			acc := accounts[n%len(accounts)]
			n++
			mu.Unlock()
			var local []time.Duration
			for pb.Next() {
				t0 := time.Now()
				rel, err := e.client.Acquire(ctx, acc, admission.ResourceAPI)
				local = append(local, time.Since(t0))
				if err != nil {
					b.Error(err)
					return
				}
				rel()
			}
			mu.Lock()
			all = append(all, local...)
			mu.Unlock()
		})
		reportLatency(b, all, time.Since(begin))
	})

	b.Run("plugin-rpc", func(b *testing.B) {
		cl, err := e.sup.Admission(ctx)
		if err != nil {
			b.Fatal(err)
		}
		samples := make([]time.Duration, 0, b.N)
		var elapsed time.Duration
		b.ResetTimer()
		for range b.N {
			t0 := time.Now()
			resp, err := cl.Acquire(ctx, &admissionv1.AcquireRequest{AccountSid: a, Resource: "messages", Holder: "bench", MinCount: 1, MaxCount: 1, TtlMs: 10000})
			d := time.Since(t0)
			samples = append(samples, d)
			elapsed += d
			if err != nil || !resp.GetGranted() {
				b.Fatal(err, resp)
			}
			if _, err := cl.Release(ctx, &admissionv1.ReleaseRequest{LeaseId: resp.GetLeaseId()}); err != nil {
				b.Fatal(err)
			}
		}
		reportLatency(b, samples, elapsed)
	})

	b.Run("calls-cps", func(b *testing.B) {
		samples := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		begin := time.Now()
		for range b.N {
			t0 := time.Now()
			_, err := e.client.Acquire(ctx, a, admission.ResourceCallsCPS)
			samples = append(samples, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
		}
		reportLatency(b, samples, time.Since(begin))
	})
}
