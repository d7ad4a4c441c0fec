package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/signaling/messaging"
	"github.com/parleyhq/parley/store"
)

// MessageSender sends messages to clients (messaging.Service implements it).
type MessageSender interface {
	Send(ctx context.Context, req messaging.SendRequest) (messaging.Message, error)
}

// MessageResource is a message as the API shows it.
type MessageResource struct {
	Sid                 string            `json:"sid"`
	AccountSid          string            `json:"account_sid"`
	MessagingServiceSid *string           `json:"messaging_service_sid"`
	From                string            `json:"from"`
	To                  string            `json:"to"`
	Body                string            `json:"body"`
	Status              string            `json:"status"`
	Direction           string            `json:"direction"`
	NumSegments         string            `json:"num_segments"`
	NumMedia            string            `json:"num_media"`
	Price               *string           `json:"price"`
	PriceUnit           *string           `json:"price_unit"`
	ErrorCode           *int              `json:"error_code"`
	ErrorMessage        *string           `json:"error_message"`
	APIVersion          string            `json:"api_version"`
	DateCreated         string            `json:"date_created"`
	DateUpdated         string            `json:"date_updated"`
	DateSent            *string           `json:"date_sent"`
	URI                 string            `json:"uri"`
	SubresourceURIs     map[string]string `json:"subresource_uris"`
}

// NewMessageResource renders a message.
func NewMessageResource(m messaging.Message) MessageResource {
	base := Prefix + "/Accounts/" + m.AccountSid + "/Messages/" + m.Sid
	out := MessageResource{Sid: m.Sid, AccountSid: m.AccountSid, From: m.From, To: m.To, Body: string(m.Body),
		Status: m.Status, Direction: m.Direction, NumSegments: "1", NumMedia: "0", APIVersion: "2010-04-01",
		DateCreated: rfc2822(m.DateCreated), DateUpdated: rfc2822(m.DateUpdated), URI: base + ".json",
		SubresourceURIs: map[string]string{"media": base + "/Media.json"}, ErrorMessage: optional(m.ErrorMessage)}
	if m.ErrorCode != 0 {
		code := m.ErrorCode
		out.ErrorCode = &code
	}
	if !m.DateSent.IsZero() {
		out.DateSent = optional(rfc2822(m.DateSent))
	}
	return out
}

// createMessage sends a message to a client: To (client:<identity> or
// sip:<user>@<domain of the account>), From, Body, StatusCallback.
func (a *API) createMessage(r *http.Request, p principal) (int, any, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	if a.messages == nil {
		return 0, nil, errorf(http.StatusServiceUnavailable, CodeServiceUnavailable, "Messaging is not available on this server")
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := onlyParams(v, "To", "From", "Body", "StatusCallback", "StatusCallbackMethod"); err != nil {
		return 0, nil, err
	}
	req := messaging.SendRequest{AccountSid: acct.Sid, Direction: messaging.DirectionOutboundAPI}
	req.To, _ = param(v, "To")
	req.From, _ = param(v, "From")
	req.Body, _ = param(v, "Body")
	if req.To == "" || req.From == "" || req.Body == "" {
		return 0, nil, badParam("To, From and Body are required")
	}
	req.StatusCallback, _ = param(v, "StatusCallback")
	if err := checkURL("StatusCallback", req.StatusCallback); err != nil {
		return 0, nil, err
	}
	m, _ := param(v, "StatusCallbackMethod")
	if req.StatusCallbackMethod, err = checkMethod("StatusCallbackMethod", m); err != nil {
		return 0, nil, err
	}
	msg, err := a.messages.Send(r.Context(), req)
	switch {
	case errors.Is(err, messaging.ErrNoRoute):
		return 0, nil, badParam("To %q: %v (want client:<identity> or sip:<user>@<one of the account's SIP domains>)", req.To, err)
	case errors.Is(err, messaging.ErrTooLarge):
		return 0, nil, badParam("Body: %v", err)
	case errors.Is(err, messaging.ErrFrom):
		return 0, nil, badParam("From %q: %v", req.From, err)
	case err != nil:
		return 0, nil, err
	}
	return http.StatusCreated, NewMessageResource(msg), nil
}

func (a *API) listMessages(r *http.Request, p principal) (int, any, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	f := store.MessageFilter{To: q.Get("To"), From: q.Get("From")}
	for _, d := range []struct {
		name string
		dst  *time.Time
	}{{"DateSent", &f.SentOn}, {"DateSent>", &f.SentAfter}, {"DateSent<", &f.SentBefore}} {
		v := q.Get(d.name)
		if v == "" {
			continue
		}
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return 0, nil, badParam("%s %q: want a date YYYY-MM-DD", d.name, v)
		}
		*d.dst = t
	}
	return pagedList(r, "messages", func(pg store.Page) ([]store.Message, bool, error) {
		return a.store.ListMessages(r.Context(), acct.Sid, f, pg)
	}, func(m store.Message) MessageResource { return NewMessageResource(messaging.Message(m)) })
}

func (a *API) fetchMessage(r *http.Request, p principal) (int, any, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	msgSid, ok := leaf(r, "message")
	if !ok || !sid.Valid(sid.Message, msgSid) {
		return 0, nil, notFound(r)
	}
	m, err := a.store.Message(r.Context(), msgSid)
	if err != nil {
		return 0, nil, err
	}
	if m.AccountSid != acct.Sid {
		return 0, nil, notFound(r)
	}
	return http.StatusOK, NewMessageResource(messaging.Message(m)), nil
}
