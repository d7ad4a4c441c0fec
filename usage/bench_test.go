package usage_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/usage"
)

// BenchmarkIngest measures sustained ingestion end to end: Publish → queue →
// batches over the gRPC stream → plugin subprocess → SQLite commit. b.N events
// over 100 accounts × 4 categories; the clock stops when the plugin has
// acknowledged every one (sent from the queue or replayed from the spool).
// Run with e.g. -benchtime=300000x.
// "queue=default" lets the 64k queue overflow into the spool (the producer is
// far faster than the plugin); "queue=1M" keeps everything in memory.
func BenchmarkIngest(b *testing.B) {
	for _, q := range []int{0, 1 << 20} {
		name := "queue=default"
		if q > 0 {
			name = "queue=1M"
		}
		b.Run(name, func(b *testing.B) {
			cfg := usage.DefaultConfig()
			if q > 0 {
				cfg.QueueSize = q
			}
			benchIngest(b, cfg)
		})
	}
}

func benchIngest(b *testing.B, cfg usage.Config) {
	h := startHost(b, b.TempDir(), cfg, false)
	cats := []string{usage.Calls, usage.APIRequests, usage.Messages, usage.SIPRegistrations}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		_ = h.pub.Publish(usage.Event{AccountSid: fmt.Sprintf("AC%032d", i%100), Category: cats[i%len(cats)], Count: 1, Usage: 1})
	}
	publishDone := time.Since(start)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		st := h.pub.Stats()
		if st.Sent+st.Replayed >= int64(b.N) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("not all events acknowledged: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	st := h.pub.Stats()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/publishDone.Seconds(), "publish/s")
	b.ReportMetric(float64(st.Spooled), "spooled")
	b.ReportMetric(float64(st.Dropped), "dropped")
}

// BenchmarkTriggerLatency measures the time from publishing the event that
// crosses a trigger to the signed callback arriving at an HTTP receiver, with
// the ingestion path idle and under a background load of ~20 000 events/s.
func BenchmarkTriggerLatency(b *testing.B) {
	for _, load := range []int{0, 20000} {
		b.Run(fmt.Sprintf("load=%d/s", load), func(b *testing.B) {
			cfg := usage.DefaultConfig()
			h := startHost(b, b.TempDir(), cfg, true)
			rcv := newReceiver(b)
			arrived := sync.Map{} // trigger sid → chan time.Time
			go func() {
				for cb := range rcv.notify {
					if ch, ok := arrived.Load(cb.params["UsageTriggerSid"]); ok {
						ch.(chan time.Time) <- cb.received
					}
				}
			}()
			stop := make(chan struct{})
			var bg sync.WaitGroup
			var bgN atomic.Int64
			if load > 0 {
				bg.Add(1)
				go func() {
					defer bg.Done()
					t := time.NewTicker(10 * time.Millisecond)
					defer t.Stop()
					for {
						select {
						case <-stop:
							return
						case <-t.C:
						}
						for range load / 100 {
							n := bgN.Add(1)
							_ = h.pub.Publish(usage.Event{AccountSid: fmt.Sprintf("ACbg%030d", n%50), Category: usage.APIRequests, Count: 1})
						}
					}
				}()
			}
			ctx := context.Background()
			var lat []time.Duration
			b.ResetTimer()
			for i := range b.N {
				account := fmt.Sprintf("AC%032d", i)
				tr, err := h.cli.CreateTrigger(ctx, usage.Trigger{AccountSid: account, UsageCategory: usage.Calls, TriggerValue: "1", TriggerBy: "count", CallbackURL: rcv.srv.URL + "/cb"})
				if err != nil {
					b.Fatal(err)
				}
				ch := make(chan time.Time, 1)
				arrived.Store(tr.Sid, ch)
				t0 := time.Now()
				_ = h.pub.Publish(usage.Event{AccountSid: account, Category: usage.Calls, Count: 1})
				select {
				case at := <-ch:
					lat = append(lat, at.Sub(t0))
				case <-time.After(10 * time.Second):
					b.Fatalf("callback %d not received", i)
				}
			}
			b.StopTimer()
			close(stop)
			bg.Wait()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
			if st := h.pub.Stats(); st.Dropped != 0 {
				b.Fatalf("dropped %d", st.Dropped)
			}
		})
	}
}
