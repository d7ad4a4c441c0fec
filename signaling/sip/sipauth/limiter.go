package sipauth

import (
	"sync"
	"time"
)

// failLimiter counts failed authentications per source IP with a token
// bucket: burst failures are allowed, refilled at burst per window.
type failLimiter struct {
	burst  float64
	window time.Duration

	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newFailLimiter(burst int, window time.Duration) *failLimiter {
	return &failLimiter{burst: float64(burst), window: window, m: map[string]*bucket{}}
}

func (l *failLimiter) refill(b *bucket, now time.Time) {
	b.tokens += now.Sub(b.last).Seconds() / l.window.Seconds() * l.burst
	if b.tokens > l.burst {
		b.tokens = l.burst
	}
	b.last = now
}

// blocked reports whether ip has used up its failures.
func (l *failLimiter) blocked(ip string, now time.Time) bool {
	if l.burst <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[ip]
	if b == nil {
		return false
	}
	l.refill(b, now)
	return b.tokens < 1
}

// fail records one failure.
func (l *failLimiter) fail(ip string, now time.Time) {
	if l.burst <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[ip]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.m[ip] = b
	}
	l.refill(b, now)
	b.tokens--
}

func (l *failLimiter) sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ip, b := range l.m {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.m, ip)
		}
	}
}
