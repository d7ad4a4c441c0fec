package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/server/api"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/twiml"
	"github.com/parleyhq/parley/store"
)

// originator places calls for the REST API: dial the target through
// presence, and once it answers run the call's instructions on that leg.
type originator struct {
	ctx    context.Context // the server's: calls outlive the REST request
	store  *store.Store
	adm    admitter
	engine *calls.Engine
	dialer calls.Dialer
	log    *slog.Logger
	// numbers: an outbound trunk is configured, so To may be a number.
	numbers bool
}

// target turns a To of the REST API into a Dial noun; E.164 numbers go
// through the outbound trunk when one is configured.
func (o *originator) target(to string) (twiml.DialTarget, error) {
	switch {
	case strings.HasPrefix(to, "client:") && len(to) > len("client:"):
		return &twiml.Client{Identity: strings.TrimPrefix(to, "client:")}, nil
	case strings.HasPrefix(to, "sip:") || strings.HasPrefix(to, "sips:"):
		return &twiml.Sip{URI: to}, nil
	case o.numbers:
		if n := store.NormalizeNumber(to); strings.HasPrefix(n, "+") {
			return &twiml.Number{Number: n}, nil
		}
		return nil, fmt.Errorf("%w: %q: call client:<identity>, a sip: URI or an E.164 number (+15551234567)", api.ErrBadTarget, to)
	}
	return nil, fmt.Errorf("%w: %q: call client:<identity> or a sip: URI (numbers need an outbound trunk, which is not configured)", api.ErrBadTarget, to)
}

// Originate implements api.Originator.
func (o *originator) Originate(ctx context.Context, req api.OutboundCall) (store.CallRecord, error) {
	t, err := o.target(req.To)
	if err != nil {
		return store.CallRecord{}, err
	}
	acct, err := o.store.Account(ctx, req.AccountSid)
	if err != nil {
		return store.CallRecord{}, err
	}
	c := &calls.Call{Sid: sid.New(sid.Call), AccountSid: acct.Sid, From: req.From, To: req.To, Direction: "outbound-api",
		AuthToken: acct.AuthToken, VoiceURL: req.URL, VoiceMethod: req.Method, FallbackURL: req.FallbackURL,
		FallbackMethod: req.FallbackMethod, StatusCallback: req.StatusCallback, StatusCallbackMethod: req.StatusCallbackMethod,
		StatusCallbackEvents: req.StatusCallbackEvents}
	if req.ApplicationSid != "" {
		app, err := o.store.Application(ctx, req.ApplicationSid)
		if err != nil || app.AccountSid != acct.Sid {
			return store.CallRecord{}, fmt.Errorf("%w: ApplicationSid %s is not an application of this account", api.ErrBadTarget, req.ApplicationSid)
		}
		c.ApplicationSid = app.Sid
		c.VoiceURL, c.VoiceMethod = app.VoiceURL, app.VoiceMethod
		c.FallbackURL, c.FallbackMethod = app.VoiceFallbackURL, app.VoiceFallbackMethod
		if c.StatusCallback == "" {
			c.StatusCallback, c.StatusCallbackMethod = app.StatusCallback, app.StatusCallbackMethod
		}
	}
	if c.VoiceURL == "" {
		return store.CallRecord{}, fmt.Errorf("%w: the application has no voice URL", api.ErrBadTarget)
	}
	release, err := o.adm.Acquire(ctx, acct.Sid, admission.ResourceCalls)
	if err != nil {
		return store.CallRecord{}, err
	}
	if _, err := o.adm.Acquire(ctx, acct.Sid, admission.ResourceCallsCPS); err != nil {
		release()
		return store.CallRecord{}, err
	}
	o.engine.Status(c, calls.StatusQueued)
	go o.place(c, t, req, release)
	snap := c.Snapshot()
	return store.CallRecord{Sid: c.Sid, AccountSid: c.AccountSid, ApplicationSid: c.ApplicationSid, From: c.From, To: c.To,
		Direction: c.Direction, Status: snap.Status}, nil
}

func (o *originator) place(c *calls.Call, t twiml.DialTarget, req api.OutboundCall, release func()) {
	defer release()
	res, err := o.dialer.Dial(o.ctx, calls.DialRequest{Call: c, Targets: []twiml.DialTarget{t}, CallerID: req.From,
		Timeout: req.Timeout, Ringing: func() { o.engine.Status(c, calls.StatusRinging) }})
	if err != nil {
		o.log.Warn("outbound call failed", "call", c.Sid, "err", err)
	}
	if res.Status != calls.DialAnswered {
		final := map[calls.DialStatus]string{calls.DialBusy: calls.StatusBusy, calls.DialNoAnswer: calls.StatusNoAnswer,
			calls.DialCanceled: calls.StatusCanceled}[res.Status]
		if final == "" {
			final = calls.StatusFailed
		}
		o.engine.Status(c, final)
		return
	}
	if err := o.engine.RunAnswered(o.ctx, c, res.Leg); err != nil && !errors.Is(err, context.Canceled) {
		o.log.Warn("outbound call ended with an error", "call", c.Sid, "err", err)
	}
}
