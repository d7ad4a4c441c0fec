package usage_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/usage"
)

// noPlugin is a supervisor that serves no usage plugin.
func noPlugin(t *testing.T) *plugins.Supervisor {
	t.Helper()
	pcfg := plugins.DefaultConfig()
	pcfg.Use = map[string]string{}
	cat, err := plugins.NewCatalog(pcfg, nil, plugins.Command{Path: os.Args[0]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := plugins.NewSupervisor(pcfg, cat, plugins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return sup
}

// A spool segment cut short by a crash mid-write is replayed up to the last
// whole event; the metrics show what happened.
func TestSpoolTruncatedTailAndMetrics(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	pub, err := usage.NewPublisher(noPlugin(t), testConfig(), usage.PublisherOptions{SpoolDir: filepath.Join(dir, "usage-spool"), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	pub.Start()
	publishN(t, pub, usage.Messages, 100, "m")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]float64{}
	for _, mf := range mfs {
		if m := mf.GetMetric(); len(m) == 1 && m[0].GetCounter() != nil {
			seen[mf.GetName()] = m[0].GetCounter().GetValue()
		}
	}
	if seen["parley_usage_events_spooled_total"] != 100 || seen["parley_usage_events_published_total"] != 100 || seen["parley_usage_events_dropped_total"] != 0 {
		t.Fatalf("metrics %v", seen)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "usage-spool", "*"))
	if len(files) != 1 {
		t.Fatalf("spool files %v", files)
	}
	st, _ := os.Stat(files[0])
	if err := os.Truncate(files[0], st.Size()-3); err != nil {
		t.Fatal(err)
	}
	h := startHost(t, dir, testConfig(), false)
	waitFor(t, 10*time.Second, "replay", func() bool { return h.allTime(usage.Messages) == 99 })
	waitFor(t, 5*time.Second, "replayed counted", func() bool { return h.pub.Stats().Replayed == 99 })
}

// A full spool drops (and counts) instead of filling the disk.
func TestSpoolCap(t *testing.T) {
	cfg := testConfig()
	cfg.SpoolSegment, cfg.SpoolMax, cfg.BatchSize = 4096, 8192, 10 // the cap is checked per append (one batch)
	pub, err := usage.NewPublisher(noPlugin(t), cfg, usage.PublisherOptions{SpoolDir: filepath.Join(t.TempDir(), "spool")})
	if err != nil {
		t.Fatal(err)
	}
	pub.Start()
	publishN(t, pub, usage.Messages, 2000, "m") // ~60 bytes each
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := pub.Stats()
	if st.Dropped == 0 || st.Spooled == 0 || st.Spooled+st.Dropped != 2000 || st.Spooled > 200 {
		t.Fatalf("stats %+v", st)
	}
}
