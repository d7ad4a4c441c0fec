package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleyhq/parley/presence"
)

// BenchmarkSaveBindings is the registrar's write-behind under REGISTER load:
// 100 000 identities are registered, then every op refreshes a batch of 1 000
// of them (new Call-ID, CSeq and expiry), as one flush of presence.Memory
// does, either spread over the table ("random", as real devices refresh) or
// in key order ("sequential", as SIPp's numbered users do). It reports the
// cost per binding written, compactions included.
//
//	go test ./store -run '^$' -bench SaveBindings -benchtime 50x
func BenchmarkSaveBindings(b *testing.B) {
	const users, batch = 100_000, 1_000
	for _, order := range []struct {
		name string
		pick func(n, j int) int
	}{
		{"random", func(n, j int) int { return (n*7919 + j*101) % users }},
		{"sequential", func(n, j int) int { return (n*batch + j) % users }},
	} {
		b.Run(order.name, func(b *testing.B) {
			ctx := context.Background()
			st, err := Open(ctx, filepath.Join(b.TempDir(), "parley.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			now := time.Now()
			binding := func(i, gen int) presence.Binding {
				u := fmt.Sprintf("u%06d", i)
				c := "sip:" + u + "@127.0.0.1:15080"
				return presence.Binding{AccountSid: "AC0123456789abcdef0123456789abcdef", Identity: "sip:" + u + "@bench.test", Key: c, Contact: c,
					CallID: fmt.Sprintf("%d-%d@127.0.0.1", gen, i), CSeq: uint32(gen + 2), Expires: now.Add(time.Hour + time.Duration(gen)*time.Second),
					Transport: "udp", Source: "127.0.0.1:15080", Local: "127.0.0.1:5080", Updated: now}
			}
			for i := 0; i < users; i += batch {
				ups := make([]presence.Binding, 0, batch)
				for j := i; j < i+batch; j++ {
					ups = append(ups, binding(j, 0))
				}
				if err := st.SaveBindings(ctx, ups, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				b.StopTimer()
				ups := make([]presence.Binding, 0, batch)
				for j := 0; j < batch; j++ {
					ups = append(ups, binding(order.pick(n, j), n+1))
				}
				b.StartTimer()
				if err := st.SaveBindings(ctx, ups, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch)/1000, "µs/binding")
		})
	}
}

// BenchmarkCompactBindingLog: one compaction of a log holding two rows for
// each of 100 000 bindings (the point at which SaveBindings compacts), the
// time the writer is held.
//
//	go test ./store -run '^$' -bench CompactBindingLog -benchtime 5x
func BenchmarkCompactBindingLog(b *testing.B) {
	const users = 100_000
	ctx := context.Background()
	now := time.Now()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		st, err := Open(ctx, filepath.Join(b.TempDir(), "parley.db"))
		if err != nil {
			b.Fatal(err)
		}
		st.blog.slack = 1 << 40 // no compaction while filling
		for gen := range 2 {
			for i := 0; i < users; i += 1000 {
				ups := make([]presence.Binding, 0, 1000)
				for j := i; j < i+1000; j++ {
					c := fmt.Sprintf("sip:u%06d@127.0.0.1:15080", j)
					ups = append(ups, presence.Binding{AccountSid: "AC0123456789abcdef0123456789abcdef", Identity: fmt.Sprintf("sip:u%06d@bench.test", j),
						Key: c, Contact: c, CallID: fmt.Sprintf("%d-%d", gen, j), CSeq: uint32(gen + 1), Expires: now.Add(time.Hour), Transport: "udp", Updated: now})
				}
				if err := st.SaveBindings(ctx, ups, nil); err != nil {
					b.Fatal(err)
				}
			}
		}
		st.blog.mu.Lock()
		b.StartTimer()
		err = st.compactBindingLog(ctx)
		b.StopTimer()
		st.blog.mu.Unlock()
		if err != nil || st.blog.rows != users {
			b.Fatalf("compaction: %v, %d rows left", err, st.blog.rows)
		}
		st.Close()
	}
}
