package store

import (
	"sync"
	"time"

	"github.com/parleyhq/parley/presence/accesstoken"
)

// SigningKeyTTL is how long SigningKey answers from memory. Every Bearer
// REGISTER, INVITE and MESSAGE verifies a token; without the cache each one
// was a SQLite read through cgo (≈ 40 µs, most of a Bearer REGISTER's cost).
// This store's own writes (RevokeKey, UpdateAccount) empty the cache at once;
// another process writing the same file (the CLI's `parley key revoke` while
// the server runs) is seen within the TTL.
const SigningKeyTTL = time.Second

// keyCache holds found signing keys (never "unknown key": a key created by
// another process must work at once). gen counts the writes that emptied it,
// so that a read which started before a write does not store what it read.
type keyCache struct {
	ttl time.Duration
	mu  sync.Mutex
	gen uint64
	m   map[string]cachedKey
}

type cachedKey struct {
	key     accesstoken.SigningKey
	expires time.Time
}

// maxCachedKeys bounds the cache; when full it starts again empty.
const maxCachedKeys = 100_000

func newKeyCache(ttl time.Duration) *keyCache {
	return &keyCache{ttl: ttl, m: map[string]cachedKey{}}
}

// get returns the cached key and the generation to pass to put on a miss.
func (c *keyCache) get(sid string, now time.Time) (accesstoken.SigningKey, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[sid]
	if ok && now.Before(e.expires) {
		return e.key, true, c.gen
	}
	return accesstoken.SigningKey{}, false, c.gen
}

// put stores a key read from the database, unless a write emptied the cache
// since gen was taken.
func (c *keyCache) put(k accesstoken.SigningKey, gen uint64, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.m) >= maxCachedKeys {
		clear(c.m)
	}
	c.m[k.Sid] = cachedKey{key: k, expires: now.Add(c.ttl)}
}

// forget empties the cache: a key or an account changed.
func (c *keyCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.m)
}
