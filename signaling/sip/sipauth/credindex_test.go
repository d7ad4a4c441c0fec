package sipauth

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/presence"
)

// fakeDomains is a DomainCredentialSource whose every user's HA1 encodes a
// version number, so that a test can tell old data from new.
type fakeDomains struct {
	mu      sync.Mutex
	users   map[string]int // domain → user count (users u0 … uN-1); absent: unknown domain
	version int
	loads   atomic.Int32
	// block, when set, is waited on inside a load (after the data is read),
	// after a send on entered.
	block, entered chan struct{}
}

func ha1Version(v int) string { return fmt.Sprintf("%032x", v) }

func (f *fakeDomains) DomainDigestCredentials(ctx context.Context, domain string, max int, each func(presence.DigestCredential)) (string, error) {
	f.loads.Add(1)
	f.mu.Lock()
	n, ok := f.users[domain]
	v := f.version
	block, entered := f.block, f.entered
	f.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("%w: %s", presence.ErrUnknownDomain, domain)
	}
	if n > max {
		return "", fmt.Errorf("%w: %d", presence.ErrTooManyCredentials, n)
	}
	if block != nil {
		entered <- struct{}{}
		<-block
	}
	for i := 0; i < n; i++ {
		each(presence.DigestCredential{AccountSid: "AC1", Domain: domain, Username: "u" + strconv.Itoa(i), Realm: "parley",
			HA1MD5: ha1Version(v), HA1SHA256: ha1Version(v) + ha1Version(v)})
	}
	return "AC1", nil
}

func (f *fakeDomains) RegistrationDomains(ctx context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for d := range f.users {
		out = append(out, d)
	}
	return out, nil
}

func (f *fakeDomains) set(version int) {
	f.mu.Lock()
	f.version = version
	f.mu.Unlock()
}

// waitLoaded waits until no load is in flight.
func waitLoaded(t *testing.T, x *credIndex) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		x.mu.RLock()
		n := len(x.loading)
		x.mu.RUnlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("credential index load did not finish")
		}
		time.Sleep(time.Millisecond)
	}
}

func newTestIndex(src *fakeDomains, max int, now func() time.Time) (*credIndex, *atomic.Uint64) {
	gen := new(atomic.Uint64)
	return newCredIndex(src, 30*time.Second, max, gen, now, func(string, ...any) {}), gen
}

func TestCredIndexHitsMissesAndLoading(t *testing.T) {
	src := &fakeDomains{users: map[string]int{"pbx.test": 3}}
	now := time.Unix(1_800_000_000, 0)
	x, _ := newTestIndex(src, 100, func() time.Time { return now })
	// Not loaded yet: the caller must ask the database, and a load starts.
	if _, _, ok := x.lookup("PBX.test", "u1", now); ok {
		t.Fatal("answered before loading")
	}
	waitLoaded(t, x)
	cred, err, ok := x.lookup("PBX.test", "u1", now)
	if !ok || err != nil || cred.Username != "u1" || cred.Domain != "pbx.test" || cred.AccountSid != "AC1" ||
		cred.Realm != "parley" || cred.HA1MD5 != ha1Version(0) || cred.HA1SHA256 != ha1Version(0)+ha1Version(0) {
		t.Fatalf("hit: %+v %v %v", cred, err, ok)
	}
	// Misses are left to the database (a user added without notice can register).
	if _, _, ok := x.lookup("pbx.test", "nobody", now); ok {
		t.Fatal("miss answered by the index")
	}
	if _, _, ok := x.lookup("unknown.test", "u1", now); ok {
		t.Fatal("unknown domain answered by the index")
	}
	waitLoaded(t, x)
	if d, c := x.size(); d != 2 || c != 3 {
		t.Fatalf("size %d domains %d credentials, want 2 and 3", d, c)
	}
	// The unknown domain is remembered: no reload at every REGISTER.
	loads := src.loads.Load()
	for i := 0; i < 10; i++ {
		x.lookup("unknown.test", "u1", now)
	}
	waitLoaded(t, x)
	if src.loads.Load() != loads {
		t.Fatalf("unknown domain reloaded %d times", src.loads.Load()-loads)
	}
}

func TestCredIndexForgetAndAge(t *testing.T) {
	src := &fakeDomains{users: map[string]int{"pbx.test": 2}}
	var clock atomic.Int64
	clock.Store(time.Unix(1_800_000_000, 0).UnixNano())
	nowf := func() time.Time { return time.Unix(0, clock.Load()) }
	x, gen := newTestIndex(src, 100, nowf)
	x.preload(context.Background())
	if cred, _, ok := x.lookup("pbx.test", "u0", nowf()); !ok || cred.HA1MD5 != ha1Version(0) {
		t.Fatalf("preloaded domain not served: %+v %v", cred, ok)
	}
	// A change announced by forget is never answered with old data.
	src.set(1)
	gen.Add(1)
	if _, _, ok := x.lookup("pbx.test", "u0", nowf()); ok {
		t.Fatal("index answered from a snapshot taken before forget")
	}
	waitLoaded(t, x)
	if cred, _, ok := x.lookup("pbx.test", "u0", nowf()); !ok || cred.HA1MD5 != ha1Version(1) {
		t.Fatalf("reloaded domain: %+v %v", cred, ok)
	}
	// A forget while a load is reading makes that load's snapshot stale.
	src.mu.Lock()
	src.block, src.entered = make(chan struct{}), make(chan struct{})
	src.mu.Unlock()
	gen.Add(1) // forget: reload starts and blocks in the source
	x.lookup("pbx.test", "u0", nowf())
	<-src.entered
	src.set(2)
	gen.Add(1) // another change while the read is in flight
	close(src.block)
	waitLoaded(t, x)
	src.mu.Lock()
	src.block = nil
	src.mu.Unlock()
	if cred, _, ok := x.lookup("pbx.test", "u0", nowf()); ok {
		t.Fatalf("snapshot read across a forget was used: %+v", cred)
	}
	waitLoaded(t, x)
	if cred, _, ok := x.lookup("pbx.test", "u0", nowf()); !ok || cred.HA1MD5 != ha1Version(2) {
		t.Fatalf("after reload: %+v %v", cred, ok)
	}
	// Unannounced changes: a reload starts at 3/4 of the age limit …
	src.set(3)
	loads := src.loads.Load()
	clock.Add(int64(23 * time.Second))
	if cred, _, ok := x.lookup("pbx.test", "u0", nowf()); !ok || cred.HA1MD5 != ha1Version(2) {
		t.Fatalf("young snapshot not served while refreshing: %+v %v", cred, ok)
	}
	waitLoaded(t, x)
	if src.loads.Load() != loads+1 {
		t.Fatalf("%d loads at 3/4 of the age, want 1", src.loads.Load()-loads)
	}
	if cred, _, ok := x.lookup("pbx.test", "u0", nowf()); !ok || cred.HA1MD5 != ha1Version(3) {
		t.Fatalf("refreshed: %+v %v", cred, ok)
	}
	// … and a snapshot older than the limit is never used.
	clock.Add(int64(31 * time.Second))
	if _, _, ok := x.lookup("pbx.test", "u0", nowf()); ok {
		t.Fatal("expired snapshot used")
	}
	waitLoaded(t, x)
	// The sweep frees what cannot answer any more.
	gen.Add(1)
	clock.Add(int64(31 * time.Second))
	x.sweep(nowf())
	if d, c := x.size(); d != 0 || c != 0 {
		t.Fatalf("after sweep: %d domains, %d credentials", d, c)
	}
}

func TestCredIndexBound(t *testing.T) {
	src := &fakeDomains{users: map[string]int{"big.test": 50, "small.test": 5}}
	now := time.Unix(1_800_000_000, 0)
	x, _ := newTestIndex(src, 20, func() time.Time { return now })
	x.preload(context.Background())
	if _, _, ok := x.lookup("big.test", "u1", now); ok {
		t.Fatal("a domain over the bound was indexed")
	}
	if _, _, ok := x.lookup("small.test", "u1", now); !ok {
		t.Fatal("a domain within the bound was not indexed")
	}
	if _, c := x.size(); c != 5 {
		t.Fatalf("%d credentials held, want 5", c)
	}
	// Domain names are bounded too.
	x.maxDomains = 4
	for i := 0; i < 10; i++ {
		x.lookup(fmt.Sprintf("d%d.test", i), "u1", now)
		waitLoaded(t, x)
	}
	if d, _ := x.size(); d > 4 {
		t.Fatalf("%d domains held, max 4", d)
	}
}

// TestCredIndexConcurrentForget checks, under -race, that no lookup that
// starts after a forget returns data older than that forget, while
// lookups, reloads and changes run at once.
func TestCredIndexConcurrentForget(t *testing.T) {
	src := &fakeDomains{users: map[string]int{"pbx.test": 20}}
	x, gen := newTestIndex(src, 1000, time.Now)
	cache := newCredCache(30*time.Second, 1000, gen)
	x.preload(context.Background())
	var minVersion atomic.Int64 // every lookup starting now must see at least this
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for v := 1; v <= 200; v++ {
			src.set(v)
			cache.forget() // bumps gen
			minVersion.Store(int64(v))
			time.Sleep(50 * time.Microsecond)
		}
		close(stop)
	}()
	var hits, fallbacks atomic.Int64
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				want := minVersion.Load()
				cred, err, ok := x.lookup("pbx.test", "u"+strconv.Itoa(i%20), time.Now())
				if !ok {
					fallbacks.Add(1)
					continue
				}
				hits.Add(1)
				if err != nil {
					t.Errorf("lookup: %v", err)
					return
				}
				got, _ := strconv.ParseInt(cred.HA1MD5, 16, 64)
				if got < want {
					t.Errorf("lookup returned version %d after forget of version %d", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	waitLoaded(t, x)
	t.Logf("%d hits, %d database fallbacks", hits.Load(), fallbacks.Load())
}

// A domain in use is reloaded by the sweep before it gets too old, even
// when no REGISTER arrives in between; an unused one is not.
func TestCredIndexSweepKeepsUsedDomainsFresh(t *testing.T) {
	src := &fakeDomains{users: map[string]int{"busy.test": 2, "idle.test": 2}}
	var clock atomic.Int64
	clock.Store(time.Unix(1_800_000_000, 0).UnixNano())
	nowf := func() time.Time { return time.Unix(0, clock.Load()) }
	x, gen := newTestIndex(src, 100, nowf)
	x.preload(context.Background())
	if _, _, ok := x.lookup("busy.test", "u0", nowf()); !ok {
		t.Fatal("preloaded domain not served")
	}
	loads := src.loads.Load()
	clock.Add(int64(23 * time.Second))
	x.sweep(nowf())
	waitLoaded(t, x)
	if got := src.loads.Load() - loads; got != 1 {
		t.Fatalf("%d reloads by the sweep, want 1 (the used domain)", got)
	}
	clock.Add(int64(10 * time.Second)) // 33 s after preload, 10 s after the reload
	if _, _, ok := x.lookup("busy.test", "u0", nowf()); !ok {
		t.Fatal("used domain fell out of the index")
	}
	if _, _, ok := x.lookup("idle.test", "u0", nowf()); ok {
		t.Fatal("unused domain older than the limit was served")
	}
	waitLoaded(t, x)
	// After a forget the sweep reloads a used domain without waiting for a REGISTER.
	gen.Add(1)
	loads = src.loads.Load()
	for range 2 { // one reload per sweep; both domains were looked up
		x.sweep(nowf())
		waitLoaded(t, x)
	}
	if src.loads.Load() == loads {
		t.Fatal("sweep did not reload a used domain after forget")
	}
	if _, _, ok := x.lookup("busy.test", "u0", nowf()); !ok {
		t.Fatal("not served after the sweep's reload")
	}
}
