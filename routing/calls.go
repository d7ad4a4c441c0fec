package routing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/store"
)

// Engine is what routing needs of the call engine (*calls.Engine implements it).
type Engine interface {
	Run(ctx context.Context, c *calls.Call, leg calls.Leg) error
	RunAnswered(ctx context.Context, c *calls.Call, leg calls.Leg) error
	Status(c *calls.Call, status string)
}

// Calls decides who takes an inbound call, admits it, and runs it: it is
// the calls.Router and calls.Runner of the SIP server and the WebRTC gateway.
type Calls struct {
	store    Store
	adm      Admitter
	engine   Engine
	releases sync.Map // call sid → admission release
}

// NewCalls creates the router of inbound calls; engine runs what it routes.
func NewCalls(st Store, adm Admitter, engine Engine) *Calls {
	return &Calls{store: st, adm: adm, engine: engine}
}

// RouteInvite implements calls.Router: a token caller's outgoing
// application; else the application of the incoming number dialled (in the
// number's account); else the voice URL of the SIP domain dialled, in the
// caller's own account. Calls from the carrier (FromTrunk) reach numbers
// only. Then calls (concurrency) and calls-cps (rate) admission; a denial
// is an error with RetryAfter().
func (r *Calls) RouteInvite(ctx context.Context, in calls.Invite) (*calls.Call, error) {
	// The dialled user may be an incoming number (any account's: numbers
	// are public addresses); token callers use their own application.
	var num store.IncomingNumber
	if in.ApplicationSid == "" {
		n, err := r.store.IncomingNumberByNumber(ctx, in.User)
		switch {
		case err == nil && (in.FromTrunk || n.AccountSid == in.AccountSid || strings.HasPrefix(n.PhoneNumber, "+")):
			// Short numbers ("desk-1") are private to their account, so
			// that one account cannot capture another's SIP users.
			num = n
		case err == nil:
		case !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("incoming number lookup: %w", err)
		}
	}
	if in.FromTrunk {
		if num.Sid == "" {
			return nil, fmt.Errorf("%w: carrier call to %q, which is not an incoming number", calls.ErrNoRoute, in.User)
		}
		in.AccountSid = num.AccountSid
	}
	acct, err := r.store.Account(ctx, in.AccountSid)
	if err != nil {
		return nil, fmt.Errorf("%w: caller's account: %w", calls.ErrNoRoute, err)
	}
	if acct.Status != store.StatusActive {
		return nil, fmt.Errorf("%w: account %s is %s", calls.ErrNoRoute, acct.Sid, acct.Status)
	}
	c := &calls.Call{Sid: sid.New(sid.Call), AccountSid: acct.Sid, From: in.From, To: in.To, CallerName: in.CallerName,
		Direction: "inbound", AuthToken: acct.AuthToken}
	useApp := func(appSid string) error {
		app, err := r.store.Application(ctx, appSid)
		if err != nil || app.AccountSid != c.AccountSid {
			return fmt.Errorf("%w: application %s", calls.ErrNoRoute, appSid)
		}
		c.ApplicationSid = app.Sid
		c.VoiceURL, c.VoiceMethod = app.VoiceURL, app.VoiceMethod
		c.FallbackURL, c.FallbackMethod = app.VoiceFallbackURL, app.VoiceFallbackMethod
		c.StatusCallback, c.StatusCallbackMethod = app.StatusCallback, app.StatusCallbackMethod
		return nil
	}
	switch {
	case in.ApplicationSid != "":
		if err := useApp(in.ApplicationSid); err != nil {
			return nil, err
		}
	case num.Sid != "":
		// A number is a public address: the call belongs to its owner.
		owner, err := r.store.Account(ctx, num.AccountSid)
		if err != nil || owner.Status != store.StatusActive {
			return nil, fmt.Errorf("%w: number %s has no active owner", calls.ErrNoRoute, num.PhoneNumber)
		}
		c.AccountSid, c.AuthToken, c.To = owner.Sid, owner.AuthToken, num.PhoneNumber
		if num.ApplicationSid == "" {
			return nil, fmt.Errorf("%w: number %s has no application", calls.ErrNoRoute, num.PhoneNumber)
		}
		if err := useApp(num.ApplicationSid); err != nil {
			return nil, err
		}
	default:
		dom, err := r.store.SIPDomainByName(ctx, in.Domain)
		if err != nil || dom.AccountSid != acct.Sid {
			return nil, fmt.Errorf("%w: domain %q", calls.ErrNoRoute, in.Domain)
		}
		c.VoiceURL, c.VoiceMethod = dom.VoiceURL, dom.VoiceMethod
	}
	if c.VoiceURL == "" {
		return nil, fmt.Errorf("%w: no voice URL for %s", calls.ErrNoRoute, in.To)
	}
	release, err := r.adm.Acquire(ctx, acct.Sid, admission.ResourceCalls)
	if err != nil {
		return nil, err
	}
	if _, err := r.adm.Acquire(ctx, acct.Sid, admission.ResourceCallsCPS); err != nil {
		release()
		return nil, err
	}
	r.releases.Store(c.Sid, release)
	return c, nil
}

// Run implements calls.Runner: the engine runs the call; its admission
// slot is released when it ends.
func (r *Calls) Run(ctx context.Context, c *calls.Call, leg calls.Leg) error {
	defer func() {
		if rel, ok := r.releases.LoadAndDelete(c.Sid); ok {
			rel.(func())()
		}
	}()
	return r.engine.Run(ctx, c, leg)
}

// Targets resolves <Dial><Client> for the call engine's forking.
type Targets struct{ store Store }

// NewTargets creates the resolver of <Client> targets.
func NewTargets(st Store) *Targets { return &Targets{store: st} }

// ClientIdentities implements calls.ClientTargets: <Client>alice</Client>
// reaches client:alice and alice on each of the account's SIP domains.
func (t *Targets) ClientIdentities(ctx context.Context, accountSid, name string) ([]string, error) {
	var out []string
	for page := 0; ; page++ {
		doms, more, err := t.store.ListSIPDomains(ctx, accountSid, store.Page{Page: page, Size: 200})
		if err != nil {
			return nil, err
		}
		for _, d := range doms {
			out = append(out, presence.SIPIdentity(name, d.DomainName))
		}
		if !more {
			return out, nil
		}
	}
}
