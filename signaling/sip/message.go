package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/signaling/messaging"
	"github.com/parleyhq/parley/signaling/sip/internal/reqctx"
)

// MessageSubmitter takes the messages clients send (messaging.Service
// implements it).
type MessageSubmitter interface {
	Submit(ctx context.Context, in messaging.Inbound) (messaging.Outcome, messaging.Message, error)
}

func (s *Server) registerMessageHandlers() {
	if s.messages == nil {
		return
	}
	s.srv.OnMessage(s.guard(s.handleMessage))
}

// handleMessage takes a MESSAGE from an authenticated client: size and
// syntax checks (413, 400), authentication (Digest against the sender's
// domain, or Bearer), then routing and delivery by the messaging service:
// 200 delivered to at least one binding, 202 stored for an offline recipient
// or handed to an application, 480 offline without store-and-forward, 404
// no such recipient, 503 over the account's "messages" limit.
func (s *Server) handleMessage(req *sip.Request, tx responder) {
	body := req.Body()
	if s.maxMessage > 0 && len(body) > s.maxMessage {
		s.respond(tx, req, 413, "Request Entity Too Large")
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = strings.TrimSpace(h.Value())
	}
	switch {
	case len(body) == 0:
		s.respond(tx, req, 400, "Message Body Missing")
		return
	case ct == "" || !strings.Contains(ct, "/") || strings.ContainsAny(ct, "\r\n"):
		s.respond(tx, req, 400, "Missing Or Invalid Content-Type")
		return
	case req.Recipient.User == "":
		s.respond(tx, req, 400, "Request-URI Has No User")
		return
	}
	ctx := reqctx.New()
	defer ctx.Cancel()
	// A Digest sender is a user of its own domain (the From host, as for
	// REGISTER); the recipient may be elsewhere (client:bob through us).
	domain := strings.ToLower(req.From().Address.Host)
	if net.ParseIP(strings.Trim(domain, "[]")) != nil {
		domain = strings.ToLower(req.Recipient.Host) // a phone that puts the registrar's address in From
	}
	p, ok := s.authenticate(ctx, req, tx, domain)
	if !ok {
		return
	}
	out, m, err := s.messages.Submit(ctx, messaging.Inbound{AccountSid: p.AccountSid, From: p.Identity,
		User: req.Recipient.User, Host: strings.ToLower(req.Recipient.Host), ContentType: ct, Body: body})
	var denial retryLater
	switch {
	case err == nil:
	case errors.Is(err, messaging.ErrTooLarge):
		s.respond(tx, req, 413, "Request Entity Too Large")
		return
	case errors.Is(err, messaging.ErrEmpty):
		s.respond(tx, req, 400, "Message Body Missing")
		return
	case errors.Is(err, messaging.ErrNoRoute):
		s.respond(tx, req, 404, "Not Found")
		return
	case errors.As(err, &denial):
		s.respond(tx, req, 503, "Service Unavailable", retryAfterHeader(denial))
		return
	default:
		s.log.Error("message failed", "from", p.Identity, "err", err)
		s.respond(tx, req, 500, "Server Internal Error")
		return
	}
	sidHdr := sip.NewHeader("X-Parley-Message-Sid", m.Sid)
	switch out {
	case messaging.Delivered:
		s.respond(tx, req, 200, "OK", sidHdr)
	case messaging.Queued, messaging.Accepted:
		s.respond(tx, req, 202, "Accepted", sidHdr)
	default:
		s.respond(tx, req, 480, "Temporarily Unavailable", sidHdr)
	}
}

// MessageSink delivers messages to SIP bindings: a MESSAGE over the
// binding's flow (see route), accepted on a 2xx.
func (s *Server) MessageSink() messaging.Sink {
	return messaging.SinkFunc(s.deliverMessage)
}

func (s *Server) deliverMessage(ctx context.Context, b presence.Binding, d messaging.Delivery) error {
	var contact sip.Uri
	if err := sip.ParseUri(b.Contact, &contact); err != nil {
		return fmt.Errorf("binding contact %q: %w", b.Contact, err)
	}
	req := sip.NewRequest(sip.MESSAGE, contact)
	host := s.contactFor(b.Transport).Host
	from := &sip.FromHeader{Address: addressOf(d.From, host), Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: addressOf(b.Identity, contact.Host), Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Content-Type", sanitize(d.ContentType)))
	if d.MessageSid != "" {
		req.AppendHeader(sip.NewHeader("X-Parley-Message-Sid", d.MessageSid))
	}
	req.SetBody(d.Body)
	res, err := s.Do(ctx, b, req)
	if err != nil {
		return fmt.Errorf("message to %s: %w", b.Contact, err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("message to %s: %d %s", b.Contact, res.StatusCode, res.Reason)
	}
	return nil
}

// addressOf turns an identity or address (client:alice, sip:alice@domain)
// into a SIP URI for a From or To header; client identities (and anything
// that does not parse cleanly) get host. Addresses come from the REST API
// and webhooks, so the user part is percent-escaped (RFC 3261 §25.1) and
// an odd host is replaced: nothing can break out of the header.
func addressOf(id, host string) sip.Uri {
	if strings.HasPrefix(id, "sip:") || strings.HasPrefix(id, "sips:") {
		var u sip.Uri
		if err := sip.ParseUri(id, &u); err == nil && validHost(u.Host) {
			return sip.Uri{Scheme: "sip", User: escapeUser(u.User), Host: u.Host, Port: u.Port}
		}
	}
	return sip.Uri{Scheme: "sip", User: escapeUser(identityUser(id)), Host: host}
}

// escapeUser percent-encodes every byte RFC 3261 does not allow unescaped
// in the user part of a SIP URI.
func escapeUser(u string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(u); i++ {
		c := u[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()&=+$,;?/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// validHost accepts a host name or IP literal.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}
