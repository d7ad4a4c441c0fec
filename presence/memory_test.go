package presence

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// recorder is a Persister kept in a map, like the SQLite one.
type recorder struct {
	mu      sync.Mutex
	rows    map[BindingKey]Binding
	batches int
	failN   int // fail this many SaveBindings calls
}

func newRecorder() *recorder { return &recorder{rows: map[BindingKey]Binding{}} }

func (r *recorder) SaveBindings(ctx context.Context, ups []Binding, dels []BindingKey) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failN > 0 {
		r.failN--
		return errors.New("disk full")
	}
	r.batches++
	for _, k := range dels {
		delete(r.rows, k)
	}
	for _, b := range ups {
		r.rows[b.BindingKey()] = b
	}
	return nil
}

func (r *recorder) LoadBindings(ctx context.Context, now time.Time) ([]Binding, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Binding
	for _, b := range r.rows {
		if b.Expires.After(now) {
			out = append(out, b)
		}
	}
	return out, nil
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.rows)
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestMemory(t *testing.T, p Persister, max int) (*Memory, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	m, err := NewMemory(context.Background(), MemoryConfig{Persister: p, Now: clk.Now, MaxBindings: max})
	if err != nil {
		t.Fatal(err)
	}
	return m, clk
}

func contact(key string, exp time.Time, flow string) Binding {
	return Binding{Key: key, Contact: key, Expires: exp, Transport: TransportTCP, FlowID: flow}
}

func TestApplyRFC3261Rules(t *testing.T) {
	ctx := context.Background()
	m, clk := newTestMemory(t, nil, 3)
	now := clk.Now()
	up := func(callID string, cseq uint32, cs ...Binding) ([]Binding, error) {
		return m.Apply(ctx, Update{AccountSid: "AC1", Identity: "client:a", CallID: callID, CSeq: cseq, Contacts: cs, Now: clk.Now()})
	}
	tests := []struct {
		name    string
		run     func() ([]Binding, error)
		wantErr error
		wantN   int
	}{
		{"add two", func() ([]Binding, error) {
			return up("c1", 1, contact("sip:1@h", now.Add(time.Hour), "f1"), contact("sip:2@h", now.Add(time.Hour), "f1"))
		}, nil, 2},
		{"same call-id, same cseq is out of order", func() ([]Binding, error) { return up("c1", 1, contact("sip:1@h", now.Add(time.Hour), "f1")) }, ErrOutOfOrder, 2},
		{"same call-id, lower cseq is out of order", func() ([]Binding, error) { return up("c1", 0, contact("sip:1@h", now, "f1")) }, ErrOutOfOrder, 2},
		{"higher cseq refreshes", func() ([]Binding, error) { return up("c1", 2, contact("sip:1@h", now.Add(2*time.Hour), "f2")) }, nil, 2},
		{"too many", func() ([]Binding, error) {
			return up("c2", 1, contact("sip:3@h", now.Add(time.Hour), ""), contact("sip:4@h", now.Add(time.Hour), ""))
		}, ErrTooManyBindings, 2},
		{"other call-id removes with expires now", func() ([]Binding, error) { return up("c9", 1, contact("sip:2@h", now, "")) }, nil, 1},
		{"remove all out of order", func() ([]Binding, error) {
			return m.Apply(ctx, Update{AccountSid: "AC1", Identity: "client:a", CallID: "c1", CSeq: 2, RemoveAll: true, Now: clk.Now()})
		}, ErrOutOfOrder, 1},
		{"remove all", func() ([]Binding, error) {
			return m.Apply(ctx, Update{AccountSid: "AC1", Identity: "client:a", CallID: "c1", CSeq: 3, RemoveAll: true, Now: clk.Now()})
		}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.run()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			bs, _ := m.Bindings(ctx, "AC1", "client:a")
			if len(bs) != tt.wantN {
				t.Fatalf("%d bindings, want %d: %+v", len(bs), tt.wantN, bs)
			}
		})
	}
}

func TestStatusEventsFlowsAndExpiry(t *testing.T) {
	ctx := context.Background()
	m, clk := newTestMemory(t, nil, 0)
	sub := m.Events().Subscribe(16, nil)
	defer sub.Close()
	next := func() Event {
		t.Helper()
		select {
		case e := <-sub.C:
			return e
		case <-time.After(time.Second):
			t.Fatal("no event")
		}
		return Event{}
	}
	now := clk.Now()
	if _, err := m.Apply(ctx, Update{AccountSid: "AC1", Identity: "client:a", CallID: "c", CSeq: 1, Now: now,
		Contacts: []Binding{contact("k1", now.Add(time.Minute), "tcp/1"), contact("k2", now.Add(time.Hour), "tcp/2")}}); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Status != Available || e.Previous != Offline || e.Bindings != 2 {
		t.Fatalf("event %+v", e)
	}
	if err := m.SetBusy(ctx, "AC1", "client:a", true); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Status != Busy {
		t.Fatalf("event %+v", e)
	}
	if err := m.SetBusy(ctx, "AC1", "client:a", false); err != nil {
		t.Fatal(err)
	}
	next()
	// The connection of k2 closes.
	if err := m.DropFlow(ctx, "tcp/2"); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Status != Available || e.Bindings != 1 {
		t.Fatalf("event %+v", e)
	}
	if err := m.DropFlow(ctx, "tcp/unknown"); err != nil {
		t.Fatal(err)
	}
	// k1 expires.
	clk.Add(2 * time.Minute)
	m.Sweep()
	if e := next(); e.Status != Offline || e.Previous != Available {
		t.Fatalf("event %+v", e)
	}
	p, _ := m.Get(ctx, "AC1", "client:a")
	if p.Status != Offline || len(p.Bindings) != 0 {
		t.Fatalf("presence %+v", p)
	}
	if l, _ := m.List(ctx, "AC1"); len(l) != 0 {
		t.Fatalf("list %+v", l)
	}
}

func TestWriteBehindFlushRetryAndRestore(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder()
	m, clk := newTestMemory(t, rec, 0)
	now := clk.Now()
	for i := 0; i < 50; i++ {
		if _, err := m.Apply(ctx, Update{AccountSid: "AC1", Identity: "client:a", CallID: "c", CSeq: uint32(i + 1), Now: now,
			Contacts: []Binding{contact("k", now.Add(time.Hour), "")}}); err != nil {
			t.Fatal(err)
		}
	}
	if rec.len() != 0 {
		t.Fatal("Apply wrote synchronously")
	}
	rec.failN = 1
	if err := m.Flush(ctx); err == nil {
		t.Fatal("flush error swallowed")
	}
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rec.len() != 1 || rec.batches != 1 {
		t.Fatalf("rows %d batches %d: 50 refreshes should be one row in one batch", rec.len(), rec.batches)
	}
	if rec.rows[BindingKey{"AC1", "client:a", "k"}].CSeq != 50 {
		t.Fatal("latest refresh not persisted")
	}
	// Restore into a new registry.
	m2, _ := newTestMemory(t, rec, 0)
	if p, _ := m2.Get(ctx, "AC1", "client:a"); p.Status != Available || len(p.Bindings) != 1 {
		t.Fatalf("restored %+v", p)
	}
	// Deletions are persisted too.
	if _, err := m2.Apply(ctx, Update{AccountSid: "AC1", Identity: "client:a", CallID: "c", CSeq: 51, RemoveAll: true, Now: now}); err != nil {
		t.Fatal(err)
	}
	if err := m2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rec.len() != 0 {
		t.Fatal("delete not persisted")
	}
}

func TestRunFlushesOnStop(t *testing.T) {
	rec := newRecorder()
	m, clk := newTestMemory(t, rec, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	now := clk.Now()
	if _, err := m.Apply(context.Background(), Update{AccountSid: "AC1", Identity: "client:b", CallID: "c", CSeq: 1, Now: now,
		Contacts: []Binding{contact("k", now.Add(time.Hour), "")}}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rec.len() != 1 {
		t.Fatal("not flushed on stop")
	}
}

func TestBusNeverBlocks(t *testing.T) {
	b := NewBus()
	slow := b.Subscribe(1, nil)
	filtered := b.Subscribe(4, func(e Event) bool { return e.Identity == "client:x" })
	done := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			b.Publish(Event{Identity: "client:y"})
		}
		b.Publish(Event{Identity: "client:x"})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Publish blocked on a full subscriber")
	}
	if b.Dropped() != 100 {
		t.Fatalf("dropped %d, want 100", b.Dropped())
	}
	if e := <-filtered.C; e.Identity != "client:x" || len(filtered.C) != 0 {
		t.Fatalf("filtered got %+v", e)
	}
	slow.Close()
	slow.Close()
	if _, ok := <-slow.C; !ok {
		t.Fatal("the buffered event was lost on Close")
	}
	if _, ok := <-slow.C; ok {
		t.Fatal("C not closed after Close")
	}
	b.Publish(Event{}) // no panic after Close
}

// Browser-session bindings (transport webrtc) die with the process that
// held their socket: they are not restored, and their rows are deleted.
func TestWebRTCBindingsNotRestored(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder()
	m, clk := newTestMemory(t, rec, 0)
	now := clk.Now()
	web := Binding{Key: "webrtc-1", Contact: "sip:webrtc-1@webrtc.invalid", Expires: now.Add(time.Hour), Transport: TransportWebRTC, FlowID: "webrtc-1"}
	for i, b := range []Binding{contact("sip", now.Add(time.Hour), "f1"), web} {
		if _, err := m.Apply(ctx, Update{AccountSid: "AC1", Identity: "client:a", CallID: b.Key, CSeq: uint32(i + 1), Now: now, Contacts: []Binding{b}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rec.len() != 2 {
		t.Fatalf("%d rows persisted", rec.len())
	}
	m2, _ := newTestMemory(t, rec, 0)
	p, _ := m2.Get(ctx, "AC1", "client:a")
	if len(p.Bindings) != 1 || p.Bindings[0].Transport != TransportTCP {
		t.Fatalf("restored %+v", p.Bindings)
	}
	if err := m2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rec.len() != 1 {
		t.Fatalf("the webrtc row was not deleted: %d rows", rec.len())
	}
}

// Sweep skips its walk until the earliest expiry, which every new binding
// can move earlier.
func TestSweepEarliestExpiry(t *testing.T) {
	ctx := context.Background()
	m, clk := newTestMemory(t, nil, 0)
	now := clk.Now()
	apply := func(id, key string, exp time.Time) {
		t.Helper()
		if _, err := m.Apply(ctx, Update{AccountSid: "AC1", Identity: id, CallID: id + key, CSeq: 1, Now: clk.Now(),
			Contacts: []Binding{contact(key, exp, "")}}); err != nil {
			t.Fatal(err)
		}
	}
	apply("client:a", "k1", now.Add(time.Hour))
	clk.Add(time.Minute)
	m.Sweep() // nothing expired; remembers the hour
	apply("client:b", "k2", clk.Now().Add(time.Minute))
	clk.Add(2 * time.Minute)
	m.Sweep()
	if m.Len() != 1 {
		t.Fatalf("%d bindings after the earlier one expired, want 1", m.Len())
	}
	clk.Add(time.Hour)
	m.Sweep()
	if m.Len() != 0 {
		t.Fatalf("%d bindings after every expiry", m.Len())
	}
	// A binding added after a sweep that found none still expires.
	apply("client:c", "k3", clk.Now().Add(time.Minute))
	clk.Add(2 * time.Minute)
	m.Sweep()
	if m.Len() != 0 {
		t.Fatal("binding added after an empty sweep never expired")
	}
}
