package usage_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parleyhq/parley/internal/sqlite"
	"github.com/parleyhq/parley/plugins/builtin/usage"
	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const acct = "AC00000000000000000000000000000001"

type fixture struct {
	srv  *usage.Server
	db   *sqlite.DB
	file string
	clk  *clock
	cfg  usagev1.Config
	n    int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{file: filepath.Join(t.TempDir(), "usage.db"), clk: &clock{t: time.Date(2026, 3, 31, 23, 0, 0, 0, time.UTC)}, cfg: usagev1.DefaultConfig()}
	f.cfg.BackoffMin, f.cfg.BackoffMax, f.cfg.MaxAttempts = time.Second, 4*time.Second, 3
	f.reopen(t)
	return f
}

// reopen simulates a plugin restart on the same database file.
func (f *fixture) reopen(t *testing.T) {
	t.Helper()
	if f.db != nil {
		f.db.Close()
	}
	db, err := sqlite.Open(context.Background(), f.file, usage.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv, err := usage.NewServer(context.Background(), db, f.cfg, f.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	f.db, f.srv = db, srv
}

// events makes n fresh events of a category at the clock's time.
func (f *fixture) events(category string, n int, usageEach float64) []*usagev1.Event {
	var out []*usagev1.Event
	for range n {
		f.n++
		out = append(out, &usagev1.Event{Id: fmt.Sprintf("ev-%d", f.n), AccountSid: acct, Category: category, Count: 1, Usage: usageEach, TimeUnixMs: f.clk.Now().UnixMilli()})
	}
	return out
}

func (f *fixture) record(t *testing.T, evs []*usagev1.Event) *usagev1.RecordResponse {
	t.Helper()
	res, err := f.srv.Record(context.Background(), &usagev1.RecordRequest{Events: evs})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *fixture) trigger(t *testing.T, tr *usagev1.Trigger) *usagev1.Trigger {
	t.Helper()
	tr.AccountSid = acct
	if tr.CallbackUrl == "" {
		tr.CallbackUrl = "http://127.0.0.1:1/cb"
	}
	out, err := f.srv.CreateTrigger(context.Background(), &usagev1.CreateTriggerRequest{Trigger: tr})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *fixture) claim(t *testing.T, holder string) []*usagev1.OutboxEntry {
	t.Helper()
	res, err := f.srv.ClaimOutbox(context.Background(), &usagev1.ClaimOutboxRequest{Holder: holder, Max: 50, LeaseMs: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	return res.GetEntries()
}

func (f *fixture) deliverAll(t *testing.T) []*usagev1.OutboxEntry {
	t.Helper()
	es := f.claim(t, "h")
	for _, e := range es {
		if _, err := f.srv.CompleteOutbox(context.Background(), &usagev1.CompleteOutboxRequest{Id: e.Id, Holder: "h", Delivered: true}); err != nil {
			t.Fatal(err)
		}
	}
	return es
}

func records(t *testing.T, f *fixture, gran, cat string, start, end time.Time) []*usagev1.Record {
	t.Helper()
	req := &usagev1.RecordsRequest{AccountSid: acct, Category: cat, Granularity: gran}
	if !start.IsZero() {
		req.StartUnixMs = start.UnixMilli()
	}
	if !end.IsZero() {
		req.EndUnixMs = end.UnixMilli()
	}
	res, err := f.srv.Records(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res.GetRecords()
}

func TestCountersPerPeriod(t *testing.T) {
	f := newFixture(t)
	f.record(t, f.events(usagev1.CategoryCalls, 3, 2)) // 2026-03-31
	f.clk.Add(2 * time.Hour)                           // 2026-04-01 01:00
	f.record(t, f.events(usagev1.CategoryCalls, 2, 1.5))
	f.record(t, f.events(usagev1.CategoryAPIRequests, 5, 1))

	day := func(d int, m time.Month) time.Time { return time.Date(2026, m, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		name       string
		gran, cat  string
		start, end time.Time
		want       []string // "category start count usage"
	}{
		{"daily calls", "daily", "calls", time.Time{}, time.Time{}, []string{"calls 2026-03-31 3 6", "calls 2026-04-01 2 3"}},
		{"daily from April", "daily", "calls", day(1, 4), time.Time{}, []string{"calls 2026-04-01 2 3"}},
		{"monthly", "monthly", "calls", time.Time{}, time.Time{}, []string{"calls 2026-03-01 3 6", "calls 2026-04-01 2 3"}},
		{"yearly", "yearly", "", time.Time{}, time.Time{}, []string{"api-requests 2026-01-01 5 5", "calls 2026-01-01 5 9"}},
		{"alltime calls", "alltime", "calls", time.Time{}, time.Time{}, []string{"calls 1970-01-01 5 9"}},
		{"range March", "", "calls", day(1, 3), day(1, 4), []string{"calls 2026-03-01 3 6"}},
		{"range all", "", "api-requests", time.Time{}, time.Time{}, []string{"api-requests 1970-01-01 5 5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, r := range records(t, f, tc.gran, tc.cat, tc.start, tc.end) {
				if r.Count == 0 && tc.cat == "" {
					continue
				}
				got = append(got, fmt.Sprintf("%s %s %d %g", r.Category, time.UnixMilli(r.StartUnixMs).UTC().Format("2006-01-02"), r.Count, r.Usage))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
		})
	}
	if r := records(t, f, "", "calls", time.Time{}, time.Time{}); r[0].UsageUnit != "minutes" || r[0].CountUnit != "calls" {
		t.Errorf("units %+v", r[0])
	}
}

func TestDuplicateEventsIgnored(t *testing.T) {
	f := newFixture(t)
	evs := f.events(usagev1.CategoryMessages, 4, 1)
	batch := append(append([]*usagev1.Event{}, evs...), evs[0], evs[1]) // repeats within the batch
	if res := f.record(t, batch); res.Accepted != 4 || res.Duplicates != 2 {
		t.Fatalf("first batch: %+v", res)
	}
	if res := f.record(t, evs); res.Accepted != 0 || res.Duplicates != 4 {
		t.Fatalf("resent batch: %+v", res)
	}
	f.reopen(t) // ids survive a restart
	if res := f.record(t, evs[:2]); res.Accepted != 0 {
		t.Fatalf("after restart: %+v", res)
	}
	if r := records(t, f, "alltime", "messages", time.Time{}, time.Time{}); r[0].Count != 4 {
		t.Fatalf("count = %d, want 4", r[0].Count)
	}
}

func TestInvalidEvents(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		ev   *usagev1.Event
	}{
		{"no id", &usagev1.Event{AccountSid: acct, Category: "calls", Count: 1}},
		{"no account", &usagev1.Event{Id: "x", Category: "calls", Count: 1}},
		{"no category", &usagev1.Event{Id: "x", AccountSid: acct, Count: 1}},
		{"negative count", &usagev1.Event{Id: "x", AccountSid: acct, Category: "calls", Count: -1}},
		{"negative usage", &usagev1.Event{Id: "x", AccountSid: acct, Category: "calls", Usage: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.srv.Record(context.Background(), &usagev1.RecordRequest{Events: []*usagev1.Event{tc.ev}})
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("err = %v, want InvalidArgument", err)
			}
		})
	}
}

func TestTriggerFiresOncePerPeriod(t *testing.T) {
	tests := []struct {
		name      string
		recurring string
		next      time.Duration // advance to the next period
		again     bool          // fires again there
	}{
		{"daily", usagev1.RecurDaily, 24 * time.Hour, true},
		{"monthly", usagev1.RecurMonthly, 31 * 24 * time.Hour, true},
		{"yearly", usagev1.RecurYearly, 366 * 24 * time.Hour, true},
		{"alltime", usagev1.RecurAllTime, 24 * time.Hour, false},
		{"none", usagev1.RecurNone, 24 * time.Hour, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.clk.Set(time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC))
			tr := f.trigger(t, &usagev1.Trigger{UsageCategory: usagev1.CategoryCalls, TriggerValue: "3", TriggerBy: usagev1.ByCount, Recurring: tc.recurring})
			if res := f.record(t, f.events(usagev1.CategoryCalls, 2, 1)); res.Fired != 0 {
				t.Fatalf("fired below the value: %+v", res)
			}
			if res := f.record(t, f.events(usagev1.CategoryCalls, 2, 1)); res.Fired != 1 {
				t.Fatalf("crossing batch fired %d, want 1", res.Fired)
			}
			if res := f.record(t, f.events(usagev1.CategoryCalls, 5, 1)); res.Fired != 0 {
				t.Fatalf("fired again in the same period")
			}
			es := f.deliverAll(t)
			if len(es) != 1 || es[0].CurrentValue != 4 || es[0].Trigger.GetSid() != tr.Sid || es[0].IdempotencyToken == "" {
				t.Fatalf("outbox %+v", es)
			}
			f.reopen(t) // the fired state survives a restart
			if res := f.record(t, f.events(usagev1.CategoryCalls, 1, 1)); res.Fired != 0 {
				t.Fatalf("fired again after restart")
			}
			f.clk.Add(tc.next)
			f.record(t, f.events(usagev1.CategoryCalls, 2, 1))
			res := f.record(t, f.events(usagev1.CategoryCalls, 2, 1))
			if got := res.Fired == 1; got != tc.again {
				t.Fatalf("next period fired=%d, want again=%v", res.Fired, tc.again)
			}
			if tc.again {
				es2 := f.deliverAll(t)
				if len(es2) != 1 || es2[0].IdempotencyToken == es[0].IdempotencyToken {
					t.Fatalf("second firing %+v (first token %s)", es2, es[0].IdempotencyToken)
				}
			}
			got, err := f.srv.FetchTrigger(context.Background(), &usagev1.FetchTriggerRequest{AccountSid: acct, Sid: tr.Sid})
			if err != nil || got.DateFiredUnixMs == 0 {
				t.Fatalf("fetch %+v %v", got, err)
			}
		})
	}
}

func TestRelativeAndUsageTriggers(t *testing.T) {
	f := newFixture(t)
	f.record(t, f.events(usagev1.CategoryRecordings, 10, 0.5)) // usage 5 minutes
	tr := f.trigger(t, &usagev1.Trigger{UsageCategory: usagev1.CategoryRecordings, TriggerValue: "+2", TriggerBy: usagev1.ByUsage})
	if tr.TriggerValue != "7" || tr.CurrentValue != 5 {
		t.Fatalf("relative trigger stored as %q (current %v), want 7 (5)", tr.TriggerValue, tr.CurrentValue)
	}
	byCount := f.trigger(t, &usagev1.Trigger{UsageCategory: usagev1.CategoryRecordings, TriggerValue: "+3", TriggerBy: usagev1.ByCount})
	if byCount.TriggerValue != "13" {
		t.Fatalf("count trigger value %q, want 13", byCount.TriggerValue)
	}
	if res := f.record(t, f.events(usagev1.CategoryRecordings, 3, 0.5)); res.Fired != 1 { // usage 6.5, count 13
		t.Fatalf("fired %d, want 1 (count only)", res.Fired)
	}
	if res := f.record(t, f.events(usagev1.CategoryRecordings, 1, 0.5)); res.Fired != 1 { // usage 7
		t.Fatalf("fired %d, want 1 (usage)", res.Fired)
	}
}

func TestCheckTrigger(t *testing.T) {
	ok := func() *usagev1.Trigger {
		return &usagev1.Trigger{AccountSid: acct, UsageCategory: "calls", TriggerValue: "10", TriggerBy: "count", CallbackUrl: "http://x/", CallbackMethod: "POST"}
	}
	tests := []struct {
		name   string
		mutate func(*usagev1.Trigger)
		valid  bool
	}{
		{"ok", func(*usagev1.Trigger) {}, true},
		{"relative", func(t *usagev1.Trigger) { t.TriggerValue = "+1.5" }, true},
		{"bad category", func(t *usagev1.Trigger) { t.UsageCategory = "pizza" }, false},
		{"bad value", func(t *usagev1.Trigger) { t.TriggerValue = "ten" }, false},
		{"negative value", func(t *usagev1.Trigger) { t.TriggerValue = "-1" }, false},
		{"empty value", func(t *usagev1.Trigger) { t.TriggerValue = "+" }, false},
		{"bad by", func(t *usagev1.Trigger) { t.TriggerBy = "price" }, false},
		{"bad recurring", func(t *usagev1.Trigger) { t.Recurring = "hourly" }, false},
		{"bad method", func(t *usagev1.Trigger) { t.CallbackMethod = "PUT" }, false},
		{"no callback no action", func(t *usagev1.Trigger) { t.CallbackUrl = "" }, false},
		{"action only", func(t *usagev1.Trigger) { t.CallbackUrl = ""; t.Action = usagev1.ActionSuspendAccount }, true},
		{"limit without resource", func(t *usagev1.Trigger) { t.Action = usagev1.ActionLimitAdmission }, false},
		{"limit", func(t *usagev1.Trigger) {
			t.Action, t.ActionResource, t.ActionLimit = usagev1.ActionLimitAdmission, "calls", 0
		}, true},
		{"bad action", func(t *usagev1.Trigger) { t.Action = "explode" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := ok()
			tc.mutate(tr)
			if err := usage.CheckTrigger(tr); (err == nil) != tc.valid {
				t.Fatalf("CheckTrigger = %v, valid=%v", err, tc.valid)
			}
		})
	}
}

func TestTriggerCRUD(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.trigger(t, &usagev1.Trigger{UsageCategory: "calls", TriggerValue: "10", FriendlyName: "a"})
	b := f.trigger(t, &usagev1.Trigger{UsageCategory: "messages", TriggerValue: "10", Recurring: "daily"})
	if a.TriggerBy != usagev1.ByUsage || a.CallbackMethod != "POST" {
		t.Fatalf("defaults %+v", a)
	}
	list, err := f.srv.ListTriggers(ctx, &usagev1.ListTriggersRequest{AccountSid: acct, Recurring: "daily"})
	if err != nil || len(list.Triggers) != 1 || list.Triggers[0].Sid != b.Sid {
		t.Fatalf("list %+v %v", list, err)
	}
	name, method := "renamed", "get"
	u, err := f.srv.UpdateTrigger(ctx, &usagev1.UpdateTriggerRequest{AccountSid: acct, Sid: a.Sid, FriendlyName: &name, CallbackMethod: &method})
	if err != nil || u.FriendlyName != "renamed" || u.CallbackMethod != "GET" || u.CallbackUrl != a.CallbackUrl {
		t.Fatalf("update %+v %v", u, err)
	}
	if _, err := f.srv.FetchTrigger(ctx, &usagev1.FetchTriggerRequest{AccountSid: "ACother", Sid: a.Sid}); status.Code(err) != codes.NotFound {
		t.Fatalf("other account fetch: %v", err)
	}
	if d, _ := f.srv.DeleteTrigger(ctx, &usagev1.DeleteTriggerRequest{AccountSid: acct, Sid: a.Sid}); !d.Found {
		t.Fatal("delete: not found")
	}
	if d, _ := f.srv.DeleteTrigger(ctx, &usagev1.DeleteTriggerRequest{AccountSid: acct, Sid: a.Sid}); d.Found {
		t.Fatal("deleted twice")
	}
	f.reopen(t)
	list, _ = f.srv.ListTriggers(ctx, &usagev1.ListTriggersRequest{AccountSid: acct})
	if len(list.Triggers) != 1 || list.Triggers[0].Sid != b.Sid {
		t.Fatalf("after restart %+v", list)
	}
}

func TestOutboxRetriesAndLeases(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.trigger(t, &usagev1.Trigger{UsageCategory: "calls", TriggerValue: "1", TriggerBy: "count"})
	f.record(t, f.events("calls", 1, 1))
	es := f.claim(t, "h1")
	if len(es) != 1 {
		t.Fatalf("claimed %d", len(es))
	}
	token := es[0].IdempotencyToken
	if again := f.claim(t, "h2"); len(again) != 0 {
		t.Fatal("claimed twice while leased")
	}
	// Fail: retried after BackoffMin (1s), then 2s, then dead at the 3rd failure.
	for i, wait := range []time.Duration{time.Second, 2 * time.Second} {
		res, err := f.srv.CompleteOutbox(ctx, &usagev1.CompleteOutboxRequest{Id: es[0].Id, Holder: "h1", Error: "down"})
		if err != nil || res.Dead || res.NextAttemptUnixMs != f.clk.Now().Add(wait).UnixMilli() {
			t.Fatalf("failure %d: %+v %v", i, res, err)
		}
		if got := f.claim(t, "h1"); len(got) != 0 {
			t.Fatal("claimed before the back-off passed")
		}
		f.clk.Add(wait)
		es = f.claim(t, "h1")
		if len(es) != 1 || es[0].IdempotencyToken != token || es[0].Attempts != int32(i+1) {
			t.Fatalf("retry %d: %+v", i, es)
		}
	}
	// A holder that dies loses its lease; another takes over with the same token.
	f.clk.Add(11 * time.Second)
	es = f.claim(t, "h2")
	if len(es) != 1 || es[0].IdempotencyToken != token {
		t.Fatalf("takeover %+v", es)
	}
	// The stale holder's failure no longer counts.
	if res, _ := f.srv.CompleteOutbox(ctx, &usagev1.CompleteOutboxRequest{Id: es[0].Id, Holder: "h1", Error: "x"}); res.Dead {
		t.Fatal("stale failure counted")
	}
	res, _ := f.srv.CompleteOutbox(ctx, &usagev1.CompleteOutboxRequest{Id: es[0].Id, Holder: "h2", Error: "down"})
	if !res.Dead {
		t.Fatalf("third failure: %+v, want dead", res)
	}
	st, _ := f.srv.OutboxStats(ctx, &usagev1.OutboxStatsRequest{})
	if st.Dead != 1 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestClaimWaitsForFiring(t *testing.T) {
	f := newFixture(t)
	f.trigger(t, &usagev1.Trigger{UsageCategory: "calls", TriggerValue: "1", TriggerBy: "count"})
	done := make(chan []*usagev1.OutboxEntry)
	start := time.Now()
	go func() {
		res, _ := f.srv.ClaimOutbox(context.Background(), &usagev1.ClaimOutboxRequest{Holder: "h", WaitMs: 5000})
		done <- res.GetEntries()
	}()
	time.Sleep(50 * time.Millisecond)
	f.record(t, f.events("calls", 1, 1))
	if es := <-done; len(es) != 1 || time.Since(start) > 2*time.Second {
		t.Fatalf("claim returned %d entries after %s", len(es), time.Since(start))
	}
}

func TestBackoff(t *testing.T) {
	c := usagev1.Config{BackoffMin: time.Second, BackoffMax: 10 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 60: 10 * time.Second} {
		if got := c.Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestPruneForgetsOldIDs(t *testing.T) {
	f := newFixture(t)
	evs := f.events(usagev1.CategoryCalls, 3, 1)
	f.record(t, evs)
	f.clk.Add(f.cfg.EventRetention - time.Hour)
	if err := f.srv.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res := f.record(t, evs); res.Duplicates != 3 {
		t.Fatalf("ids forgotten within the retention: %+v", res)
	}
	f.clk.Add(2 * 24 * time.Hour)
	if err := f.srv.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res := f.record(t, evs); res.Accepted != 3 {
		t.Fatalf("ids kept past the retention: %+v", res)
	}
}
