package usage_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
	"github.com/parleyhq/parley/usage"
)

func TestEventsMoveCountersAndTriggerCallsBack(t *testing.T) {
	h := startHost(t, t.TempDir(), testConfig(), true)
	rcv := newReceiver(t)
	ctx := context.Background()
	tr, err := h.cli.CreateTrigger(ctx, usage.Trigger{AccountSid: acct, UsageCategory: usage.Calls, TriggerValue: "+3", TriggerBy: "count",
		Recurring: "daily", CallbackURL: rcv.srv.URL + "/usage?x=1", FriendlyName: "three calls"})
	if err != nil {
		t.Fatal(err)
	}
	if tr.TriggerValue != "3" || tr.CallbackMethod != "POST" {
		t.Fatalf("created %+v", tr)
	}
	call := usage.CallEnded(acct, "CA1", "inbound", "client", 61*time.Second, time.Now())
	if err := h.pub.PublishAll(call); err != nil {
		t.Fatal(err)
	}
	_ = h.pub.PublishAll(call) // the same call again: ids repeat, counts once
	publishN(t, h.pub, usage.APIRequests, 5, "api")
	waitFor(t, 5*time.Second, "counters", func() bool { return h.allTime(usage.APIRequests) == 5 && h.allTime(usage.Calls) == 1 })
	for cat, want := range map[string]int64{usage.CallsInbound: 1, usage.CallsClient: 1, usage.CallsOutbound: 0, usage.CallsSIP: 0} {
		if got := h.allTime(cat); got != want {
			t.Errorf("%s = %d, want %d", cat, got, want)
		}
	}
	recs, err := h.cli.Records(ctx, usage.RecordsQuery{AccountSid: acct, Category: usage.Calls})
	if err != nil || len(recs) != 1 || recs[0].Usage != 2 || recs[0].UsageUnit != "minutes" {
		t.Fatalf("records %+v %v (61 s is 2 billable minutes)", recs, err)
	}
	select {
	case <-rcv.notify:
		t.Fatal("trigger fired below its value")
	case <-time.After(200 * time.Millisecond):
	}
	for i, sid := range []string{"CA2", "CA3", "CA4"} {
		_ = h.pub.PublishAll(usage.CallEnded(acct, sid, "outbound", "sip", time.Second, time.Now()))
		if i == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	var cb callback
	select {
	case cb = <-rcv.notify:
	case <-time.After(5 * time.Second):
		t.Fatal("no callback")
	}
	if !cb.valid {
		t.Fatal("X-Twilio-Signature rejected by the helper library's validator")
	}
	want := map[string]string{"AccountSid": acct, "UsageTriggerSid": tr.Sid, "Recurring": "daily", "UsageCategory": "calls", "TriggerBy": "count", "TriggerValue": "3"}
	for k, v := range want {
		if cb.params[k] != v {
			t.Errorf("%s = %q, want %q", k, cb.params[k], v)
		}
	}
	for _, k := range []string{"DateFired", "CurrentValue", "UsageRecordUri", "IdempotencyToken"} {
		if cb.params[k] == "" {
			t.Errorf("callback lacks %s: %v", k, cb.params)
		}
	}
	select {
	case again := <-rcv.notify:
		t.Fatalf("fired twice in one period: %v", again.params)
	case <-time.After(300 * time.Millisecond):
	}
	got, err := h.cli.Trigger(ctx, acct, tr.Sid)
	if err != nil || got.DateFired.IsZero() || got.CurrentValue < 3 {
		t.Fatalf("trigger after firing %+v %v", got, err)
	}
	if st := h.pub.Stats(); st.Dropped != 0 || st.Published != 2*int64(len(call))+5+9 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTriggerActions(t *testing.T) {
	h := startHost(t, t.TempDir(), testConfig(), true)
	ctx := context.Background()
	for _, tr := range []usage.Trigger{
		{AccountSid: acct, UsageCategory: usage.Messages, TriggerValue: "2", TriggerBy: "count", Action: usagev1.ActionSuspendAccount},
		{AccountSid: acct, UsageCategory: usage.Messages, TriggerValue: "1", TriggerBy: "count", Action: usagev1.ActionLimitAdmission, ActionResource: "messages", ActionLimit: 1},
	} {
		if _, err := h.cli.CreateTrigger(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	publishN(t, h.pub, usage.Messages, 2, "m")
	waitFor(t, 5*time.Second, "actions", func() bool {
		h.acts.mu.Lock()
		defer h.acts.mu.Unlock()
		return len(h.acts.suspended) == 1 && len(h.acts.limits) == 1
	})
	if h.acts.limits[0] != acct+" messages 1" {
		t.Fatalf("limit action %q", h.acts.limits[0])
	}
}

func TestInvalidRequests(t *testing.T) {
	h := startHost(t, t.TempDir(), testConfig(), false)
	ctx := context.Background()
	_, err := h.cli.CreateTrigger(ctx, usage.Trigger{AccountSid: acct, UsageCategory: "pizzas", TriggerValue: "1", CallbackURL: "http://127.0.0.1/"})
	var inv *usage.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("bad category: %v", err)
	}
	if _, err := h.cli.Trigger(ctx, acct, "UT00000000000000000000000000000000"); !errors.Is(err, usage.ErrNotFound) {
		t.Fatalf("missing trigger: %v", err)
	}
	if err := h.pub.Publish(usage.Event{Category: usage.Calls}); !errors.Is(err, usage.ErrInvalidEvent) {
		t.Fatalf("event without account: %v", err)
	}
	if st := h.pub.Stats(); st.Dropped != 1 {
		t.Fatalf("invalid event not counted as dropped: %+v", st)
	}
}

// The plugin is SIGKILLed while events flow: nothing is lost once it is back.
func TestPluginKilledWhileEventsFlow(t *testing.T) {
	h := startHost(t, t.TempDir(), testConfig(), false)
	const n = 30000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 30 {
			publishN(t, h.pub, usage.APIRequests, n/30, "k"+string(rune('a'+i)))
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(30 * time.Millisecond)
	for range 2 {
		pid := h.pid(t)
		if pid == 0 {
			t.Fatal("plugin not running")
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "plugin restart", func() bool { p := h.pid(t); return p != 0 && p != pid })
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	waitFor(t, 20*time.Second, "every event counted", func() bool { return h.allTime(usage.APIRequests) == n })
	// The acknowledgement reaches the publisher's counters just after the
	// plugin's commit is visible to Records.
	waitFor(t, 5*time.Second, "replayed to catch up", func() bool { st := h.pub.Stats(); return st.Replayed >= st.Spooled })
	st := h.pub.Stats()
	if st.Published != n || st.Dropped != 0 || st.Spooled == 0 || st.Sent+st.Spooled < n {
		t.Fatalf("stats %+v", st)
	}
	time.Sleep(300 * time.Millisecond)
	if got := h.allTime(usage.APIRequests); got != n {
		t.Fatalf("count %d after replay, want %d (no double counting)", got, n)
	}
}

// Events published while no plugin serves usage wait in the spool and are
// replayed by the next host run.
func TestSpoolReplayAcrossHostRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	pub, err := usage.NewPublisher(noPlugin(t), cfg, usage.PublisherOptions{SpoolDir: filepath.Join(dir, "usage-spool"), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	pub.Start()
	publishN(t, pub, usage.SIPRegistrations, 1000, "reg")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := pub.Stats(); st.Spooled != 1000 || st.Sent != 0 || st.Dropped != 0 {
		t.Fatalf("stats without a plugin %+v", st)
	}
	h := startHost(t, dir, cfg, false)
	waitFor(t, 10*time.Second, "replay", func() bool { return h.allTime(usage.SIPRegistrations) == 1000 })
	waitFor(t, 5*time.Second, "spool emptied", func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "usage-spool", "*"))
		return len(files) == 0
	})
}

// The receiver is down for a while: the callback arrives later, every
// attempt with the same idempotency token.
func TestCallbackRetriedWithSameToken(t *testing.T) {
	h := startHost(t, t.TempDir(), testConfig(), true)
	rcv := newReceiver(t)
	rcv.status = func(n int) int {
		if n < 4 {
			return 503
		}
		return 200
	}
	_, err := h.cli.CreateTrigger(context.Background(), usage.Trigger{AccountSid: acct, UsageCategory: usage.Recordings, TriggerValue: "1.5",
		CallbackURL: rcv.srv.URL + "/cb", CallbackMethod: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	_ = h.pub.Publish(usage.Event{AccountSid: acct, Category: usage.Recordings, Count: 1, Usage: 2})
	var cb callback
	select {
	case cb = <-rcv.notify:
	case <-time.After(10 * time.Second):
		t.Fatalf("not delivered; attempts %d", len(rcv.all()))
	}
	all := rcv.all()
	if len(all) != 5 {
		t.Fatalf("%d attempts, want 5", len(all))
	}
	for i, c := range all {
		if c.params["IdempotencyToken"] != cb.params["IdempotencyToken"] || !c.valid {
			t.Fatalf("attempt %d: token %q valid=%v, want %q", i, c.params["IdempotencyToken"], c.valid, cb.params["IdempotencyToken"])
		}
	}
	waitFor(t, 2*time.Second, "delivery counted", func() bool { d, f := h.del.Counts(); return d == 1 && f == 4 })
}

// A trigger fired while no deliverer ran (host down) is delivered by the
// next host run.
func TestPendingOutboxDeliveredAfterHostRestart(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t)
	h := startHost(t, dir, testConfig(), false)
	tr, err := h.cli.CreateTrigger(context.Background(), usage.Trigger{AccountSid: acct, UsageCategory: usage.TwiMLFetches, TriggerValue: "2", TriggerBy: "count", CallbackURL: rcv.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, h.pub, usage.TwiMLFetches, 2, "tw")
	waitFor(t, 5*time.Second, "firing", func() bool {
		got, err := h.cli.Trigger(context.Background(), acct, tr.Sid)
		return err == nil && !got.DateFired.IsZero()
	})
	h.close()

	cfg := testConfig()
	cfg.Holder = "host-b"
	h2 := startHost(t, dir, cfg, true)
	select {
	case cb := <-rcv.notify:
		if cb.params["UsageTriggerSid"] != tr.Sid || !cb.valid {
			t.Fatalf("callback %+v", cb)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pending outbox entry not delivered after restart")
	}
	_ = h2
}
