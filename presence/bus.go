package presence

import (
	"sync"
	"sync/atomic"
	"time"
)

// Event is a change of an identity's status.
type Event struct {
	AccountSid string
	Identity   string
	Status     Status
	Previous   Status
	Bindings   int // bindings after the change
	At         time.Time
}

// Bus is an in-process fan-out of presence events. Publishing never blocks:
// a subscriber whose buffer is full misses the event (counted in Dropped).
type Bus struct {
	mu      sync.RWMutex
	subs    map[*Subscription]struct{}
	dropped atomic.Uint64
}

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{subs: map[*Subscription]struct{}{}} }

// Subscription receives events until Close.
type Subscription struct {
	C      <-chan Event
	c      chan Event
	bus    *Bus
	once   sync.Once
	filter func(Event) bool
}

// Subscribe returns a subscription with the given buffer size (minimum 1).
// filter, when not nil, selects the events to deliver.
func (b *Bus) Subscribe(buffer int, filter func(Event) bool) *Subscription {
	if buffer < 1 {
		buffer = 1
	}
	c := make(chan Event, buffer)
	s := &Subscription{C: c, c: c, bus: b, filter: filter}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Close unsubscribes and closes C.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		close(s.c)
		s.bus.mu.Unlock()
	})
}

// Publish delivers e to every subscriber that has room.
func (b *Bus) Publish(e Event) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		if s.filter != nil && !s.filter(e) {
			continue
		}
		select {
		case s.c <- e:
		default:
			b.dropped.Add(1)
		}
	}
}

// Dropped returns how many deliveries were skipped because a buffer was full.
func (b *Bus) Dropped() uint64 { return b.dropped.Load() }
