package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/presence/accesstoken"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "parley.db")
	st, err := Open(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, file
}

func TestMigrationsIdempotentAndVersioned(t *testing.T) {
	ctx := context.Background()
	st, file := openTemp(t)
	v1, err := st.SchemaVersion(ctx)
	if err != nil || v1 < 1 {
		t.Fatalf("version %d, %v", v1, err)
	}
	st.Close()
	st2, err := Open(ctx, file) // re-applying must be a no-op
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if v2, _ := st2.SchemaVersion(ctx); v2 != v1 {
		t.Fatalf("version changed on reopen: %d → %d", v1, v2)
	}
	var mode string
	if err := st2.W.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q, %v", mode, err)
	}
	// The read pool must not write.
	if _, err := st2.R.Exec(`INSERT INTO accounts (sid, friendly_name, status, auth_token, date_created, date_updated) VALUES ('x','x','active','x',0,0)`); err == nil {
		t.Fatal("read-only pool accepted a write")
	}
}

func TestAccountsKeysApplicationsPersist(t *testing.T) {
	ctx := context.Background()
	st, file := openTemp(t)
	parent, err := st.CreateAccount(ctx, NewAccount{FriendlyName: "Parent"})
	if err != nil {
		t.Fatal(err)
	}
	child, err := st.CreateAccount(ctx, NewAccount{FriendlyName: "Child", OwnerAccountSid: parent.Sid})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := st.CreateAccount(ctx, NewAccount{FriendlyName: "Other"})
	key, err := st.CreateKey(ctx, parent.Sid, "k1")
	if err != nil {
		t.Fatal(err)
	}
	app, err := st.CreateApplication(ctx, Application{AccountSid: parent.Sid, FriendlyName: "app", VoiceURL: "http://127.0.0.1/voice"})
	if err != nil {
		t.Fatal(err)
	}
	if app.VoiceMethod != "POST" {
		t.Fatalf("default method %q", app.VoiceMethod)
	}
	st.Close()

	st2, err := Open(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	got, err := st2.Account(ctx, child.Sid)
	if err != nil || got != child {
		t.Fatalf("account after reopen: %+v %v, want %+v", got, err, child)
	}
	fam, more, err := st2.ListAccounts(ctx, AccountFilter{Family: parent.Sid}, Page{Size: 10})
	if err != nil || more || len(fam) != 2 {
		t.Fatalf("family = %d accounts, more %v, %v", len(fam), more, err)
	}
	for _, a := range fam {
		if a.Sid == other.Sid {
			t.Fatal("family listing includes another account")
		}
	}
	k, err := st2.Key(ctx, key.Sid)
	if err != nil || k.Secret != key.Secret {
		t.Fatalf("key after reopen: %+v %v", k, err)
	}
	if a, err := st2.Application(ctx, app.Sid); err != nil || a.VoiceURL != app.VoiceURL {
		t.Fatalf("application after reopen: %+v %v", a, err)
	}

	sk, err := st2.SigningKey(ctx, key.Sid)
	if err != nil || !sk.AccountActive || sk.Revoked || sk.AccountSid != parent.Sid {
		t.Fatalf("signing key %+v %v", sk, err)
	}
	if err := st2.RevokeKey(ctx, key.Sid); err != nil {
		t.Fatal(err)
	}
	if err := st2.RevokeKey(ctx, key.Sid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	if sk, _ := st2.SigningKey(ctx, key.Sid); !sk.Revoked {
		t.Fatal("revoked key not reported revoked")
	}
	if _, err := st2.SigningKey(ctx, "SKnope"); !errors.Is(err, accesstoken.ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
	suspended := StatusSuspended
	if _, err := st2.UpdateAccount(ctx, parent.Sid, AccountUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	closed := StatusClosed
	if _, err := st2.UpdateAccount(ctx, child.Sid, AccountUpdate{Status: &closed}); err != nil {
		t.Fatal(err)
	}
	if _, err := st2.UpdateAccount(ctx, child.Sid, AccountUpdate{Status: &suspended}); !errors.Is(err, ErrClosed) {
		t.Fatalf("changing a closed account: %v", err)
	}
	if err := st2.DeleteApplication(ctx, app.Sid); err != nil {
		t.Fatal(err)
	}
	if _, err := st2.Application(ctx, app.Sid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted application: %v", err)
	}
}

func TestPaging(t *testing.T) {
	ctx := context.Background()
	st, _ := openTemp(t)
	parent, _ := st.CreateAccount(ctx, NewAccount{FriendlyName: "p"})
	for i := 0; i < 6; i++ {
		if _, err := st.CreateKey(ctx, parent.Sid, ""); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for page := 0; page < 3; page++ {
		keys, more, err := st.ListKeys(ctx, parent.Sid, Page{Page: page, Size: 2})
		if err != nil || len(keys) != 2 || more != (page < 2) {
			t.Fatalf("page %d: %d keys, more %v, %v", page, len(keys), more, err)
		}
		for _, k := range keys {
			if seen[k.Sid] {
				t.Fatalf("key %s on two pages", k.Sid)
			}
			seen[k.Sid] = true
		}
	}
	if keys, more, _ := st.ListKeys(ctx, parent.Sid, Page{Page: 3, Size: 2}); len(keys) != 0 || more {
		t.Fatalf("past the end: %d keys, more %v", len(keys), more)
	}
}
