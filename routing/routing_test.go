package routing

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/twiml"
	"github.com/parleyhq/parley/store"
)

// denyCPS admits calls but refuses calls-cps, and counts the calls slots
// still held.
type denyCPS struct{ held int }

func (d *denyCPS) Acquire(_ context.Context, _ string, r admission.Resource) (func(), error) {
	if r == admission.ResourceCallsCPS {
		return nil, &admission.Denial{Resource: r, Limit: 1, Wait: 2 * time.Second}
	}
	d.held++
	return func() { d.held-- }, nil
}

// A denial reaches the transports as an error with RetryAfter() (what
// signaling/webrtc looks for) that is still an *admission.Denial (what
// signaling/sip and the REST API look for), and the calls slot taken
// before the refused calls-cps token is given back.
func TestRouteInviteDenied(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, _ := st.CreateAccount(ctx, store.NewAccount{FriendlyName: "A"})
	if _, err := st.CreateSIPDomain(ctx, a.Sid, store.NewSIPDomain{DomainName: "a.test", VoiceURL: "http://a/domain"}); err != nil {
		t.Fatal(err)
	}
	adm := &denyCPS{}
	_, err = NewCalls(st, adm, nil).RouteInvite(ctx, calls.Invite{AccountSid: a.Sid, Identity: "sip:bob@a.test", Domain: "a.test", User: "alice"})
	var retry interface{ RetryAfter() time.Duration }
	var denial *admission.Denial
	if !errors.As(err, &retry) || retry.RetryAfter() != 2*time.Second || !errors.As(err, &denial) || denial.Resource != admission.ResourceCallsCPS {
		t.Fatalf("err = %v", err)
	}
	if err.Error() != denial.Error() || adm.held != 0 {
		t.Fatalf("message %q, %d slots held", err, adm.held)
	}
}

func TestLegType(t *testing.T) {
	for _, tc := range []struct {
		direction, from, to, want string
	}{
		{"inbound", "client:alice", "sip:x@y", "client"},
		{"inbound", "client:", "", "client"},
		{"inbound", "sip:bob@pbx.test", "client:x", "sip"},
		{"inbound", "sip:bob", "", "sip"},
		{"inbound", "sips:bob@pbx.test", "", "sip"},
		{"inbound", "+15551230000", "client:x", "number"},
		{"outbound-api", "client:x", "sip:alice@pbx.test", "sip"},
		{"outbound-api", "sip:x@y", "+15551230000", "number"},
		{"outbound-dial", "+1555", "client:bob", "client"},
	} {
		if got := legType(&calls.Call{Direction: tc.direction, From: tc.from, To: tc.to}); got != tc.want {
			t.Errorf("legType(%s %s → %s) = %q, want %q", tc.direction, tc.from, tc.to, got, tc.want)
		}
	}
}

func TestOriginatorTarget(t *testing.T) {
	for _, tc := range []struct {
		to      string
		numbers bool
		want    twiml.DialTarget
		err     string
	}{
		{to: "client:alice", want: &twiml.Client{Identity: "alice"}},
		{to: "sip:alice@pbx.test", want: &twiml.Sip{URI: "sip:alice@pbx.test"}},
		{to: "sips:alice@pbx.test;transport=tls", want: &twiml.Sip{URI: "sips:alice@pbx.test;transport=tls"}},
		{to: "sip:alice", want: &twiml.Sip{URI: "sip:alice"}},
		{to: "+1 (555) 010-2000", numbers: true, want: &twiml.Number{Number: "+15550102000"}},
		{to: "+15550102000", err: "numbers need an outbound trunk"},
		{to: "client:", err: "call client:<identity> or a sip: URI"},
		{to: "client:", numbers: true, err: "an E.164 number"},
		{to: "alice", numbers: true, err: "an E.164 number"},
	} {
		t.Run(tc.to, func(t *testing.T) {
			got, err := NewOriginator(OriginatorConfig{Numbers: tc.numbers}).target(tc.to)
			if tc.err != "" {
				if !errors.Is(err, ErrBadTarget) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			same := false
			switch w := tc.want.(type) {
			case *twiml.Client:
				g, ok := got.(*twiml.Client)
				same = ok && g.Identity == w.Identity
			case *twiml.Sip:
				g, ok := got.(*twiml.Sip)
				same = ok && g.URI == w.URI
			case *twiml.Number:
				g, ok := got.(*twiml.Number)
				same = ok && g.Number == w.Number
			}
			if !same {
				t.Fatalf("target(%q) = %#v, want %#v", tc.to, got, tc.want)
			}
		})
	}
}
