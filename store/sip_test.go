package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/parleyhq/parley/internal/sqlite"
	"github.com/parleyhq/parley/presence"
)

func openSIPTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestHA1(t *testing.T) {
	// RFC 7616 §3.9.1: the SHA-256 HA1 of Mufasa:http-auth@example.org:Circle of Life.
	if _, s := HA1("Mufasa", "http-auth@example.org", "Circle of Life"); s != "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232" {
		t.Fatalf("sha256 HA1 = %s", s)
	}
	// RFC 2617 §3.5: HA1 for Mufasa:testrealm@host.com:Circle Of Life.
	if m, _ := HA1("Mufasa", "testrealm@host.com", "Circle Of Life"); m != "939e7578ed9e3c518a452acee763bce9" {
		t.Fatalf("md5 HA1 = %s", m)
	}
}

func TestDigestCredential(t *testing.T) {
	ctx := context.Background()
	s := openSIPTestStore(t)
	acc, err := s.CreateAccount(ctx, NewAccount{FriendlyName: "a"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.CreateAccount(ctx, NewAccount{FriendlyName: "b"})
	if err != nil {
		t.Fatal(err)
	}
	dom, err := s.CreateSIPDomain(ctx, acc.Sid, NewSIPDomain{DomainName: "Pbx.Example.COM", RegistrationEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if dom.DomainName != "pbx.example.com" {
		t.Fatalf("domain name not normalised: %q", dom.DomainName)
	}
	if _, err := s.CreateSIPDomain(ctx, other.Sid, NewSIPDomain{DomainName: "pbx.example.com"}); err == nil {
		t.Fatal("duplicate domain name accepted")
	}
	if _, err := s.CreateSIPDomain(ctx, acc.Sid, NewSIPDomain{DomainName: "bad domain"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad domain: %v", err)
	}
	list, err := s.CreateSIPCredentialList(ctx, acc.Sid, "phones")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSIPCredential(ctx, acc.Sid, list.Sid, "alice", "short", "parley"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short password: %v", err)
	}
	if _, err := s.CreateSIPCredential(ctx, acc.Sid, list.Sid, "al ice", "long-enough-pw", "parley"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad username: %v", err)
	}
	if _, err := s.CreateSIPCredential(ctx, other.Sid, list.Sid, "mallory", "long-enough-pw", "parley"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("credential in another account's list: %v", err)
	}
	cred, err := s.CreateSIPCredential(ctx, acc.Sid, list.Sid, "alice", "long-enough-pw", "parley")
	if err != nil {
		t.Fatal(err)
	}
	wantMD5, wantSHA := HA1("alice", "parley", "long-enough-pw")
	if cred.HA1MD5 != wantMD5 || cred.HA1SHA256 != wantSHA {
		t.Fatal("HA1 mismatch")
	}
	if _, err := s.CreateSIPCredential(ctx, acc.Sid, list.Sid, "alice", "long-enough-pw", "parley"); err == nil {
		t.Fatal("duplicate username in list accepted")
	}

	// Not mapped yet: the user is unknown to the domain.
	if _, err := s.DigestCredential(ctx, "pbx.example.com", "alice"); !errors.Is(err, presence.ErrUnknownUser) {
		t.Fatalf("unmapped: %v", err)
	}
	if err := s.MapSIPCredentialList(ctx, other.Sid, dom.Sid, list.Sid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cross-account map: %v", err)
	}
	if err := s.MapSIPCredentialList(ctx, acc.Sid, dom.Sid, list.Sid); err != nil {
		t.Fatal(err)
	}
	if err := s.MapSIPCredentialList(ctx, acc.Sid, dom.Sid, list.Sid); err != nil {
		t.Fatalf("mapping twice: %v", err)
	}
	tests := []struct {
		domain, user string
		want         error
	}{
		{"pbx.example.com", "alice", nil},
		{"PBX.example.com", "alice", nil},
		{"pbx.example.com", "bob", presence.ErrUnknownUser},
		{"nope.example.com", "alice", presence.ErrUnknownDomain},
	}
	prepared, err := s.SIPCredentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer prepared.Close()
	for _, tt := range tests {
		got, err := s.DigestCredential(ctx, tt.domain, tt.user)
		if got2, err2 := prepared.DigestCredential(ctx, tt.domain, tt.user); got2 != got || !errors.Is(err2, tt.want) {
			t.Fatalf("prepared lookup differs: %+v %v", got2, err2)
		}
		if !errors.Is(err, tt.want) {
			t.Fatalf("%s@%s: err %v, want %v", tt.user, tt.domain, err, tt.want)
		}
		if err == nil && (got.AccountSid != acc.Sid || got.HA1MD5 != wantMD5 || got.HA1SHA256 != wantSHA || got.Realm != "parley" || got.Domain != "pbx.example.com") {
			t.Fatalf("got %+v", got)
		}
	}
	if err := s.SetSIPDomainRegistration(ctx, acc.Sid, dom.Sid, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DigestCredential(ctx, "pbx.example.com", "alice"); !errors.Is(err, presence.ErrRegistrationDisabled) {
		t.Fatalf("disabled: %v", err)
	}
	if err := s.SetSIPDomainRegistration(ctx, acc.Sid, dom.Sid, true); err != nil {
		t.Fatal(err)
	}
	// A suspended account's domains do not authenticate anyone.
	if _, err := s.W.ExecContext(ctx, `UPDATE accounts SET status = 'suspended' WHERE sid = ?`, acc.Sid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DigestCredential(ctx, "pbx.example.com", "alice"); !errors.Is(err, presence.ErrUnknownDomain) {
		t.Fatalf("suspended account: %v", err)
	}
	if _, err := s.W.ExecContext(ctx, `UPDATE accounts SET status = 'active' WHERE sid = ?`, acc.Sid); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSIPCredential(ctx, acc.Sid, cred.Sid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DigestCredential(ctx, "pbx.example.com", "alice"); !errors.Is(err, presence.ErrUnknownUser) {
		t.Fatalf("deleted credential: %v", err)
	}
	doms, _, err := s.ListSIPDomains(ctx, acc.Sid, Page{Size: 10})
	if err != nil || len(doms) != 1 {
		t.Fatalf("list domains: %v %v", doms, err)
	}
}

func TestBindingsPersistence(t *testing.T) {
	ctx := context.Background()
	s := openSIPTestStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	s.now = func() time.Time { return now }
	b1 := presence.Binding{AccountSid: "AC1", Identity: "sip:alice@example.com", Key: "sip:alice@127.0.0.1:5070", Contact: "sip:alice@127.0.0.1:5070",
		CallID: "c1", CSeq: 7, Q: 0.5, Expires: now.Add(time.Hour), Transport: "tcp", Source: "127.0.0.1:5070", Local: "127.0.0.1:5060",
		FlowID: "tcp/127.0.0.1:5070", UserAgent: "ua", Updated: now}
	b2 := b1
	b2.Key, b2.Contact, b2.InstanceID, b2.RegID = "<urn:uuid:1>;1", "sip:alice@127.0.0.1:5080", "<urn:uuid:1>", 1
	expired := b1
	expired.Key, expired.Expires = "old", now.Add(-time.Second)
	if err := s.SaveBindings(ctx, []presence.Binding{b1, b2, expired}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadBindings(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("loaded %d bindings, want 2: %+v", len(got), got)
	}
	for _, g := range got {
		want := b1
		if g.Key == b2.Key {
			want = b2
		}
		if g != want {
			t.Fatalf("round trip:\n got %+v\nwant %+v", g, want)
		}
	}
	b1.CSeq, b1.Expires = 8, now.Add(2*time.Hour)
	if err := s.SaveBindings(ctx, []presence.Binding{b1}, []presence.BindingKey{b2.BindingKey()}); err != nil {
		t.Fatal(err)
	}
	got, err = s.LoadBindings(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].CSeq != 8 || !got[0].Expires.Equal(b1.Expires) {
		t.Fatalf("after update: %+v", got)
	}
	if got, _ := s.LoadBindings(ctx, now.Add(3*time.Hour)); len(got) != 0 {
		t.Fatalf("expired bindings loaded: %+v", got)
	}
}

// TestDomainDigestCredentials checks the registrar's bulk load against the
// single lookup it replaces.
func TestDomainDigestCredentials(t *testing.T) {
	ctx := context.Background()
	s := openSIPTestStore(t)
	acc, err := s.CreateAccount(ctx, NewAccount{FriendlyName: "a"})
	if err != nil {
		t.Fatal(err)
	}
	dom, err := s.CreateSIPDomain(ctx, acc.Sid, NewSIPDomain{DomainName: "pbx.example.com", RegistrationEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSIPDomain(ctx, acc.Sid, NewSIPDomain{DomainName: "quiet.example.com"}); err != nil {
		t.Fatal(err)
	}
	l1, _ := s.CreateSIPCredentialList(ctx, acc.Sid, "one")
	l2, _ := s.CreateSIPCredentialList(ctx, acc.Sid, "two")
	unmapped, _ := s.CreateSIPCredentialList(ctx, acc.Sid, "three")
	for _, c := range []struct{ list, user, pw string }{
		{l1.Sid, "alice", "alice-password"}, {l1.Sid, "bob", "bob-password"},
		{l2.Sid, "alice", "other-alice-password"}, {l2.Sid, "carol", "carol-password"},
		{unmapped.Sid, "dave", "dave-password"},
	} {
		if _, err := s.CreateSIPCredential(ctx, acc.Sid, c.list, c.user, c.pw, "parley"); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{l1.Sid, l2.Sid} {
		if err := s.MapSIPCredentialList(ctx, acc.Sid, dom.Sid, l); err != nil {
			t.Fatal(err)
		}
	}
	load := func(domain string, max int) (map[string]presence.DigestCredential, string, error) {
		got := map[string]presence.DigestCredential{}
		account, err := s.DomainDigestCredentials(ctx, domain, max, func(c presence.DigestCredential) {
			if _, dup := got[c.Username]; dup {
				t.Fatalf("%s given twice", c.Username)
			}
			got[c.Username] = c
		})
		return got, account, err
	}
	got, account, err := load("PBX.example.com", 10)
	if err != nil || account != acc.Sid || len(got) != 3 {
		t.Fatalf("load: %v %s %+v", err, account, got)
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		want, err := s.DigestCredential(ctx, "pbx.example.com", u)
		if err != nil || got[u] != want {
			t.Fatalf("%s: bulk %+v, single %+v (%v)", u, got[u], want, err)
		}
	}
	// The bound counts a username once per list holding it.
	if _, _, err := load("pbx.example.com", 4); err != nil {
		t.Fatalf("at the bound: %v", err)
	}
	if _, _, err := load("pbx.example.com", 3); !errors.Is(err, presence.ErrTooManyCredentials) {
		t.Fatalf("over the bound: %v", err)
	}
	if _, _, err := load("nope.example.com", 10); !errors.Is(err, presence.ErrUnknownDomain) {
		t.Fatalf("unknown domain: %v", err)
	}
	if _, _, err := load("quiet.example.com", 10); !errors.Is(err, presence.ErrRegistrationDisabled) {
		t.Fatalf("registration disabled: %v", err)
	}
	names, err := s.RegistrationDomains(ctx)
	if err != nil || len(names) != 1 || names[0] != "pbx.example.com" {
		t.Fatalf("registration domains: %v %v", names, err)
	}
	suspended := StatusSuspended
	if _, err := s.UpdateAccount(ctx, acc.Sid, AccountUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := load("pbx.example.com", 10); !errors.Is(err, presence.ErrUnknownDomain) {
		t.Fatalf("suspended account: %v", err)
	}
	if names, _ := s.RegistrationDomains(ctx); len(names) != 0 {
		t.Fatalf("suspended account's domains listed: %v", names)
	}
}

// More bindings than one upsert statement takes, inserted then updated.
func TestSaveManyBindings(t *testing.T) {
	ctx := context.Background()
	s := openSIPTestStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	s.now = func() time.Time { return now }
	var bs []presence.Binding
	for i := 0; i < 2*bindingLogBatch+7; i++ {
		c := fmt.Sprintf("sip:u%d@127.0.0.1:5070", i)
		bs = append(bs, presence.Binding{AccountSid: "AC1", Identity: fmt.Sprintf("sip:u%d@example.com", i), Key: c, Contact: c,
			CallID: "c", CSeq: 1, Expires: now.Add(time.Hour), Transport: "udp", Source: "127.0.0.1:5070", Updated: now})
	}
	if err := s.SaveBindings(ctx, bs, nil); err != nil {
		t.Fatal(err)
	}
	for i := range bs {
		bs[i].CSeq = 2
	}
	if err := s.SaveBindings(ctx, bs, []presence.BindingKey{bs[0].BindingKey()}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadBindings(ctx, now)
	if err != nil || len(got) != len(bs) {
		t.Fatalf("loaded %d bindings (%v), want %d", len(got), err, len(bs))
	}
	for _, b := range got {
		if b.CSeq != 2 {
			t.Fatalf("not updated: %+v", b)
		}
	}
}

// TestBindingLogCompaction: the log is compacted once it has doubled, keeps
// the latest state of every key, and drops removed, superseded and expired
// rows.
func TestBindingLogCompaction(t *testing.T) {
	ctx := context.Background()
	s := openSIPTestStore(t)
	s.blog.slack = 10
	now := time.Now().UTC().Truncate(time.Millisecond)
	s.now = func() time.Time { return now }
	logRows := func() int {
		var n int
		if err := s.R.QueryRow(`SELECT count(*) FROM sip_binding_log`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	binding := func(i int, cseq uint32, exp time.Duration) presence.Binding {
		c := fmt.Sprintf("sip:u%d@127.0.0.1:5070", i)
		return presence.Binding{AccountSid: "AC1", Identity: fmt.Sprintf("sip:u%d@example.com", i), Key: c, Contact: c,
			CallID: "c", CSeq: cseq, Expires: now.Add(exp), Transport: "udp", Source: "127.0.0.1:5070", Updated: now}
	}
	var bs []presence.Binding
	for i := range 8 {
		bs = append(bs, binding(i, 1, time.Hour))
	}
	if err := s.SaveBindings(ctx, bs, nil); err != nil {
		t.Fatal(err)
	}
	// Refresh every binding many times, remove one, let one expire.
	maxRows := 0
	for round := uint32(2); round < 40; round++ {
		for i := range bs {
			bs[i].CSeq = round
		}
		if err := s.SaveBindings(ctx, bs, nil); err != nil {
			t.Fatal(err)
		}
		maxRows = max(maxRows, logRows())
	}
	if err := s.SaveBindings(ctx, []presence.Binding{binding(6, 99, time.Minute)}, []presence.BindingKey{bs[7].BindingKey()}); err != nil {
		t.Fatal(err)
	}
	if maxRows > 2*8+10+8 {
		t.Fatalf("log grew to %d rows for 8 bindings: not compacted", maxRows)
	}
	got, err := s.LoadBindings(ctx, now)
	if err != nil || len(got) != 7 {
		t.Fatalf("loaded %d bindings (%v), want 7", len(got), err)
	}
	for _, b := range got {
		want := uint32(39)
		if b.Key == bs[6].Key {
			want = 99
		}
		if b.CSeq != want || b.Key == bs[7].Key {
			t.Fatalf("wrong state after compactions: %+v", b)
		}
	}
	// Compacting after u6 expired keeps exactly the six live bindings.
	now = now.Add(2 * time.Minute)
	if err := s.compactBindingLog(ctx); err != nil {
		t.Fatal(err)
	}
	if n := logRows(); n != 6 {
		t.Fatalf("%d log rows after compaction, want 6", n)
	}
	if got, _ := s.LoadBindings(ctx, now); len(got) != 6 {
		t.Fatalf("loaded %d bindings after compaction, want 6", len(got))
	}
}

// TestBindingLogMigration: bindings saved by a server before the log
// (table sip_bindings) are restored after the upgrade.
func TestBindingLogMigration(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "old.db")
	old := fstest.MapFS{}
	err := fs.WalkDir(CoreMigrations(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p >= "0007" {
			return err
		}
		data, err := fs.ReadFile(CoreMigrations(), p)
		old[p] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, file, old)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).UnixMilli()
	if _, err := db.W.Exec(`INSERT INTO sip_bindings (account_sid, identity, binding_key, contact, call_id, cseq, expires, transport, source, date_updated)
		VALUES ('AC1', 'sip:alice@example.com', 'sip:alice@127.0.0.1:5070', 'sip:alice@127.0.0.1:5070', 'c1', 3, ?, 'udp', '127.0.0.1:5070', 1)`, exp); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err := Open(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.LoadBindings(ctx, time.Now())
	if err != nil || len(got) != 1 || got[0].Identity != "sip:alice@example.com" || got[0].CSeq != 3 || got[0].Expires.UnixMilli() != exp {
		t.Fatalf("migrated bindings: %+v %v", got, err)
	}
}
