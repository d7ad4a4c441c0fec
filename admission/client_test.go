package admission_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/plugins"
)

func acct() string { return sid.New(sid.Account) }

func TestAcquireUpToLimitThenDenied(t *testing.T) {
	e := start(t, setup{})
	ctx := context.Background()
	tests := []struct {
		name  string
		res   admission.Resource
		limit int64
		block int64
	}{
		{"api limit 1", admission.ResourceAPI, 1, 16},
		{"api limit 5", admission.ResourceAPI, 5, 16},
		{"calls limit 40 over several blocks", admission.ResourceCalls, 40, 16},
		{"messages limit 0 refuses all", admission.ResourceMessages, 0, 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := acct()
			if _, err := e.client.SetLimit(ctx, a, tc.res, tc.limit); err != nil {
				t.Fatal(err)
			}
			var rels []func()
			for i := int64(0); i < tc.limit; i++ {
				rel, err := e.client.Acquire(ctx, a, tc.res)
				if err != nil {
					t.Fatalf("acquire %d of %d: %v", i+1, tc.limit, err)
				}
				rels = append(rels, rel)
			}
			_, err := e.client.Acquire(ctx, a, tc.res)
			var d *admission.Denial
			if !errors.As(err, &d) {
				t.Fatalf("acquire over the limit: got %v, want *Denial", err)
			}
			if d.Current != tc.limit || d.Limit != tc.limit || d.RetryAfter() <= 0 || d.Unavailable || d.Resource != tc.res {
				t.Fatalf("denial = %+v, want current=limit=%d with a retry-after", d, tc.limit)
			}
			lims, err := e.client.Limits(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range lims {
				if l.Resource == tc.res && (l.Current != tc.limit || l.Limit != tc.limit || l.Default) {
					t.Fatalf("limits[%s] = %+v, want current=limit=%d, not default", tc.res, l, tc.limit)
				}
			}
			if tc.limit == 0 {
				return
			}
			rels[0]()
			rels[0]() // double release is harmless
			rel, err := e.client.Acquire(ctx, a, tc.res)
			if err != nil {
				t.Fatalf("acquire after a release: %v", err)
			}
			if _, err := e.client.Acquire(ctx, a, tc.res); !errors.As(err, &d) {
				t.Fatalf("double release freed two slots: got %v", err)
			}
			rel()
			for _, r := range rels[1:] {
				r()
			}
		})
	}
}

func TestLimitsDefaultsSetClear(t *testing.T) {
	e := start(t, setup{admission: func(c *admission.Config) {
		c.Defaults = map[admission.Resource]int64{admission.ResourceAPI: 7, admission.ResourceCalls: -1}
	}})
	ctx := context.Background()
	a := acct()
	lims, err := e.client.Limits(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	want := map[admission.Resource]int64{admission.ResourceAPI: 7, admission.ResourceCalls: -1, admission.ResourceCallsCPS: -1, admission.ResourceMessages: -1}
	if len(lims) != len(want) {
		t.Fatalf("got %d limits, want %d", len(lims), len(want))
	}
	for _, l := range lims {
		if l.Limit != want[l.Resource] || !l.Default || l.Current != 0 {
			t.Errorf("default %s = %+v, want limit %d default", l.Resource, l, want[l.Resource])
		}
	}
	l, err := e.client.SetLimit(ctx, a, admission.ResourceAPI, 2)
	if err != nil || l.Limit != 2 || l.Default {
		t.Fatalf("set limit: %+v, %v", l, err)
	}
	if _, err := e.client.SetLimit(ctx, a, admission.ResourceAPI, -5); err == nil {
		t.Fatal("limit -5 accepted")
	}
	if _, err := e.client.SetLimit(ctx, a, "bogus", 1); err == nil {
		t.Fatal("unknown resource accepted")
	}
	l, err = e.client.ClearLimit(ctx, a, admission.ResourceAPI)
	if err != nil || l.Limit != 7 || !l.Default {
		t.Fatalf("clear limit: %+v, %v", l, err)
	}
	if _, err := e.client.Acquire(ctx, "", admission.ResourceAPI); err == nil {
		t.Fatal("empty account admitted")
	}
	if _, err := e.client.Acquire(ctx, a, "bogus"); err == nil {
		t.Fatal("unknown resource admitted")
	}
}

// Several hosts (holders) hammer one account; the number of requests in
// flight at once across all of them must never exceed the limit.
func TestConcurrentAcquireNeverExceedsLimit(t *testing.T) {
	e := start(t, setup{admission: func(c *admission.Config) { c.Block = 4 }})
	ctx := context.Background()
	const limit = 10
	a := acct()
	if _, err := e.client.SetLimit(ctx, a, admission.ResourceAPI, limit); err != nil {
		t.Fatal(err)
	}
	hosts := []*admission.Client{e.client, e.newClient(t, "host-b", true), e.newClient(t, "host-c", true)}
	var inFlight, peak, admitted, denied atomic.Int64
	var wg sync.WaitGroup
	for g := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := hosts[g%len(hosts)]
			for range 100 {
				rel, err := c.Acquire(ctx, a, admission.ResourceAPI)
				var d *admission.Denial
				switch {
				case errors.As(err, &d):
					if d.Limit != limit {
						t.Errorf("denial limit %d", d.Limit)
					}
					denied.Add(1)
					continue
				case err != nil:
					t.Error(err)
					return
				}
				admitted.Add(1)
				n := inFlight.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				if n > limit {
					t.Errorf("%d requests in flight, limit %d", n, limit)
				}
				time.Sleep(50 * time.Microsecond)
				inFlight.Add(-1)
				rel()
			}
		}()
	}
	wg.Wait()
	t.Logf("admitted %d, denied %d, peak in flight %d", admitted.Load(), denied.Load(), peak.Load())
	if denied.Load() == 0 {
		t.Fatal("30 goroutines over a limit of 10 were never denied")
	}
	if admitted.Load() == 0 || peak.Load() > limit {
		t.Fatalf("admitted %d, peak %d", admitted.Load(), peak.Load())
	}
}

// A host that dies without releasing (no renewals, no Close) holds its
// capacity only until its lease TTL passes.
func TestLeaseExpiryFreesCapacity(t *testing.T) {
	e := start(t, setup{admission: func(c *admission.Config) { c.LeaseTTL = 600 * time.Millisecond }})
	ctx := context.Background()
	a := acct()
	if _, err := e.client.SetLimit(ctx, a, admission.ResourceCalls, 3); err != nil {
		t.Fatal(err)
	}
	crashed := e.newClient(t, "crashed-host", false) // never renews: like a SIGKILLed host
	for range 3 {
		if _, err := crashed.Acquire(ctx, a, admission.ResourceCalls); err != nil {
			t.Fatal(err)
		}
	}
	var d *admission.Denial
	if _, err := e.client.Acquire(ctx, a, admission.ResourceCalls); !errors.As(err, &d) {
		t.Fatalf("capacity held by the other host was granted again: %v", err)
	}
	start := time.Now()
	waitFor(t, 5*time.Second, "the dead host's lease to expire", func() bool {
		rel, err := e.client.Acquire(ctx, a, admission.ResourceCalls)
		if err != nil {
			return false
		}
		rel()
		return true
	})
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("capacity came back after %s, before the lease TTL", el)
	}
}

// A request that never calls release gets its slot reclaimed after SlotTTL.
func TestLeakedSlotReclaimed(t *testing.T) {
	e := start(t, setup{admission: func(c *admission.Config) {
		c.LeaseTTL = 600 * time.Millisecond
		c.SlotTTL = map[admission.Resource]time.Duration{admission.ResourceAPI: 300 * time.Millisecond}
	}})
	ctx := context.Background()
	a := acct()
	if _, err := e.client.SetLimit(ctx, a, admission.ResourceAPI, 1); err != nil {
		t.Fatal(err)
	}
	leaked, err := e.client.Acquire(ctx, a, admission.ResourceAPI)
	if err != nil {
		t.Fatal(err)
	}
	_ = leaked // never called in time
	waitFor(t, 5*time.Second, "the leaked slot to be reclaimed", func() bool {
		rel, err := e.client.Acquire(ctx, a, admission.ResourceAPI)
		if err != nil {
			return false
		}
		rel()
		return true
	})
	leaked() // a late release of a reclaimed slot must not free someone else's
	rel, err := e.client.Acquire(ctx, a, admission.ResourceAPI)
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	if _, err := e.client.Acquire(ctx, a, admission.ResourceAPI); err == nil {
		t.Fatal("late release of a reclaimed slot freed capacity twice")
	}
}

func TestCallsPerSecond(t *testing.T) {
	e := start(t, setup{})
	ctx := context.Background()
	a := acct()
	if _, err := e.client.SetLimit(ctx, a, admission.ResourceCallsCPS, 5); err != nil {
		t.Fatal(err)
	}
	// Align to the start of a second so all six attempts share one window.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 20*time.Millisecond)))
	for i := range 5 {
		rel, err := e.client.Acquire(ctx, a, admission.ResourceCallsCPS)
		if err != nil {
			t.Fatalf("setup %d: %v", i+1, err)
		}
		rel() // releasing does not give a rate slot back
	}
	_, err := e.client.Acquire(ctx, a, admission.ResourceCallsCPS)
	var d *admission.Denial
	if !errors.As(err, &d) || d.Current != 5 || d.Limit != 5 || d.RetryAfter() <= 0 || d.RetryAfter() > time.Second {
		t.Fatalf("6th setup in one second: %v (%+v)", err, d)
	}
	time.Sleep(d.RetryAfter() + 10*time.Millisecond)
	if _, err := e.client.Acquire(ctx, a, admission.ResourceCallsCPS); err != nil {
		t.Fatalf("after Retry-After: %v", err)
	}
}

// The plugin is SIGKILLed while requests are flowing: requests that need
// the plugin follow on_failure, the supervisor restarts it, and afterwards
// the counters are exactly what is in use (leases survive in SQLite; the
// fail-open admissions are not counted).
func TestPluginKilledMidLoad(t *testing.T) {
	for _, mode := range []string{plugins.FailOpen, plugins.FailClosed} {
		t.Run(mode, func(t *testing.T) {
			e := start(t, setup{onFailure: mode, admission: func(c *admission.Config) { c.Block = 1 }})
			ctx := context.Background()
			a := acct()
			const limit = 4
			if _, err := e.client.SetLimit(ctx, a, admission.ResourceAPI, limit); err != nil {
				t.Fatal(err)
			}
			// Two requests in flight across the crash.
			held := []func(){}
			for range 2 {
				rel, err := e.client.Acquire(ctx, a, admission.ResourceAPI)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, rel)
			}
			before := e.status(t)
			pid := e.pluginPID(t)

			// Load: with Block=1 every acquire beyond what is held asks the plugin.
			stop := make(chan struct{})
			var open, closed, ok, denied atomic.Int64
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					i := 0
					for {
						select {
						case <-stop:
							return
						default:
						}
						// Alternate between the busy account (leased capacity) and
						// fresh accounts (each needs a plugin call).
						who := a
						if i++; i%2 == 0 {
							who = acct()
						}
						rel, err := e.client.Acquire(ctx, who, admission.ResourceAPI)
						var d *admission.Denial
						switch {
						case errors.As(err, &d) && d.Unavailable:
							closed.Add(1)
						case errors.As(err, &d):
							denied.Add(1)
						case err != nil:
							t.Error(err)
							return
						default:
							ok.Add(1)
							rel()
						}
						time.Sleep(200 * time.Microsecond)
					}
				}()
			}
			time.Sleep(50 * time.Millisecond)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			// While it is down, a fresh account has no leased capacity, so
			// its requests must follow on_failure.
			waitFor(t, 5*time.Second, "the plugin to be seen down", func() bool { return e.status(t).State != plugins.StateRunning })
			b := acct()
			rel, err := e.client.Acquire(ctx, b, admission.ResourceAPI)
			var d *admission.Denial
			switch mode {
			case plugins.FailOpen:
				if err != nil {
					t.Fatalf("fail-open while down: %v", err)
				}
				open.Add(1)
				rel()
			case plugins.FailClosed:
				if !errors.As(err, &d) || !d.Unavailable {
					t.Fatalf("fail-closed while down: got %v", err)
				}
			}
			waitFor(t, 10*time.Second, "the plugin to restart", func() bool {
				st := e.status(t)
				return st.State == plugins.StateRunning && st.Restarts > before.Restarts && st.PID != pid
			})
			close(stop)
			wg.Wait()
			t.Logf("during the crash: ok=%d denied=%d fail_closed=%d", ok.Load(), denied.Load(), closed.Load())
			if mode == plugins.FailOpen && closed.Load() != 0 {
				t.Fatalf("fail-open mode refused %d requests as unavailable", closed.Load())
			}
			if mode == plugins.FailClosed && closed.Load() == 0 {
				t.Fatal("fail-closed mode never refused a request while the plugin was down")
			}

			// Counters afterwards: exactly the two requests still in flight.
			lims, err := e.client.Limits(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range lims {
				if l.Resource == admission.ResourceAPI && l.Current != 2 {
					t.Fatalf("after restart: api current = %d, want 2 in flight", l.Current)
				}
			}
			// And the limit still holds exactly: two more fit, a fifth does not.
			for i := range limit - 2 {
				rel, err := e.client.Acquire(ctx, a, admission.ResourceAPI)
				if err != nil {
					t.Fatalf("acquire %d after restart: %v", i+3, err)
				}
				held = append(held, rel)
			}
			if _, err := e.client.Acquire(ctx, a, admission.ResourceAPI); !errors.As(err, &d) || d.Unavailable || d.Current != limit {
				t.Fatalf("over the limit after restart: %v", err)
			}
			for _, r := range held {
				r()
			}
			lims, err = e.client.Limits(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range lims {
				if l.Current != 0 {
					t.Fatalf("after releasing everything: %+v", l)
				}
			}
			// After this host shuts down (returning its leased blocks), a
			// second host gets all of the capacity: nothing stale is counted.
			if err := e.client.Close(ctx); err != nil {
				t.Fatal(err)
			}
			other := e.newClient(t, "host-b", true)
			for range limit {
				if _, err := other.Acquire(ctx, a, admission.ResourceAPI); err != nil {
					t.Fatalf("other host after restart: %v", err)
				}
			}
		})
	}
}
