package sipauth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/presence"
)

// credCache keeps Digest credential lookups (and definite misses) for a
// short time so that a REGISTER does not cost a database query: at
// thousands of registrations per second the SQLite lookup was the largest
// cost of the registrar. Changes to credentials take effect after ttl, or at
// once through Authenticator.ForgetCredentials.
type credCache struct {
	ttl time.Duration
	max int
	// gen is bumped by forget; an entry read before a forget is never used
	// after it (also when the read finished after the forget).
	gen *atomic.Uint64

	mu sync.Mutex
	m  map[credKey]credEntry
}

type credKey struct{ domain, user string }

type credEntry struct {
	cred    presence.DigestCredential
	err     error
	expires time.Time
	gen     uint64
}

func newCredCache(ttl time.Duration, max int, gen *atomic.Uint64) *credCache {
	return &credCache{ttl: ttl, max: max, gen: gen, m: map[credKey]credEntry{}}
}

func cacheable(err error) bool {
	return err == nil || errors.Is(err, presence.ErrUnknownDomain) || errors.Is(err, presence.ErrUnknownUser) ||
		errors.Is(err, presence.ErrRegistrationDisabled)
}

func (c *credCache) lookup(ctx context.Context, src Credentials, domain, user string, now time.Time) (presence.DigestCredential, error) {
	if c.ttl <= 0 {
		return src.DigestCredential(ctx, domain, user)
	}
	k := credKey{strings.ToLower(domain), user}
	gen := c.gen.Load()
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok && e.gen == gen && now.Before(e.expires) {
		return e.cred, e.err
	}
	cred, err := src.DigestCredential(ctx, domain, user)
	if !cacheable(err) {
		return cred, err
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		c.evictLocked(now)
	}
	c.m[k] = credEntry{cred: cred, err: err, expires: now.Add(c.ttl), gen: gen}
	c.mu.Unlock()
	return cred, err
}

// evictLocked drops expired entries, and if none were, about a tenth of the
// cache (map order is random enough for this).
func (c *credCache) evictLocked(now time.Time) {
	before := len(c.m)
	for k, e := range c.m {
		if !now.Before(e.expires) {
			delete(c.m, k)
		}
	}
	if len(c.m) < before {
		return
	}
	n := max(1, c.max/10)
	for k := range c.m {
		if n == 0 {
			break
		}
		delete(c.m, k)
		n--
	}
}

func (c *credCache) forget() {
	c.gen.Add(1)
	c.mu.Lock()
	c.m = map[credKey]credEntry{}
	c.mu.Unlock()
}
