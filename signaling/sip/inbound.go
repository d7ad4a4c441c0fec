package sip

import (
	"context"
	"errors"
	"fmt"

	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/sip/internal/reqctx"
)

// CallConfig makes a Server take INVITEs and ring bindings (Deps.Calls).
type CallConfig struct {
	// Router routes and admits inbound calls; Runner runs them (the call
	// engine, through routing, which releases the admission when they end).
	Router calls.Router
	Runner calls.Runner
	Ports  *media.PortRange
	// MediaAddr is the address RTP endpoints bind and SDP advertises.
	MediaAddr netip.Addr
	// Codecs are the audio codecs offered and accepted, by name, in order of
	// preference for generated media (G.711 first).
	Codecs []string
	// WebRTC terminates the DTLS-SRTP media of bindings on WS/WSS (browser
	// SIP stacks); nil: they are offered plain RTP.
	WebRTC WebRTCMedia
}

// callLegs indexes the dialogs of running calls by Call-ID, for the
// in-dialog requests (ACK, BYE, INFO) that belong to them.
type callLegs struct {
	mu   sync.Mutex
	legs map[string]dialogLeg
}

type dialogLeg interface {
	readAck(req *sip.Request, tx sip.ServerTransaction)
	readBye(req *sip.Request, tx sip.ServerTransaction) error
	digit(d byte)
}

func (c *callLegs) put(callID string, l dialogLeg) {
	c.mu.Lock()
	c.legs[callID] = l
	c.mu.Unlock()
}

func (c *callLegs) drop(callID string) {
	c.mu.Lock()
	delete(c.legs, callID)
	c.mu.Unlock()
}

func (c *callLegs) get(req *sip.Request) (dialogLeg, bool) {
	id := req.CallID()
	if id == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.legs[id.Value()]
	return l, ok
}

// Drain makes the server refuse new calls (503 with Retry-After) while the
// calls in progress finish: the start of a graceful shutdown.
func (s *Server) Drain() { s.draining.Store(true) }

// registerCallHandlers is called by Listen once the sipgo server exists.
func (s *Server) registerCallHandlers() {
	if s.calls == nil {
		return
	}
	s.srv.OnInvite(s.guard(s.handleInvite))
	s.srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		if l, ok := s.legs.get(req); ok {
			l.readAck(req, tx)
		}
	})
	s.srv.OnBye(s.guard(func(req *sip.Request, r responder) {
		l, ok := s.legs.get(req)
		tx, isTx := r.(sip.ServerTransaction)
		if !ok || !isTx {
			s.respond(r, req, 481, "Call/Transaction Does Not Exist")
			return
		}
		if err := l.readBye(req, tx); err != nil {
			s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		}
	}))
	s.srv.OnInfo(s.guard(func(req *sip.Request, tx responder) {
		l, ok := s.legs.get(req)
		if !ok {
			s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
			return
		}
		if d, ok := infoDigit(req); ok {
			l.digit(d)
		}
		s.respond(tx, req, 200, "OK")
	}))
	s.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		// A CANCEL that matched no INVITE transaction (sipgo answers the rest).
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
	})
}

// infoDigit reads a DTMF key from a SIP INFO body (application/dtmf-relay
// "Signal=5" or application/dtmf "5").
func infoDigit(req *sip.Request) (byte, bool) {
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = strings.ToLower(h.Value())
	}
	body := strings.TrimSpace(string(req.Body()))
	switch {
	case strings.HasPrefix(ct, "application/dtmf-relay"):
		for _, line := range strings.Split(body, "\n") {
			k, v, ok := strings.Cut(line, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "signal") {
				body = strings.TrimSpace(v)
				break
			}
		}
	case strings.HasPrefix(ct, "application/dtmf"):
	default:
		return 0, false
	}
	if len(body) == 1 {
		if _, err := media.DTMFCode(body[0]); err == nil {
			return body[0], true
		}
	}
	return 0, false
}

func (s *Server) dialogUA() *sipgo.DialogUA {
	return &sipgo.DialogUA{Client: s.client, ContactHDR: sip.ContactHeader{Address: s.contactFor("udp")}, RewriteContact: true}
}

func (s *Server) contactHeader(transport string) sip.ContactHeader {
	return sip.ContactHeader{Address: s.contactFor(strings.ToLower(transport))}
}

// handleInvite takes an inbound call: authenticate, check the offer, route
// and admit, then run it on this goroutine until it ends (sipgo keeps the
// INVITE transaction while the handler runs).
func (s *Server) handleInvite(req *sip.Request, r responder) {
	tx, ok := r.(sip.ServerTransaction)
	if !ok {
		s.respond(r, req, 500, "Server Internal Error")
		return
	}
	if s.draining.Load() {
		s.respond(tx, req, 503, "Service Unavailable", sip.NewHeader("Retry-After", "30"))
		return
	}
	if to := req.To(); to != nil {
		if _, tagged := to.Params.Get("tag"); tagged {
			s.respond(tx, req, 488, "Re-INVITE Not Supported") // in-dialog offers are not supported yet
			return
		}
	}
	domain := req.Recipient.Host
	fromTrunk := s.trunk.trusts(sourceIP(req))
	var p principal
	if !fromTrunk {
		ctx := reqctx.New()
		var ok bool
		p, ok = s.authenticate(ctx, req, tx, domain)
		ctx.Cancel()
		if !ok {
			return
		}
	}
	var offer media.Session
	var webOffer string // a browser SIP stack's WebRTC offer (DTLS-SRTP)
	if codecs, ok, err := s.webRTCOffer(req.Body()); ok {
		if err != nil {
			s.respond(tx, req, 488, "Not Acceptable Here", sip.NewHeader("Warning", `399 parley "`+sanitize(err.Error())+`"`))
			return
		}
		offer, webOffer = media.Session{Codecs: codecs}, string(req.Body())
	} else {
		var err error
		if offer, err = media.ParseSDP(req.Body()); err != nil {
			s.respond(tx, req, 488, "Not Acceptable Here", sip.NewHeader("Warning", `399 parley "`+sanitize(err.Error())+`"`))
			return
		}
	}
	accepted := media.Negotiate(offer.Codecs, s.calls.Codecs...)
	if _, _, ok := (media.Session{Codecs: accepted}).First(); !ok {
		s.respond(tx, req, 488, "Not Acceptable Here", sip.NewHeader("Warning", `399 parley "no common audio codec"`))
		return
	}
	offer.Codecs = accepted

	in := calls.Invite{AccountSid: p.AccountSid, Identity: p.Identity, Domain: domain, User: req.Recipient.User,
		From: p.Identity, To: "sip:" + req.Recipient.User + "@" + domain}
	if f := req.From(); f != nil {
		in.CallerName = sanitize(f.DisplayName)
	}
	if p.Bearer {
		in.ApplicationSid = p.OutgoingApp
	}
	if fromTrunk {
		in.FromTrunk, in.From, in.To = true, callerNumber(req.From()), req.Recipient.User
	}
	rctx := reqctx.New()
	call, err := s.calls.Router.RouteInvite(rctx, in)
	rctx.Cancel()
	if err != nil {
		var denial retryLater
		switch {
		case errors.Is(err, calls.ErrNoRoute):
			s.respond(tx, req, 404, "Not Found")
		case errors.As(err, &denial):
			s.respond(tx, req, 503, "Service Unavailable", retryAfterHeader(denial))
		default:
			s.log.Error("call routing failed", "err", err)
			s.respond(tx, req, 500, "Server Internal Error")
		}
		return
	}
	ua := s.dialogUA()
	ua.ContactHDR = s.contactHeader(req.Transport())
	dtx, err := ua.ReadInvite(req, tx)
	if err != nil {
		s.respond(tx, req, 500, "Server Internal Error")
		return
	}
	leg := &inboundLeg{s: s, dtx: dtx, invite: req, offer: offer, webOffer: webOffer, digits: make(chan byte, 16)}
	callID := req.CallID().Value()
	s.legs.put(callID, leg)
	defer s.legs.drop(callID)
	defer leg.close()
	if err := s.calls.Runner.Run(context.Background(), call, leg); err != nil {
		s.log.Warn("call ended with an error", "call", call.Sid, "err", err)
	}
}

// sanitize keeps a value safe to put in a header: no CR, LF or quotes.
func sanitize(v string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == '"' || r < 0x20 {
			return ' '
		}
		return r
	}, v)
}

// inboundLeg is the caller's side of a call that arrived by SIP.
type inboundLeg struct {
	s      *Server
	dtx    *sipgo.DialogServerSession
	invite *sip.Request
	offer  media.Session
	digits chan byte
	// webOffer is the SDP of a WebRTC offer (a browser SIP stack): its
	// media is answered by CallConfig.WebRTC instead of an RTP endpoint.
	webOffer string
	webClose func()

	mu       sync.Mutex
	answered bool
	final    bool
	media    calls.LegMedia
	ep       *media.Endpoint
}

func (l *inboundLeg) Offer() []media.RTPCodec { return l.offer.Codecs }

// choose picks the answer's codecs among the offer: prefer's names first
// (pass-through to a dialled party), else the offer's first G.711 law; plus
// telephone-event when offered.
func choose(offer []media.RTPCodec, prefer []media.RTPCodec) ([]media.RTPCodec, error) {
	var audio *media.RTPCodec
	names := []string{"PCMU", "PCMA"}
	if len(prefer) > 0 {
		names = nil
		for _, p := range prefer {
			if !p.Is("telephone-event") {
				names = append(names, p.Name)
			}
		}
	}
	for _, name := range names {
		for i := range offer {
			if offer[i].Is(name) && audio == nil {
				audio = &offer[i]
			}
		}
	}
	if audio == nil {
		return nil, errors.New("no codec in common with the other party")
	}
	out := []media.RTPCodec{*audio}
	for _, c := range offer {
		if c.Is("telephone-event") {
			out = append(out, c)
			break
		}
	}
	return out, nil
}

func legMedia(ep *media.Endpoint, codecs []media.RTPCodec) calls.LegMedia {
	m := calls.LegMedia{Endpoint: ep, Codec: media.PCMU, Codecs: codecs}
	audio, ev, _ := media.Session{Codecs: codecs}.First()
	if audio.Is("PCMA") {
		m.Codec = media.PCMA
	}
	m.EventPT = ev
	return m
}

func (l *inboundLeg) Answer(ctx context.Context, prefer []media.RTPCodec) (calls.LegMedia, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.answered {
		return l.media, nil
	}
	if l.final {
		return calls.LegMedia{}, errors.New("the call was already refused")
	}
	if l.webOffer != "" {
		answer, m, closeFn, err := l.s.calls.WebRTC.AnswerSIP(ctx, l.webOffer, prefer)
		if err != nil {
			return calls.LegMedia{}, fmt.Errorf("answer: %w", err)
		}
		if err := l.dtx.RespondSDP([]byte(answer)); err != nil {
			closeFn()
			return calls.LegMedia{}, fmt.Errorf("answer: %w", err)
		}
		l.answered, l.final, l.webClose, l.media = true, true, closeFn, m
		return m, nil
	}
	codecs, err := choose(l.offer.Codecs, prefer)
	if err != nil {
		return calls.LegMedia{}, err
	}
	ep, err := l.s.calls.Ports.Listen(l.s.calls.MediaAddr)
	if err != nil {
		return calls.LegMedia{}, fmt.Errorf("answer: %w", err)
	}
	ep.SetRemote(l.offer.RTP())
	answer := media.Session{Addr: l.s.calls.MediaAddr, Port: int(ep.Local().Port()), Codecs: codecs, PTime: 20}
	sessID := uint64(time.Now().UnixNano())
	if err := l.dtx.RespondSDP(answer.Marshal(sessID, sessID)); err != nil {
		ep.Close()
		return calls.LegMedia{}, fmt.Errorf("answer: %w", err)
	}
	l.answered, l.final, l.ep = true, true, ep
	l.media = legMedia(ep, codecs)
	return l.media, nil
}

func (l *inboundLeg) Ringing(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.final {
		return nil
	}
	return l.dtx.Respond(180, "Ringing", nil)
}

func (l *inboundLeg) Reject(ctx context.Context, status int, reason string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.final {
		return nil
	}
	l.final = true
	if reason == "" {
		reason = reasonPhrase(status)
	}
	return l.dtx.Respond(status, reason, nil)
}

func (l *inboundLeg) Hangup(ctx context.Context) error {
	l.mu.Lock()
	answered, final := l.answered, l.final
	l.final = true
	l.mu.Unlock()
	if !answered {
		if final {
			return nil
		}
		return l.dtx.Respond(480, "Temporarily Unavailable", nil)
	}
	cont := l.invite.Contact()
	if cont == nil {
		return errors.New("hangup: the INVITE had no Contact")
	}
	bye := sip.NewRequest(sip.BYE, cont.Address)
	bye.SetDestination(l.invite.Source()) // back over the flow the call came in on
	if strings.EqualFold(l.invite.Transport(), "udp") {
		bye.Laddr = l.s.udpLaddr
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return l.dtx.WriteBye(ctx, bye)
}

func (l *inboundLeg) Done() <-chan struct{} { return l.dtx.Context().Done() }
func (l *inboundLeg) Digits() <-chan byte   { return l.digits }

func (l *inboundLeg) readAck(req *sip.Request, tx sip.ServerTransaction) { _ = l.dtx.ReadAck(req, tx) }
func (l *inboundLeg) readBye(req *sip.Request, tx sip.ServerTransaction) error {
	return l.dtx.ReadBye(req, tx)
}

func (l *inboundLeg) digit(d byte) {
	select {
	case l.digits <- d:
	default:
	}
}

func (l *inboundLeg) close() {
	l.mu.Lock()
	ep, webClose := l.ep, l.webClose
	l.mu.Unlock()
	if ep != nil {
		ep.Close()
	}
	if webClose != nil {
		webClose()
	}
	l.dtx.Close()
}

func reasonPhrase(code int) string {
	switch code {
	case 404:
		return "Not Found"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 488:
		return "Not Acceptable Here"
	case 500:
		return "Server Internal Error"
	case 503:
		return "Service Unavailable"
	case 603:
		return "Decline"
	}
	return "Error"
}

// AdvertisedHost is the address Parley puts in Via and Contact (and, by
// default, in SDP): the configured hostname, else the listener's address.
// Valid after Listen.
func (s *Server) AdvertisedHost() string {
	if s.cfg.Hostname != "" {
		return s.cfg.Hostname
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.advertisedHost()
}

// Realm is the Digest realm in force (credentials are hashed with it).
func (s *Server) Realm() string { return s.cfg.Realm }

// webRTCOffer reports whether body is a WebRTC offer (a DTLS fingerprint)
// that CallConfig.WebRTC can answer, with its codecs.
func (s *Server) webRTCOffer(body []byte) ([]media.RTPCodec, bool, error) {
	if s.calls.WebRTC == nil || !strings.Contains(string(body), "a=fingerprint:") {
		return nil, false, nil
	}
	codecs, err := s.calls.WebRTC.ParseOffer(string(body))
	return codecs, true, err
}
