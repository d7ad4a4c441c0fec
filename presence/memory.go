package presence

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// MemoryConfig configures a Memory registry.
type MemoryConfig struct {
	// Persister receives batched writes and restores bindings on start; nil
	// keeps bindings in memory only.
	Persister Persister
	// FlushInterval is how often dirty bindings are written (default 250ms).
	FlushInterval time.Duration
	// SweepInterval is how often expired bindings are removed (default 1s).
	SweepInterval time.Duration
	// MaxBindings bounds the bindings of one identity (default 32).
	MaxBindings int
	Now         func() time.Time
	Logger      *slog.Logger
}

type idKey struct{ account, identity string }

type identityState struct {
	bindings map[string]*Binding
	busy     bool
}

func (s *identityState) status() Status {
	switch {
	case s == nil || len(s.bindings) == 0:
		return Offline
	case s.busy:
		return Busy
	default:
		return Available
	}
}

// Memory is the embedded Registry: an in-memory index with write-behind
// persistence. REGISTER never waits for the disk: changes are collected and
// written in one transaction every FlushInterval by Run.
type Memory struct {
	cfg MemoryConfig
	bus *Bus
	log *slog.Logger

	mu    sync.Mutex
	ids   map[idKey]*identityState
	flows map[string]map[BindingKey]struct{}
	dirty map[BindingKey]*Binding // nil value: delete
	// next is no later than the earliest expiry of any binding held
	// (hasNext false: no binding): Sweep skips the walk over every identity
	// until then.
	next    time.Time
	hasNext bool

	flushMu sync.Mutex // one flush at a time
}

var _ Registry = (*Memory)(nil)

// NewMemory creates a registry and restores the unexpired bindings the
// persister holds.
func NewMemory(ctx context.Context, cfg MemoryConfig) (*Memory, error) {
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 250 * time.Millisecond
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Second
	}
	if cfg.MaxBindings <= 0 {
		cfg.MaxBindings = 32
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Memory{
		cfg:   cfg,
		bus:   NewBus(),
		log:   cfg.Logger.With("component", "presence"),
		ids:   map[idKey]*identityState{},
		flows: map[string]map[BindingKey]struct{}{},
		dirty: map[BindingKey]*Binding{},
	}
	if cfg.Persister != nil {
		bs, err := cfg.Persister.LoadBindings(ctx, cfg.Now())
		if err != nil {
			return nil, fmt.Errorf("restore bindings: %w", err)
		}
		m.mu.Lock()
		restored := 0
		for i := range bs {
			b := bs[i]
			if b.Transport == TransportWebRTC {
				// A browser session lived on a socket of the previous
				// process: it is gone, and so is its binding.
				m.dirty[b.BindingKey()] = nil
				continue
			}
			m.put(&b)
			restored++
		}
		m.mu.Unlock()
		m.log.Info("presence bindings restored", "bindings", restored)
	}
	return m, nil
}

// Events returns the registry's event bus.
func (m *Memory) Events() *Bus { return m.bus }

// Run sweeps expired bindings and flushes changes until ctx ends, then
// flushes once more.
func (m *Memory) Run(ctx context.Context) error {
	flush := time.NewTicker(m.cfg.FlushInterval)
	sweep := time.NewTicker(m.cfg.SweepInterval)
	defer flush.Stop()
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return m.Flush(fctx)
		case <-flush.C:
			if err := m.Flush(ctx); err != nil {
				m.log.Error("presence flush failed; will retry", "error", err)
			}
		case <-sweep.C:
			m.Sweep()
		}
	}
}

// Flush writes pending changes to the persister now.
func (m *Memory) Flush(ctx context.Context) error {
	if m.cfg.Persister == nil {
		return nil
	}
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	m.mu.Lock()
	if len(m.dirty) == 0 {
		m.mu.Unlock()
		return nil
	}
	batch := m.dirty
	// Sized like the last batch: a map grown from empty to thousands of
	// entries every interval spent more on splitting tables than the
	// write-behind spends in Go.
	m.dirty = make(map[BindingKey]*Binding, min(len(batch), 1<<16))
	m.mu.Unlock()

	ups := make([]Binding, 0, len(batch))
	var dels []BindingKey
	for k, b := range batch {
		if b == nil {
			dels = append(dels, k)
		} else {
			ups = append(ups, *b)
		}
	}
	if err := m.cfg.Persister.SaveBindings(ctx, ups, dels); err != nil {
		// Put back what nobody changed since, so the next flush retries it.
		m.mu.Lock()
		for k, b := range batch {
			if _, newer := m.dirty[k]; !newer {
				m.dirty[k] = b
			}
		}
		m.mu.Unlock()
		return fmt.Errorf("persist %d bindings: %w", len(batch), err)
	}
	return nil
}

// put indexes b (m.mu held) without marking it dirty.
func (m *Memory) put(b *Binding) {
	if !m.hasNext || b.Expires.Before(m.next) {
		m.next, m.hasNext = b.Expires, true
	}
	k := idKey{b.AccountSid, b.Identity}
	st := m.ids[k]
	if st == nil {
		st = &identityState{bindings: map[string]*Binding{}}
		m.ids[k] = st
	}
	if old := st.bindings[b.Key]; old != nil && old.FlowID != b.FlowID {
		m.unindexFlow(old)
	}
	st.bindings[b.Key] = b
	if b.FlowID != "" {
		set := m.flows[b.FlowID]
		if set == nil {
			set = map[BindingKey]struct{}{}
			m.flows[b.FlowID] = set
		}
		set[b.BindingKey()] = struct{}{}
	}
}

func (m *Memory) unindexFlow(b *Binding) {
	if b.FlowID == "" {
		return
	}
	if set := m.flows[b.FlowID]; set != nil {
		delete(set, b.BindingKey())
		if len(set) == 0 {
			delete(m.flows, b.FlowID)
		}
	}
}

// remove deletes one binding (m.mu held) and marks it dirty.
func (m *Memory) remove(st *identityState, b *Binding) {
	m.unindexFlow(b)
	delete(st.bindings, b.Key)
	m.dirty[b.BindingKey()] = nil
}

// settle drops an empty identity and publishes a change (m.mu held).
func (m *Memory) settle(k idKey, st *identityState, before Status, beforeN int, now time.Time) {
	after := st.status()
	n := len(st.bindings)
	if n == 0 && !st.busy {
		delete(m.ids, k)
	}
	if after != before || n != beforeN {
		m.bus.Publish(Event{AccountSid: k.account, Identity: k.identity, Status: after, Previous: before, Bindings: n, At: now})
	}
}

// Apply implements Registry.
func (m *Memory) Apply(ctx context.Context, u Update) ([]Binding, error) {
	now := u.Now
	if now.IsZero() {
		now = m.cfg.Now()
	}
	k := idKey{u.AccountSid, u.Identity}
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.ids[k]
	if st == nil {
		st = &identityState{bindings: map[string]*Binding{}}
		m.ids[k] = st
	}
	before, beforeN := st.status(), len(st.bindings)
	// Expired bindings do not take part in ordering checks or limits.
	for _, b := range st.bindings {
		if !b.Expires.After(now) {
			m.remove(st, b)
		}
	}
	outOfOrder := func(key string) bool {
		old := st.bindings[key]
		return old != nil && old.CallID == u.CallID && u.CSeq <= old.CSeq
	}
	if u.RemoveAll {
		for key := range st.bindings {
			if outOfOrder(key) {
				m.settle(k, st, before, beforeN, now)
				return nil, ErrOutOfOrder
			}
		}
		for _, b := range st.bindings {
			m.remove(st, b)
		}
	} else {
		added := 0
		for _, c := range u.Contacts {
			if outOfOrder(c.Key) {
				m.settle(k, st, before, beforeN, now)
				return nil, ErrOutOfOrder
			}
			if st.bindings[c.Key] == nil && c.Expires.After(now) {
				added++
			}
		}
		if len(st.bindings)+added > m.cfg.MaxBindings {
			m.settle(k, st, before, beforeN, now)
			return nil, ErrTooManyBindings
		}
		for _, c := range u.Contacts {
			if !c.Expires.After(now) {
				if old := st.bindings[c.Key]; old != nil {
					m.remove(st, old)
				}
				continue
			}
			b := c
			b.AccountSid, b.Identity, b.CallID, b.CSeq, b.Updated = u.AccountSid, u.Identity, u.CallID, u.CSeq, now
			m.put(&b)
			m.dirty[b.BindingKey()] = &b // bindings are never changed once put: Flush may share it
		}
	}
	out := sortedBindings(st, now)
	m.settle(k, st, before, beforeN, now)
	return out, nil
}

func sortedBindings(st *identityState, now time.Time) []Binding {
	if st == nil {
		return nil
	}
	out := make([]Binding, 0, len(st.bindings))
	for _, b := range st.bindings {
		if b.Expires.After(now) {
			out = append(out, *b)
		}
	}
	slices.SortFunc(out, func(a, b Binding) int {
		if c := cmp.Compare(b.Q, a.Q); c != 0 {
			return c
		}
		return b.Updated.Compare(a.Updated)
	})
	return out
}

// Bindings implements Registry.
func (m *Memory) Bindings(ctx context.Context, accountSid, identity string) ([]Binding, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedBindings(m.ids[idKey{accountSid, identity}], m.cfg.Now()), nil
}

// Get implements Registry.
func (m *Memory) Get(ctx context.Context, accountSid, identity string) (Presence, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.ids[idKey{accountSid, identity}]
	bs := sortedBindings(st, m.cfg.Now())
	p := Presence{AccountSid: accountSid, Identity: identity, Status: Offline, Bindings: bs}
	if len(bs) > 0 {
		p.Status = st.status()
	}
	return p, nil
}

// List implements Registry.
func (m *Memory) List(ctx context.Context, accountSid string) ([]Presence, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	var out []Presence
	for k, st := range m.ids {
		if k.account != accountSid {
			continue
		}
		bs := sortedBindings(st, now)
		if len(bs) == 0 {
			continue
		}
		out = append(out, Presence{AccountSid: k.account, Identity: k.identity, Status: st.status(), Bindings: bs})
	}
	slices.SortFunc(out, func(a, b Presence) int { return cmp.Compare(a.Identity, b.Identity) })
	return out, nil
}

// SetBusy implements Registry.
func (m *Memory) SetBusy(ctx context.Context, accountSid, identity string, busy bool) error {
	k := idKey{accountSid, identity}
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.ids[k]
	if st == nil {
		if !busy {
			return nil
		}
		st = &identityState{bindings: map[string]*Binding{}}
		m.ids[k] = st
	}
	before, n := st.status(), len(st.bindings)
	st.busy = busy
	m.settle(k, st, before, n, m.cfg.Now())
	return nil
}

// DropFlow implements Registry.
func (m *Memory) DropFlow(ctx context.Context, flowID string) error {
	if flowID == "" {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.flows[flowID]
	if len(set) == 0 {
		return nil
	}
	keys := make([]BindingKey, 0, len(set))
	for bk := range set {
		keys = append(keys, bk)
	}
	now := m.cfg.Now()
	for _, bk := range keys {
		k := idKey{bk.AccountSid, bk.Identity}
		st := m.ids[k]
		if st == nil {
			continue
		}
		b := st.bindings[bk.Key]
		if b == nil || b.FlowID != flowID {
			continue
		}
		before, n := st.status(), len(st.bindings)
		m.remove(st, b)
		m.settle(k, st, before, n, now)
	}
	delete(m.flows, flowID)
	return nil
}

// Sweep removes expired bindings now (Run calls it periodically).
func (m *Memory) Sweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	if !m.hasNext || now.Before(m.next) {
		return // nothing can have expired yet
	}
	m.hasNext = false
	for k, st := range m.ids {
		before, n := st.status(), len(st.bindings)
		for _, b := range st.bindings {
			if !b.Expires.After(now) {
				m.remove(st, b)
			} else if !m.hasNext || b.Expires.Before(m.next) {
				m.next, m.hasNext = b.Expires, true
			}
		}
		if len(st.bindings) != n {
			m.settle(k, st, before, n, now)
		}
	}
}

// Len returns the number of bindings held.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, st := range m.ids {
		n += len(st.bindings)
	}
	return n
}
