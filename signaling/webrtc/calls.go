package webrtc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	pion "github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/presence/accesstoken"
	"github.com/parleyhq/parley/signaling/calls"
)

// ring offers a call to this session: incoming with Parley's SDP offer
// (the caller's codecs and payload types), then waits for the browser.
func (s *session) ring(ctx context.Context, req calls.RingRequest) (calls.Leg, calls.LegMedia, error) {
	codecs := bridgeable(req.Offer)
	if _, _, ok := (sessionOf(codecs)).First(); !ok {
		return nil, calls.LegMedia{}, &calls.RingRefused{Status: 488, Reason: "no codec a browser can take unchanged"}
	}
	l := newLeg(s.g, s, req.CallSid, "")
	if err := l.setup(codecs); err != nil {
		return nil, calls.LegMedia{}, err
	}
	s.addLeg(l)
	fail := func(status int, reason string, err error) (calls.Leg, calls.LegMedia, error) {
		l.hangup(status, reason)
		return nil, calls.LegMedia{}, err
	}
	offer, err := l.pc.CreateOffer(nil)
	if err != nil {
		return fail(500, "", fmt.Errorf("offer: %w", err))
	}
	sdp, err := l.localDescription(offer)
	if err != nil {
		return fail(500, "", err)
	}
	from := req.From
	if req.CallerID != "" {
		from = req.CallerID
	}
	to := ""
	if req.Call != nil {
		to = req.Call.To
	}
	l.s.send(Frame{Type: TypeIncoming, CallSid: l.callSid, From: from, To: to, SDP: sdp})
	for {
		select {
		case <-ctx.Done():
			return fail(487, "canceled", ctx.Err())
		case <-l.done:
			return nil, calls.LegMedia{}, &calls.RingRefused{Status: 480, Reason: "browser left"}
		case <-l.ringing:
			if req.Ringing != nil {
				req.Ringing()
			}
		case status := <-l.rejects:
			l.hungUp.Store(true)
			l.end()
			return nil, calls.LegMedia{}, &calls.RingRefused{Status: status, Reason: "declined"}
		case answer := <-l.answers:
			if req.Ringing != nil {
				req.Ringing() // an answer implies it rang
			}
			got, err := audioCodecs(answer)
			if err == nil {
				got = bridgeable(got)
				if _, _, ok := sessionOf(got).First(); !ok {
					err = errors.New("no audio codec in the answer")
				}
			}
			if err == nil {
				err = l.setRemote(pion.SDPTypeAnswer, answer)
			}
			if err != nil {
				l.s.sendError(CodeBadFrame, err.Error(), Frame{CallSid: l.callSid})
				return fail(488, "bad answer", &calls.RingRefused{Status: 488, Reason: err.Error()})
			}
			select {
			case <-l.connected:
			case <-ctx.Done():
				return fail(487, "canceled", ctx.Err())
			case <-l.done:
				return nil, calls.LegMedia{}, &calls.RingRefused{Status: 480, Reason: "browser left"}
			case <-time.After(s.g.cfg.ConnectTimeout):
				return fail(408, "media did not connect", &calls.RingRefused{Status: 408, Reason: "ICE/DTLS did not connect"})
			}
			l.mu.Lock()
			l.answered, l.final = true, true
			codec, ev := legMediaOf(l.ep, got)
			l.med = calls.LegMedia{Endpoint: l.ep, Codec: codec, EventPT: ev, Codecs: got}
			m := l.med
			l.mu.Unlock()
			return l, m, nil
		}
	}
}

// placeCall runs a browser's invite through its token's outgoing
// application, like a SIP caller with a token: the engine fetches the
// application's voice URL with To and the invite's params.
func (s *session) placeCall(claims accesstoken.Claims, f Frame) {
	fail := func(code, msg string) { s.sendError(code, msg, Frame{Ref: f.Ref}) }
	app := claims.Grants.OutgoingApplication()
	if app == "" {
		fail(CodeForbidden, "the token has no outgoing application")
		return
	}
	if s.g.draining.Load() {
		fail(CodeUnavailable, "the server is shutting down")
		return
	}
	if s.g.deps.Router == nil || s.g.deps.Runner == nil {
		fail(CodeUnavailable, "outgoing calls are not enabled")
		return
	}
	offered, err := audioCodecs(f.SDP)
	if err != nil {
		fail(CodeBadFrame, err.Error())
		return
	}
	offered = bridgeable(offered)
	if _, _, ok := sessionOf(offered).First(); !ok {
		fail(CodeCallFailed, "the offer has no PCMU, PCMA or Opus")
		return
	}
	from := presence.ClientIdentity(claims.Grants.Identity)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	call, err := s.g.deps.Router.RouteInvite(ctx, calls.Invite{AccountSid: claims.AccountSid, Identity: from, From: from, To: f.To,
		User: f.To, ApplicationSid: app})
	cancel()
	if err != nil {
		var denial interface{ RetryAfter() time.Duration } // an admission denial
		switch {
		case errors.Is(err, calls.ErrNoRoute):
			fail(CodeCallFailed, "no route: "+err.Error())
		case errors.As(err, &denial):
			fail(CodeUnavailable, "over the account's limits")
		default:
			s.g.log.Error("routing a browser call", "err", err)
			fail(CodeCallFailed, "routing failed")
		}
		return
	}
	if len(f.Params) > 0 {
		call.Params = url.Values{}
		for k, v := range f.Params {
			call.Params.Set(k, v)
		}
	}
	l := newLeg(s.g, s, call.Sid, f.Ref)
	l.outgoing, l.offer, l.offerSDP = true, offered, f.SDP
	select {
	case <-s.done:
		return
	default:
	}
	s.addLeg(l)
	defer l.end()
	if err := s.g.deps.Runner.Run(context.Background(), call, l); err != nil && !strings.Contains(err.Error(), "hung up") {
		s.g.log.Warn("browser call ended with an error", "call", call.Sid, "err", err)
	}
	l.hangup(0, "")
}
