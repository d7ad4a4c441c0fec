package calls

import (
	"context"
	"errors"
)

// Invite is what call routing knows of an authenticated inbound call: a
// SIP INVITE, or a browser's invite through the WebRTC gateway.
type Invite struct {
	AccountSid string // the caller's account
	Identity   string // the caller: "client:alice" or "sip:alice@domain"
	Domain     string // the Request-URI host ("" for a browser)
	User       string // the Request-URI user (the dialled user or number)
	From, To   string // as webhooks show them
	CallerName string
	// ApplicationSid is the outgoing application of a token caller ("" for Digest callers).
	ApplicationSid string
	// FromTrunk: the call came unauthenticated from the configured carrier
	// (AccountSid and Identity are empty); it may only reach incoming numbers.
	FromTrunk bool
}

// ErrNoRoute means no application takes the call (SIP 404).
var ErrNoRoute = errors.New("calls: no route for the call")

// Router picks the account and application that take an inbound call and
// admits it. Errors: ErrNoRoute → SIP 404; an admission denial, an error
// with a RetryAfter() time.Duration method → 503 with Retry-After;
// anything else → 500.
type Router interface {
	RouteInvite(ctx context.Context, in Invite) (*Call, error)
}

// Runner runs a routed call on the caller's leg until it ends (Engine.Run,
// or a wrapper that releases what routing took when the call ends).
type Runner interface {
	Run(ctx context.Context, c *Call, leg Leg) error
}

// ClientTargets lists the identities a <Dial><Client>name</Client> reaches in
// an account: client:name and the SIP users called name on its domains.
type ClientTargets interface {
	ClientIdentities(ctx context.Context, accountSid, name string) ([]string, error)
}
