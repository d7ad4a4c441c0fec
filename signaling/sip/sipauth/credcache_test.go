package sipauth

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/presence"
)

type countingCreds struct {
	calls int
	err   error
}

func (c *countingCreds) DigestCredential(ctx context.Context, domain, user string) (presence.DigestCredential, error) {
	c.calls++
	if c.err != nil {
		return presence.DigestCredential{}, c.err
	}
	if user == "ghost" {
		return presence.DigestCredential{}, fmt.Errorf("%w: %s", presence.ErrUnknownUser, user)
	}
	return presence.DigestCredential{AccountSid: "AC1", Domain: domain, Username: user, HA1MD5: "x"}, nil
}

func TestCredCache(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	src := &countingCreds{}
	c := newCredCache(30*time.Second, 3, new(atomic.Uint64))
	for i := 0; i < 3; i++ {
		if cred, err := c.lookup(ctx, src, "PBX.test", "alice", now); err != nil || cred.Username != "alice" {
			t.Fatalf("lookup: %+v %v", cred, err)
		}
	}
	if src.calls != 1 {
		t.Fatalf("%d source calls, want 1 (domain case must not matter)", src.calls)
	}
	for i := 0; i < 2; i++ {
		if _, err := c.lookup(ctx, src, "pbx.test", "ghost", now); !errors.Is(err, presence.ErrUnknownUser) {
			t.Fatalf("miss: %v", err)
		}
	}
	if src.calls != 2 {
		t.Fatalf("misses not cached: %d calls", src.calls)
	}
	// Expiry.
	c.lookup(ctx, src, "pbx.test", "alice", now.Add(31*time.Second))
	if src.calls != 3 {
		t.Fatalf("expired entry reused: %d calls", src.calls)
	}
	// Transient errors are not cached.
	src.err = errors.New("database is locked")
	for i := 0; i < 2; i++ {
		if _, err := c.lookup(ctx, src, "pbx.test", "bob", now); err == nil {
			t.Fatal("transient error lost")
		}
	}
	if src.calls != 5 {
		t.Fatalf("transient error cached: %d calls", src.calls)
	}
	src.err = nil
	// The size bound holds.
	for i := 0; i < 10; i++ {
		c.lookup(ctx, src, "pbx.test", fmt.Sprint("u", i), now)
	}
	if len(c.m) > 3 {
		t.Fatalf("cache grew to %d entries (max 3)", len(c.m))
	}
	c.forget()
	calls := src.calls
	c.lookup(ctx, src, "pbx.test", "u9", now)
	if src.calls != calls+1 {
		t.Fatal("forget kept entries")
	}
	// Disabled cache always asks.
	off := newCredCache(-1, 10, new(atomic.Uint64))
	off.lookup(ctx, src, "pbx.test", "alice", now)
	off.lookup(ctx, src, "pbx.test", "alice", now)
	if src.calls != calls+3 {
		t.Fatal("disabled cache cached")
	}
}

type forgettingCreds struct {
	countingCreds
	during func()
}

func (f *forgettingCreds) DigestCredential(ctx context.Context, domain, user string) (presence.DigestCredential, error) {
	if f.during != nil {
		f.during()
	}
	return f.countingCreds.DigestCredential(ctx, domain, user)
}

// A lookup that was reading when ForgetCredentials ran must not leave its
// (possibly old) answer in the cache.
func TestCredCacheForgetDuringLookup(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	c := newCredCache(30*time.Second, 10, new(atomic.Uint64))
	src := &forgettingCreds{}
	src.during = c.forget
	c.lookup(ctx, src, "pbx.test", "alice", now)
	src.during = nil
	c.lookup(ctx, src, "pbx.test", "alice", now)
	if src.calls != 2 {
		t.Fatalf("answer read across a forget was cached (%d source calls, want 2)", src.calls)
	}
	c.lookup(ctx, src, "pbx.test", "alice", now)
	if src.calls != 2 {
		t.Fatalf("answer read after the forget was not cached (%d calls)", src.calls)
	}
}
