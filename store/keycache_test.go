package store

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley/presence/accesstoken"
)

// TestSigningKeyCache: this store's own writes are seen at once; another
// process's writes to the same file (the CLI) within the TTL.
func TestSigningKeyCache(t *testing.T) {
	ctx := context.Background()
	st, file := openTemp(t)
	st.keys = newKeyCache(200 * time.Millisecond)
	acc, err := st.CreateAccount(ctx, NewAccount{FriendlyName: "a"})
	if err != nil {
		t.Fatal(err)
	}
	k1, err := st.CreateKey(ctx, acc.Sid, "one")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := st.CreateKey(ctx, acc.Sid, "two")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []APIKey{k1, k2} {
		if sk, err := st.SigningKey(ctx, k.Sid); err != nil || sk.Revoked || !sk.AccountActive || sk.Secret != k.Secret {
			t.Fatalf("signing key %s: %+v %v", k.Sid, sk, err)
		}
	}

	// Own write: revoked at once.
	if err := st.RevokeKey(ctx, k1.Sid); err != nil {
		t.Fatal(err)
	}
	if sk, _ := st.SigningKey(ctx, k1.Sid); !sk.Revoked {
		t.Fatal("own revoke not seen at once")
	}
	// Own write: a suspended account is seen at once on every key.
	suspended, active := StatusSuspended, StatusActive
	if _, err := st.UpdateAccount(ctx, acc.Sid, AccountUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	if sk, _ := st.SigningKey(ctx, k2.Sid); sk.AccountActive {
		t.Fatal("own suspension not seen at once")
	}
	if _, err := st.UpdateAccount(ctx, acc.Sid, AccountUpdate{Status: &active}); err != nil {
		t.Fatal(err)
	}
	if sk, _ := st.SigningKey(ctx, k2.Sid); !sk.AccountActive {
		t.Fatal("reactivation not seen at once")
	}

	// Another process (a second Store on the file): cached until the TTL.
	other, err := Open(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.RevokeKey(ctx, k2.Sid); err != nil {
		t.Fatal(err)
	}
	if sk, _ := st.SigningKey(ctx, k2.Sid); sk.Revoked {
		t.Fatal("the cache did not answer (expected the cached, unrevoked key within the TTL)")
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		sk, err := st.SigningKey(ctx, k2.Sid)
		if err != nil {
			t.Fatal(err)
		}
		if sk.Revoked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("another process's revoke never seen")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A key created elsewhere works at once (unknown keys are not cached).
	if _, err := st.SigningKey(ctx, "SK00000000000000000000000000000000"); err == nil {
		t.Fatal("unknown key found")
	}
	k3, err := other.CreateKey(ctx, acc.Sid, "three")
	if err != nil {
		t.Fatal(err)
	}
	if sk, err := st.SigningKey(ctx, k3.Sid); err != nil || sk.Secret != k3.Secret {
		t.Fatalf("key created by another process: %+v %v", sk, err)
	}
}

// TestKeyCacheStaleReadNotStored: a read that began before a write does not
// put what it read into the cache.
func TestKeyCacheStaleReadNotStored(t *testing.T) {
	c := newKeyCache(time.Hour)
	now := time.Now()
	_, ok, gen := c.get("SK1", now)
	if ok {
		t.Fatal("empty cache hit")
	}
	c.forget() // a write lands while the read is in flight
	c.put(cachedKeyFixture("SK1"), gen, now)
	if _, ok, _ := c.get("SK1", now); ok {
		t.Fatal("stale read stored")
	}
	_, _, gen = c.get("SK1", now)
	c.put(cachedKeyFixture("SK1"), gen, now)
	if _, ok, _ := c.get("SK1", now); !ok {
		t.Fatal("fresh read not stored")
	}
	if _, ok, _ := c.get("SK1", now.Add(2*time.Hour)); ok {
		t.Fatal("expired entry answered")
	}
}

func cachedKeyFixture(sid string) accesstoken.SigningKey {
	return accesstoken.SigningKey{Sid: sid, AccountSid: "AC1", Secret: "s", AccountActive: true}
}
