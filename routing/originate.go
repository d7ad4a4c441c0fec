package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/twiml"
	"github.com/parleyhq/parley/store"
)

// OutboundCall is a call to place (the REST API's POST …/Calls.json; the
// composition root converts api.OutboundCall, which has the same fields).
type OutboundCall struct {
	AccountSid, To, From                     string
	URL, Method, FallbackURL, FallbackMethod string
	ApplicationSid                           string
	StatusCallback, StatusCallbackMethod     string
	StatusCallbackEvents                     []string
	Timeout                                  time.Duration
}

// ErrBadTarget is wrapped by Originate's errors that are the caller's to
// fix (REST 400).
var ErrBadTarget = errors.New("cannot place this call")

// OriginatorConfig wires an Originator.
type OriginatorConfig struct {
	// Context is the lifetime of the calls placed: they outlive the REST
	// request that placed them and end with it.
	Context  context.Context
	Store    Store
	Admitter Admitter
	Engine   Engine
	Dialer   calls.Dialer
	Log      *slog.Logger
	// Numbers: an outbound trunk is configured, so To may be a number.
	Numbers bool
}

// Originator places calls for the REST API: dial the target through
// presence, and once it answers run the call's instructions on that leg.
type Originator struct{ cfg OriginatorConfig }

// NewOriginator creates the REST API's originator.
func NewOriginator(cfg OriginatorConfig) *Originator {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Originator{cfg: cfg}
}

// target turns a To of the REST API into a Dial noun; E.164 numbers go
// through the outbound trunk when one is configured.
func (o *Originator) target(to string) (twiml.DialTarget, error) {
	if id, err := presence.ParseIdentity(to); err == nil && id.Kind == presence.KindClient {
		return &twiml.Client{Identity: id.User}, nil
	}
	switch {
	case strings.HasPrefix(to, "sip:") || strings.HasPrefix(to, "sips:"): // a SIP URI, read when dialled
		return &twiml.Sip{URI: to}, nil
	case o.cfg.Numbers:
		if n := store.NormalizeNumber(to); strings.HasPrefix(n, "+") {
			return &twiml.Number{Number: n}, nil
		}
		return nil, fmt.Errorf("%w: %q: call client:<identity>, a sip: URI or an E.164 number (+15551234567)", ErrBadTarget, to)
	}
	return nil, fmt.Errorf("%w: %q: call client:<identity> or a sip: URI (numbers need an outbound trunk, which is not configured)", ErrBadTarget, to)
}

// Originate queues a call and places it in the background; it returns the
// call as queued. Errors wrap ErrBadTarget when the request cannot be
// placed as asked; an *admission.Denial means the account is at its limit.
func (o *Originator) Originate(ctx context.Context, req OutboundCall) (store.CallRecord, error) {
	t, err := o.target(req.To)
	if err != nil {
		return store.CallRecord{}, err
	}
	acct, err := o.cfg.Store.Account(ctx, req.AccountSid)
	if err != nil {
		return store.CallRecord{}, err
	}
	c := &calls.Call{Sid: sid.New(sid.Call), AccountSid: acct.Sid, From: req.From, To: req.To, Direction: "outbound-api",
		AuthToken: acct.AuthToken, VoiceURL: req.URL, VoiceMethod: req.Method, FallbackURL: req.FallbackURL,
		FallbackMethod: req.FallbackMethod, StatusCallback: req.StatusCallback, StatusCallbackMethod: req.StatusCallbackMethod,
		StatusCallbackEvents: req.StatusCallbackEvents}
	if req.ApplicationSid != "" {
		app, err := o.cfg.Store.Application(ctx, req.ApplicationSid)
		if err != nil || app.AccountSid != acct.Sid {
			return store.CallRecord{}, fmt.Errorf("%w: ApplicationSid %s is not an application of this account", ErrBadTarget, req.ApplicationSid)
		}
		c.ApplicationSid = app.Sid
		c.VoiceURL, c.VoiceMethod = app.VoiceURL, app.VoiceMethod
		c.FallbackURL, c.FallbackMethod = app.VoiceFallbackURL, app.VoiceFallbackMethod
		if c.StatusCallback == "" {
			c.StatusCallback, c.StatusCallbackMethod = app.StatusCallback, app.StatusCallbackMethod
		}
	}
	if c.VoiceURL == "" {
		return store.CallRecord{}, fmt.Errorf("%w: the application has no voice URL", ErrBadTarget)
	}
	release, err := o.cfg.Admitter.Acquire(ctx, acct.Sid, admission.ResourceCalls)
	if err != nil {
		return store.CallRecord{}, err
	}
	if _, err := o.cfg.Admitter.Acquire(ctx, acct.Sid, admission.ResourceCallsCPS); err != nil {
		release()
		return store.CallRecord{}, err
	}
	o.cfg.Engine.Status(c, calls.StatusQueued)
	go o.place(c, t, req, release)
	snap := c.Snapshot()
	return store.CallRecord{Sid: c.Sid, AccountSid: c.AccountSid, ApplicationSid: c.ApplicationSid, From: c.From, To: c.To,
		Direction: c.Direction, Status: snap.Status}, nil
}

func (o *Originator) place(c *calls.Call, t twiml.DialTarget, req OutboundCall, release func()) {
	defer release()
	ctx := o.cfg.Context
	res, err := o.cfg.Dialer.Dial(ctx, calls.DialRequest{Call: c, Targets: []twiml.DialTarget{t}, CallerID: req.From,
		Timeout: req.Timeout, Ringing: func() { o.cfg.Engine.Status(c, calls.StatusRinging) }})
	if err != nil {
		o.cfg.Log.Warn("outbound call failed", "call", c.Sid, "err", err)
	}
	if res.Status != calls.DialAnswered {
		final := map[calls.DialStatus]string{calls.DialBusy: calls.StatusBusy, calls.DialNoAnswer: calls.StatusNoAnswer,
			calls.DialCanceled: calls.StatusCanceled}[res.Status]
		if final == "" {
			final = calls.StatusFailed
		}
		o.cfg.Engine.Status(c, final)
		return
	}
	if err := o.cfg.Engine.RunAnswered(ctx, c, res.Leg); err != nil && !errors.Is(err, context.Canceled) {
		o.cfg.Log.Warn("outbound call ended with an error", "call", c.Sid, "err", err)
	}
}
