package messaging

import (
	"bytes"
	"context"
	"errors"
	"net/url"

	"github.com/parleyhq/parley/internal/webhook"
	"github.com/parleyhq/parley/signaling/twiml"
)

// Error codes of application messages.
const (
	ErrorTwiML = 12100 // the messaging URL's reply is not valid TwiML
)

// toApplication posts a received message to the application's messaging URL
// and sends the <Message> verbs of its reply.
func (s *Service) toApplication(ctx context.Context, m Message, app Application) {
	token, err := s.deps.Resolver.AuthToken(ctx, m.AccountSid)
	if err != nil {
		s.log.Error("message to application: auth token", "message", m.Sid, "err", err)
		s.setStatus(m, StatusFailed, ErrorWebhook, err.Error())
		return
	}
	p := url.Values{
		"MessageSid": {m.Sid}, "SmsSid": {m.Sid}, "SmsMessageSid": {m.Sid}, "AccountSid": {m.AccountSid},
		"From": {m.From}, "To": {m.To}, "Body": {string(m.Body)}, "NumMedia": {"0"}, "NumSegments": {"1"},
		"SmsStatus": {StatusReceived}, "ApiVersion": {"2010-04-01"},
	}
	if m.ContentType != "text/plain" {
		p.Set("ContentType", m.ContentType)
	}
	res, err := s.deps.Webhooks.Do(ctx, webhook.Request{URL: app.URL, Method: app.Method, Params: p, AuthToken: token})
	if err != nil {
		s.log.Warn("messaging URL failed", "message", m.Sid, "url", app.URL, "err", err)
		s.setStatus(m, StatusFailed, webhook.Code(err), err.Error()) // 11200, or the egress policy's code
		return
	}
	if len(bytes.TrimSpace(res.Body)) == 0 {
		return // no reply
	}
	doc, err := twiml.Parse(res.Body)
	if err != nil {
		s.log.Warn("messaging URL reply is not valid TwiML", "message", m.Sid, "url", app.URL, "err", err)
		s.setStatus(m, StatusReceived, ErrorTwiML, err.Error())
		return
	}
	base, _ := url.Parse(app.URL)
	for _, v := range doc.Verbs {
		reply, ok := v.(*twiml.Message)
		if !ok {
			s.log.Warn("messaging URL reply: verb ignored (only <Message> applies to messages)", "message", m.Sid, "verb", v.Name())
			continue
		}
		req := SendRequest{AccountSid: m.AccountSid, From: reply.From, To: reply.To, Body: reply.Body,
			Direction: DirectionOutboundReply, StatusCallbackMethod: reply.Method}
		if req.To == "" {
			req.To = m.From // a reply goes back to the sender
		}
		if req.From == "" {
			req.From = m.To
		}
		if reply.Action != "" {
			if u, err := base.Parse(reply.Action); err == nil {
				req.StatusCallback = u.String()
			}
		}
		if _, err := s.Send(ctx, req); err != nil {
			s.log.Warn("<Message> reply not sent", "message", m.Sid, "to", req.To, "no_route", errors.Is(err, ErrNoRoute), "err", err)
		}
	}
}
