package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/sip"
	"github.com/parleyhq/parley/store"
	"github.com/parleyhq/parley/usage"
)

// callRouter decides who takes an inbound call, admits it, and runs it.
type callRouter struct {
	store    *store.Store
	adm      admitter
	engine   *calls.Engine
	log      *slog.Logger
	releases sync.Map // call sid → admission release
}

// admitter is what the router needs of admission.
type admitter interface {
	Acquire(ctx context.Context, accountSid string, r admission.Resource) (func(), error)
}

// RouteInvite implements sip.CallRouter: a token caller's outgoing
// application; else the application of the incoming number dialled (in the
// number's account); else the voice URL of the SIP domain dialled, in the
// caller's own account. Calls from the carrier (FromTrunk) reach numbers
// only. Then calls (concurrency) and calls-cps (rate) admission.
func (r *callRouter) RouteInvite(ctx context.Context, in sip.Invite) (*calls.Call, error) {
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
			return nil, fmt.Errorf("%w: carrier call to %q, which is not an incoming number", sip.ErrNoRoute, in.User)
		}
		in.AccountSid = num.AccountSid
	}
	acct, err := r.store.Account(ctx, in.AccountSid)
	if err != nil {
		return nil, fmt.Errorf("%w: caller's account: %w", sip.ErrNoRoute, err)
	}
	if acct.Status != store.StatusActive {
		return nil, fmt.Errorf("%w: account %s is %s", sip.ErrNoRoute, acct.Sid, acct.Status)
	}
	c := &calls.Call{Sid: sid.New(sid.Call), AccountSid: acct.Sid, From: in.From, To: in.To, CallerName: in.CallerName,
		Direction: "inbound", AuthToken: acct.AuthToken}
	useApp := func(appSid string) error {
		app, err := r.store.Application(ctx, appSid)
		if err != nil || app.AccountSid != c.AccountSid {
			return fmt.Errorf("%w: application %s", sip.ErrNoRoute, appSid)
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
			return nil, fmt.Errorf("%w: number %s has no active owner", sip.ErrNoRoute, num.PhoneNumber)
		}
		c.AccountSid, c.AuthToken, c.To = owner.Sid, owner.AuthToken, num.PhoneNumber
		if num.ApplicationSid == "" {
			return nil, fmt.Errorf("%w: number %s has no application", sip.ErrNoRoute, num.PhoneNumber)
		}
		if err := useApp(num.ApplicationSid); err != nil {
			return nil, err
		}
	default:
		dom, err := r.store.SIPDomainByName(ctx, in.Domain)
		if err != nil || dom.AccountSid != acct.Sid {
			return nil, fmt.Errorf("%w: domain %q", sip.ErrNoRoute, in.Domain)
		}
		c.VoiceURL, c.VoiceMethod = dom.VoiceURL, dom.VoiceMethod
	}
	if c.VoiceURL == "" {
		return nil, fmt.Errorf("%w: no voice URL for %s", sip.ErrNoRoute, in.To)
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

// Run implements sip.CallRunner: the engine runs the call; its admission
// slot is released when it ends.
func (r *callRouter) Run(ctx context.Context, c *calls.Call, leg calls.Leg) error {
	defer func() {
		if rel, ok := r.releases.LoadAndDelete(c.Sid); ok {
			rel.(func())()
		}
	}()
	return r.engine.Run(ctx, c, leg)
}

// ClientIdentities implements sip.ClientTargets: <Client>alice</Client>
// reaches client:alice and alice on each of the account's SIP domains.
func (r *callRouter) ClientIdentities(ctx context.Context, accountSid, name string) ([]string, error) {
	var out []string
	for page := 0; ; page++ {
		doms, more, err := r.store.ListSIPDomains(ctx, accountSid, store.Page{Page: page, Size: 200})
		if err != nil {
			return nil, err
		}
		for _, d := range doms {
			out = append(out, sip.SIPIdentity(name, d.DomainName))
		}
		if !more {
			return out, nil
		}
	}
}

// callRecords persists calls and recordings as the engine reports them.
type callRecords struct {
	store   *store.Store
	log     *slog.Logger
	publish func(...usage.Event)
}

// legType is the usage category of the calling side: client, sip or number.
func legType(c *calls.Call) string {
	party := c.From
	if c.Direction != "inbound" {
		party = c.To
	}
	switch {
	case strings.HasPrefix(party, "client:"):
		return "client"
	case strings.HasPrefix(party, "sip:"), strings.HasPrefix(party, "sips:"):
		return "sip"
	}
	return "number"
}

func (c callRecords) CallStatus(call *calls.Call, status string) {
	snap := call.Snapshot()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.store.SaveCall(ctx, store.CallRecord{Sid: call.Sid, AccountSid: call.AccountSid, ParentCallSid: call.ParentCallSid,
		ApplicationSid: call.ApplicationSid, From: call.From, To: call.To, CallerName: call.CallerName, Direction: call.Direction,
		Status: status, Started: snap.Started, Answered: snap.Answered, Ended: snap.Ended, Duration: snap.Duration})
	if err != nil {
		c.log.Error("saving call", "call", call.Sid, "err", err)
	}
	if c.publish != nil {
		switch {
		case status == calls.StatusQueued || status == calls.StatusRinging:
			// Counted as it starts (a repeat for queued→ringing has the same ids).
			c.publish(usage.CallStarted(call.AccountSid, call.Sid, call.Direction, legType(call), snap.Started)...)
		case !snap.Ended.IsZero():
			c.publish(usage.CallStarted(call.AccountSid, call.Sid, call.Direction, legType(call), snap.Started)...)
			c.publish(usage.CallMinutes(call.AccountSid, call.Sid, call.Direction, legType(call), snap.Duration, snap.Ended)...)
		}
	}
}

func (c callRecords) RecordingDone(r calls.Recording) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.store.CreateRecording(ctx, store.RecordingRecord{Sid: r.Sid, AccountSid: r.AccountSid, CallSid: r.CallSid,
		Path: r.Path, Duration: r.Duration, DateCreated: r.Created}); err != nil && !errors.Is(err, context.Canceled) {
		c.log.Error("saving recording", "recording", r.Sid, "err", err)
	}
	if c.publish != nil {
		c.publish(usage.Recording(r.AccountSid, r.Sid, r.Duration, r.Created))
	}
}
