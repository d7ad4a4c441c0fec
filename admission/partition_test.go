package admission_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/plugins"
	admissionv1 "github.com/parleyhq/parley/plugins/proto/admission/v1"
	"github.com/parleyhq/parley/plugins/sdk"
)

// cutBackend is the real supervisor with a switch that makes the plugin
// unreachable from one host, as a long stall or partition would.
type cutBackend struct {
	sup *plugins.Supervisor
	cut atomic.Bool
}

func (b *cutBackend) Admission(ctx context.Context) (admissionv1.AdmissionClient, error) {
	if b.cut.Load() {
		return nil, plugins.ErrUnavailable
	}
	return b.sup.Admission(ctx)
}

func (b *cutBackend) FailOpen(k sdk.Kind) bool { return b.sup.FailOpen(k) }

// A host that cannot renew for longer than the lease TTL loses its lease in
// the plugin; when it is back it re-leases exactly what it has in use, so the
// limit holds across hosts again.
func TestLostLeaseIsReleased(t *testing.T) {
	e := start(t, setup{admission: func(c *admission.Config) {
		c.LeaseTTL = 600 * time.Millisecond
		c.Block = 4
	}})
	ctx := context.Background()
	a := acct()
	if _, err := e.client.SetLimit(ctx, a, admission.ResourceCalls, 4); err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.Holder = "stalled-host"
	be := &cutBackend{sup: e.sup}
	stalled, err := admission.NewClient(be, cfg, admission.ClientOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	stalled.Start(ctx)
	defer stalled.Close(ctx)
	for range 2 {
		if _, err := stalled.Acquire(ctx, a, admission.ResourceCalls); err != nil {
			t.Fatal(err)
		}
	}
	var mine []func()
	for range 2 {
		rel, err := e.client.Acquire(ctx, a, admission.ResourceCalls)
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, rel)
	}
	var d *admission.Denial
	if _, err := e.client.Acquire(ctx, a, admission.ResourceCalls); !errors.As(err, &d) || d.Current != 4 {
		t.Fatalf("5th slot across two hosts: %v", err)
	}
	pluginCount := func() int64 { // what the plugin counts, without this host's spare
		ls, err := e.client.Limits(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Resource == admission.ResourceCalls {
				return l.Current
			}
		}
		t.Fatal("no calls limit")
		return 0
	}
	if n := pluginCount(); n != 4 {
		t.Fatalf("counted %d, want 4", n)
	}
	be.cut.Store(true)
	waitFor(t, 5*time.Second, "the stalled host's lease to expire in the plugin", func() bool { return pluginCount() == 2 })
	be.cut.Store(false)
	waitFor(t, 5*time.Second, "the stalled host to re-lease its 2 calls in use", func() bool { return pluginCount() == 4 })
	if _, err := e.client.Acquire(ctx, a, admission.ResourceCalls); !errors.As(err, &d) {
		t.Fatalf("limit exceeded after re-lease: %v", err)
	}
	if _, err := stalled.Acquire(ctx, a, admission.ResourceCalls); !errors.As(err, &d) || d.Current != 4 {
		t.Fatalf("stalled host over the limit after re-lease: %v", err)
	}
	for _, r := range mine {
		r()
	}
}
