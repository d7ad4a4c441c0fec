package messaging

import (
	"context"
	"errors"
	"time"

	"github.com/parleyhq/parley/presence"
)

// Message statuses (the REST API's names).
const (
	StatusQueued      = "queued"      // accepted; waiting for the recipient (store-and-forward)
	StatusSending     = "sending"     // being delivered now
	StatusDelivered   = "delivered"   // a binding of the recipient accepted it (2xx)
	StatusUndelivered = "undelivered" // nobody took it before it expired, or delivery was refused
	StatusFailed      = "failed"      // could not be sent at all (no route, webhook failure)
	StatusReceived    = "received"    // a message to an application, handed to its messaging URL
)

// Directions.
const (
	DirectionInbound       = "inbound"        // sent by a client (SIP MESSAGE, browser)
	DirectionOutboundAPI   = "outbound-api"   // POST …/Messages.json
	DirectionOutboundReply = "outbound-reply" // a <Message> in a messaging webhook's reply
)

// Error codes recorded on messages (the REST API's error_code).
const (
	ErrorUnreachable = 30003 // the recipient stayed offline until the message expired
	ErrorWebhook     = 11200 // the messaging URL failed
)

// TransportWebRTC is the binding transport of browser sessions of the
// WebRTC gateway; it delivers through the Sink registered for it.
const TransportWebRTC = "webrtc"

// Message is one message as stored.
type Message struct {
	Sid            string
	AccountSid     string
	ApplicationSid string // set for messages to an application
	From, To       string // "client:alice", "sip:alice@pbx.example.com"
	// Target is the presence identity the message is delivered to; "" for
	// messages to an application.
	Target               string
	Body                 []byte
	ContentType          string
	Direction            string
	Status               string
	ErrorCode            int
	ErrorMessage         string
	StatusCallback       string
	StatusCallbackMethod string
	ExpiresAt            time.Time // queued messages become undelivered after it
	DateSent             time.Time // zero until delivered
	DateCreated          time.Time
	DateUpdated          time.Time
}

// Delivery is what a Sink carries to one binding.
type Delivery struct {
	MessageSid  string
	From, To    string // addresses as the recipient sees them
	ContentType string
	Body        []byte
}

// Sink delivers a message to one binding over its transport. It returns nil
// when the binding accepted the message (a 2xx final response for SIP).
type Sink interface {
	Deliver(ctx context.Context, b presence.Binding, d Delivery) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, b presence.Binding, d Delivery) error

// Deliver implements Sink.
func (f SinkFunc) Deliver(ctx context.Context, b presence.Binding, d Delivery) error {
	return f(ctx, b, d)
}

// Store keeps messages (the core store implements it with SQLite, through
// an adapter in the composition root).
type Store interface {
	CreateMessage(ctx context.Context, m Message) error
	// UpdateMessageStatus sets a message's status, error and date sent.
	UpdateMessageStatus(ctx context.Context, m Message) error
	// QueuedMessages returns an identity's queued messages, oldest first.
	QueuedMessages(ctx context.Context, accountSid, target string) ([]Message, error)
	// QueuedTargets lists the (account, identity) pairs with queued messages.
	QueuedTargets(ctx context.Context) ([]Recipient, error)
	// ExpireMessages marks queued messages whose expiry is at or before now
	// undelivered (with code) and returns them.
	ExpireMessages(ctx context.Context, now time.Time, code int, reason string) ([]Message, error)
	// RequeueSending turns messages left "sending" by a stopped server back
	// to "queued" (they are delivered again: at least once).
	RequeueSending(ctx context.Context) (int, error)
}

// Recipient is an identity of an account.
type Recipient struct {
	AccountSid, Identity string
}

// Application is where a message to an application goes.
type Application struct {
	Sid    string // "" for a SIP domain's messaging URL
	URL    string
	Method string
}

// Route is where a message from a client goes: to an identity (delivered
// through its bindings) or to an application.
type Route struct {
	To       string // the address stored and shown (client:bob, sip:bob@domain)
	Identity string
	App      *Application
}

// ErrNoRoute means nothing takes the message (SIP 404, REST 400).
var ErrNoRoute = errors.New("messaging: no route for the message")

// Resolver answers the routing questions that need an account's
// configuration (SIP domains, applications, auth tokens).
type Resolver interface {
	// Route resolves a message from a client of accountSid to user@host
	// (the Request-URI). Errors wrap ErrNoRoute when nothing takes it.
	Route(ctx context.Context, accountSid, user, host string) (Route, error)
	// Target resolves an address the REST API or a TwiML reply sends to
	// (client:bob or sip:bob@domain). Errors wrap ErrNoRoute.
	Target(ctx context.Context, accountSid, to string) (Route, error)
	// AuthToken is the key webhooks of the account are signed with.
	AuthToken(ctx context.Context, accountSid string) (string, error)
}
