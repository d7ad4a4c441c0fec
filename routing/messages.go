package routing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/messaging"
	"github.com/parleyhq/parley/store"
)

// Messages answers the messaging service's routing questions from the
// store (messaging.Resolver).
type Messages struct {
	store Store
}

// NewMessages creates the messaging service's resolver.
func NewMessages(st Store) *Messages { return &Messages{store: st} }

func (r *Messages) activeAccount(ctx context.Context, accountSid string) error {
	acct, err := r.store.Account(ctx, accountSid)
	if err != nil {
		return fmt.Errorf("%w: account %s: %w", messaging.ErrNoRoute, accountSid, err)
	}
	if acct.Status != store.StatusActive {
		return fmt.Errorf("%w: account %s is %s", messaging.ErrNoRoute, acct.Sid, acct.Status)
	}
	return nil
}

// Route implements messaging.Resolver. A message from a client to user@host goes:
//   - to application AP… when user is the sid of an application of the
//     account with a messaging URL;
//   - to the application of the account's incoming number user (messages
//     between accounts are not routed: the sender's account owns the message);
//   - when host is one of the account's SIP domains: to the SIP user user of
//     that domain, else to the domain's messaging URL, else nowhere (404);
//   - otherwise (host is this server) to the client identity client:user.
func (r *Messages) Route(ctx context.Context, accountSid, user, host string) (messaging.Route, error) {
	if err := r.activeAccount(ctx, accountSid); err != nil {
		return messaging.Route{}, err
	}
	to := "sip:" + user + "@" + host // the address as sent, kept as the message's To
	if sid.Valid(sid.Application, user) {
		app, err := r.store.Application(ctx, user)
		if err != nil || app.AccountSid != accountSid || app.MessagingURL == "" {
			return messaging.Route{}, fmt.Errorf("%w: application %s has no messaging URL", messaging.ErrNoRoute, user)
		}
		return messaging.Route{To: to, App: &messaging.Application{Sid: app.Sid, URL: app.MessagingURL, Method: app.MessagingMethod}}, nil
	}
	if num, err := r.store.IncomingNumberByNumber(ctx, user); err == nil && num.AccountSid == accountSid && num.ApplicationSid != "" {
		app, err := r.store.Application(ctx, num.ApplicationSid)
		if err != nil || app.MessagingURL == "" {
			return messaging.Route{}, fmt.Errorf("%w: number %s: its application has no messaging URL", messaging.ErrNoRoute, num.PhoneNumber)
		}
		return messaging.Route{To: num.PhoneNumber, App: &messaging.Application{Sid: app.Sid, URL: app.MessagingURL, Method: app.MessagingMethod}}, nil
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return messaging.Route{}, err
	}
	dom, err := r.store.SIPDomainByName(ctx, host)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return messaging.Route{To: presence.ClientIdentity(user), Identity: presence.ClientIdentity(user)}, nil
	case err != nil:
		return messaging.Route{}, err
	case dom.AccountSid != accountSid:
		return messaging.Route{}, fmt.Errorf("%w: domain %s belongs to another account", messaging.ErrNoRoute, host)
	}
	_, err = r.store.DigestCredential(ctx, dom.DomainName, user)
	if err == nil || errors.Is(err, presence.ErrRegistrationDisabled) {
		id := presence.SIPIdentity(user, dom.DomainName)
		return messaging.Route{To: id, Identity: id}, nil
	}
	if !errors.Is(err, presence.ErrUnknownUser) {
		return messaging.Route{}, err
	}
	if dom.MessagingURL == "" {
		return messaging.Route{}, fmt.Errorf("%w: no user %s on %s and the domain has no messaging URL", messaging.ErrNoRoute, user, host)
	}
	return messaging.Route{To: to, App: &messaging.Application{URL: dom.MessagingURL, Method: dom.MessagingMethod}}, nil
}

// Target implements messaging.Resolver: client:<identity>, or
// sip:<user>@<a SIP domain of the account>.
func (r *Messages) Target(ctx context.Context, accountSid, to string) (messaging.Route, error) {
	if err := r.activeAccount(ctx, accountSid); err != nil {
		return messaging.Route{}, err
	}
	// Kind is set for a malformed client identity too (client: with no name).
	if id, err := presence.ParseIdentity(to); id.Kind == presence.KindClient {
		if err != nil || len(id.User) > 256 || strings.ContainsFunc(id.User, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			return messaging.Route{}, fmt.Errorf("%w: invalid client identity", messaging.ErrNoRoute)
		}
		return messaging.Route{To: to, Identity: to}, nil
	}
	var u sip.Uri
	if !strings.HasPrefix(to, "sip:") || sip.ParseUri(to, &u) != nil || u.User == "" {
		return messaging.Route{}, fmt.Errorf("%w: not a client or SIP address", messaging.ErrNoRoute)
	}
	dom, err := r.store.SIPDomainByName(ctx, u.Host)
	if err != nil || dom.AccountSid != accountSid {
		return messaging.Route{}, fmt.Errorf("%w: %s is not a SIP domain of the account", messaging.ErrNoRoute, u.Host)
	}
	id := presence.SIPIdentity(u.User, dom.DomainName)
	return messaging.Route{To: id, Identity: id}, nil
}

// AuthToken implements messaging.Resolver.
func (r *Messages) AuthToken(ctx context.Context, accountSid string) (string, error) {
	acct, err := r.store.Account(ctx, accountSid)
	if err != nil {
		return "", err
	}
	return acct.AuthToken, nil
}

// MessageSender sends messages (*messaging.Service implements it).
type MessageSender interface {
	Send(ctx context.Context, req messaging.SendRequest) (messaging.Message, error)
}

// Messenger sends the <Message> verbs of calls through the messaging
// service (calls.Messenger).
type Messenger struct{ msgs MessageSender }

// NewMessenger adapts the messaging service for the call engine.
func NewMessenger(msgs MessageSender) Messenger { return Messenger{msgs: msgs} }

// SendMessage implements calls.Messenger.
func (c Messenger) SendMessage(ctx context.Context, m calls.OutboundMessage) error {
	_, err := c.msgs.Send(ctx, messaging.SendRequest{AccountSid: m.AccountSid, From: m.From, To: m.To, Body: m.Body,
		Direction: messaging.DirectionOutboundReply, StatusCallback: m.StatusCallback, StatusCallbackMethod: m.Method})
	return err
}

// MessageSubmitter takes the messages clients send (*messaging.Service
// implements it).
type MessageSubmitter interface {
	Submit(ctx context.Context, in messaging.Inbound) (messaging.Outcome, messaging.Message, error)
}

// BrowserMessages hands the message frames of browser sessions (the WebRTC
// gateway's MessageHook) to the messaging service, as a SIP MESSAGE from
// that client would be: to is client:bob, sip:bob@domain or a bare bob (a
// client of the account).
func BrowserMessages(msgs MessageSubmitter) func(ctx context.Context, accountSid, fromIdentity, to, body string) error {
	return func(ctx context.Context, accountSid, fromIdentity, to, body string) error {
		in := messaging.Inbound{AccountSid: accountSid, From: fromIdentity, ContentType: "text/plain", Body: []byte(body)}
		// Kind is set for malformed identities too (sip: with no domain).
		id, err := presence.ParseIdentity(to)
		switch id.Kind {
		case presence.KindSIP:
			if err != nil {
				return fmt.Errorf("to %q: want client:<identity>, sip:<user>@<domain> or an identity", to)
			}
			in.User, in.Host = id.User, id.Host
		case presence.KindClient:
			in.User = id.User
		default:
			in.User = to
		}
		if in.User == "" {
			return fmt.Errorf("to %q: no recipient", to)
		}
		_, _, err = msgs.Submit(ctx, in)
		return err
	}
}
