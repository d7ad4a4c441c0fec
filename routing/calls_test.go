package routing

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/store"
)

// admitAll is an admitter with no limits: these tests are about routing.
type admitAll struct{}

func (admitAll) Acquire(context.Context, string, admission.Resource) (func(), error) {
	return func() {}, nil
}

func TestRouteInvite(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, _ := st.CreateAccount(ctx, store.NewAccount{FriendlyName: "A"})
	b, _ := st.CreateAccount(ctx, store.NewAccount{FriendlyName: "B"})
	susp, _ := st.CreateAccount(ctx, store.NewAccount{FriendlyName: "Suspended"})
	suspended := store.StatusSuspended
	if _, err := st.UpdateAccount(ctx, susp.Sid, store.AccountUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	mustApp := func(acct, url string) store.Application {
		app, err := st.CreateApplication(ctx, store.Application{AccountSid: acct, VoiceURL: url})
		if err != nil {
			t.Fatal(err)
		}
		return app
	}
	aOut, bSales, bDesk := mustApp(a.Sid, "http://a/out"), mustApp(b.Sid, "http://b/sales"), mustApp(b.Sid, "http://b/desk")
	suspApp := mustApp(susp.Sid, "http://s/voice")
	if _, err := st.CreateSIPDomain(ctx, a.Sid, store.NewSIPDomain{DomainName: "a.test", VoiceURL: "http://a/domain"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []store.IncomingNumber{
		{AccountSid: b.Sid, PhoneNumber: "+15550102000", ApplicationSid: bSales.Sid},
		{AccountSid: b.Sid, PhoneNumber: "desk", ApplicationSid: bDesk.Sid},
		{AccountSid: b.Sid, PhoneNumber: "+15550103000"}, // no application
		{AccountSid: susp.Sid, PhoneNumber: "+15550104000", ApplicationSid: suspApp.Sid},
	} {
		if _, err := st.CreateIncomingNumber(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	r := NewCalls(st, admitAll{}, nil)
	fromA := func(user string) calls.Invite {
		return calls.Invite{AccountSid: a.Sid, Identity: "sip:bob@a.test", Domain: "a.test", User: user, From: "sip:bob@a.test", To: "sip:" + user + "@a.test"}
	}
	carrier := func(user string) calls.Invite {
		return calls.Invite{FromTrunk: true, User: user, From: "+15551230000", To: user}
	}
	tests := []struct {
		name    string
		in      calls.Invite
		account string
		url     string
		to      string
	}{
		{name: "token caller's application", in: calls.Invite{AccountSid: a.Sid, Identity: "client:x", User: "+15550102000", ApplicationSid: aOut.Sid}, account: a.Sid, url: "http://a/out"},
		{name: "another account's E.164 number", in: fromA("+1-555-010-2000"), account: b.Sid, url: "http://b/sales", to: "+15550102000"},
		{name: "another account's short number is private", in: fromA("desk"), account: a.Sid, url: "http://a/domain"},
		{name: "own domain", in: fromA("alice"), account: a.Sid, url: "http://a/domain"},
		{name: "number without application", in: fromA("+15550103000")},
		{name: "number of a suspended account", in: fromA("+15550104000")},
		{name: "carrier to a number", in: carrier("+15550102000"), account: b.Sid, url: "http://b/sales", to: "+15550102000"},
		{name: "carrier to a short number", in: carrier("desk"), account: b.Sid, url: "http://b/desk", to: "desk"},
		{name: "carrier to a SIP user", in: carrier("alice")},
		{name: "carrier to an unknown number", in: carrier("+15559999999")},
		{name: "unknown domain", in: calls.Invite{AccountSid: a.Sid, Domain: "b.test", User: "alice"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := r.RouteInvite(ctx, tc.in)
			if tc.account == "" {
				if !errors.Is(err, calls.ErrNoRoute) {
					t.Fatalf("want ErrNoRoute, got %v (%+v)", err, c)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := b.AuthToken
			if tc.account == a.Sid {
				want = a.AuthToken
			}
			if c.AccountSid != tc.account || c.VoiceURL != tc.url || c.AuthToken != want || (tc.to != "" && c.To != tc.to) {
				t.Fatalf("routed to %s %s (to %q), want %s %s (to %q)", c.AccountSid, c.VoiceURL, c.To, tc.account, tc.url, tc.to)
			}
		})
	}
}
