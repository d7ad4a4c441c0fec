package admission_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/sqlite"
	"github.com/parleyhq/parley/plugins/builtin/admission"
	admissionv1 "github.com/parleyhq/parley/plugins/proto/admission/v1"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openServer(t *testing.T, file string, clk *clock) (*admission.Server, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), file, admission.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	s, err := admission.NewServer(context.Background(), db, map[admissionv1.Resource]int64{admissionv1.ResourceAPI: 10}, time.Second, clk.now)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return s, db
}

func current(t *testing.T, s *admission.Server, account, res string) int64 {
	t.Helper()
	resp, err := s.GetLimits(context.Background(), &admissionv1.GetLimitsRequest{AccountSid: account})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range resp.GetLimits() {
		if l.GetResource() == res {
			return l.GetCurrent()
		}
	}
	t.Fatalf("no %s limit", res)
	return 0
}

// Leases survive a plugin restart exactly; expired ones do not.
func TestServerRestartRestoresLiveLeasesOnly(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "adm.db")
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	s, db := openServer(t, file, clk)
	acq := func(s *admission.Server, holder, lease string, minN, maxN, ttl int64) *admissionv1.AcquireResponse {
		t.Helper()
		r, err := s.Acquire(ctx, &admissionv1.AcquireRequest{AccountSid: "AC1", Resource: "api", Holder: holder, LeaseId: lease, MinCount: minN, MaxCount: maxN, TtlMs: ttl})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	long := acq(s, "h1", "", 1, 4, 60_000) // 4 slots, 1 minute
	short := acq(s, "h2", "", 1, 3, 1_000) // 3 slots, 1 second
	grown := acq(s, "h1", long.LeaseId, 2, 2, 60_000)
	if !long.Granted || !short.Granted || !grown.Granted || grown.LeaseId != long.LeaseId || grown.LeaseCount != 6 || grown.Current != 9 {
		t.Fatalf("grants: %v / %v / %v", long, short, grown)
	}
	// Only 1 left: a request for at least 2 is refused with the counts.
	if r := acq(s, "h3", "", 2, 5, 1000); r.Granted || r.Current != 9 || r.Limit != 10 || r.RetryAfterMs != 1000 {
		t.Fatalf("denial: %v", r)
	}
	if r, err := s.Release(ctx, &admissionv1.ReleaseRequest{LeaseId: long.LeaseId, Count: 1}); err != nil || r.LeaseCount != 5 {
		t.Fatalf("partial release: %v %v", r, err)
	}
	db.Close()

	// Restart within the short lease's TTL: both leases are counted.
	s, db = openServer(t, file, clk)
	if got := current(t, s, "AC1", "api"); got != 8 {
		t.Fatalf("after restart: current %d, want 8", got)
	}
	db.Close()

	// Restart after the short lease expired: only the long one is counted.
	clk.add(2 * time.Second)
	s, db = openServer(t, file, clk)
	defer db.Close()
	if got := current(t, s, "AC1", "api"); got != 5 {
		t.Fatalf("after expiry and restart: current %d, want 5", got)
	}
	if r, err := s.Renew(ctx, &admissionv1.RenewRequest{LeaseIds: []string{long.LeaseId, short.LeaseId}, TtlMs: 1000, Holder: "h1"}); err != nil || len(r.Missing) != 1 || r.Missing[0] != short.LeaseId {
		t.Fatalf("renew: %v %v", r, err)
	}
	// The sweeper frees leases that stop being renewed.
	clk.add(1500 * time.Millisecond)
	if err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := current(t, s, "AC1", "api"); got != 0 {
		t.Fatalf("after the sweep: current %d, want 0", got)
	}
	// Releasing everything of a holder.
	acq(s, "h9", "", 3, 3, 10_000)
	acq(s, "h9", "", 1, 1, 10_000)
	if r, err := s.Release(ctx, &admissionv1.ReleaseRequest{Holder: "h9"}); err != nil || !r.Found {
		t.Fatalf("release holder: %v %v", r, err)
	}
	if got := current(t, s, "AC1", "api"); got != 0 {
		t.Fatalf("after releasing the holder: current %d", got)
	}
}

func TestServerValidation(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	s, db := openServer(t, filepath.Join(t.TempDir(), "adm.db"), clk)
	defer db.Close()
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
	}{
		{"acquire without account", func() error {
			_, err := s.Acquire(ctx, &admissionv1.AcquireRequest{Resource: "api"})
			return err
		}},
		{"acquire unknown resource", func() error {
			_, err := s.Acquire(ctx, &admissionv1.AcquireRequest{AccountSid: "AC1", Resource: "sms"})
			return err
		}},
		{"release without lease or holder", func() error {
			_, err := s.Release(ctx, &admissionv1.ReleaseRequest{})
			return err
		}},
		{"renew without ttl", func() error {
			_, err := s.Renew(ctx, &admissionv1.RenewRequest{LeaseIds: []string{"x"}})
			return err
		}},
		{"limit below -1", func() error {
			_, err := s.SetLimit(ctx, &admissionv1.SetLimitRequest{AccountSid: "AC1", Resource: "api", Limit: -2})
			return err
		}},
		{"limits without account", func() error {
			_, err := s.GetLimits(ctx, &admissionv1.GetLimitsRequest{})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestServerRateWindow(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 250_000_000)}
	s, db := openServer(t, filepath.Join(t.TempDir(), "adm.db"), clk)
	defer db.Close()
	ctx := context.Background()
	if _, err := s.SetLimit(ctx, &admissionv1.SetLimitRequest{AccountSid: "AC1", Resource: "calls-cps", Limit: 2}); err != nil {
		t.Fatal(err)
	}
	req := &admissionv1.AcquireRequest{AccountSid: "AC1", Resource: "calls-cps", MinCount: 1, MaxCount: 1}
	for i, want := range []bool{true, true, false} {
		r, err := s.Acquire(ctx, req)
		if err != nil || r.Granted != want || r.LeaseId != "" {
			t.Fatalf("setup %d: %v %v", i, r, err)
		}
		if !want && r.RetryAfterMs != 750 {
			t.Fatalf("retry after %d ms, want 750", r.RetryAfterMs)
		}
	}
	clk.add(750 * time.Millisecond)
	if r, _ := s.Acquire(ctx, req); !r.Granted {
		t.Fatal("next second still refused")
	}
}
