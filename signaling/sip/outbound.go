package sip

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/media"
)

// Ringer rings SIP bindings (udp, tcp, tls, ws, wss) for the call
// engine's forking (calls.Forker): an INVITE over the binding's flow with
// the caller's codecs, WebRTC media for browser SIP stacks on WS/WSS. It
// needs Deps.Calls.
func (s *Server) Ringer() calls.Ringer { return sipRinger{s: s} }

// Carrier reaches numbers through the configured trunk (Config.Trunk), or
// is nil when no trunk URI is configured: numbers cannot be dialled.
func (s *Server) Carrier() calls.Carrier {
	if !s.trunk.dials() {
		return nil
	}
	return sipRinger{s: s, trunk: true}
}

// URIIdentity is the presence identity a SIP URI (<Dial><Sip>) reaches: its
// user of the domain named by its host.
func URIIdentity(uri string) (string, error) {
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil {
		return "", fmt.Errorf("dial %q: %w", uri, err)
	}
	return presence.SIPIdentity(u.User, u.Host), nil
}

// sipRinger is the Ringer (and, with trunk, the Carrier) of a Server.
type sipRinger struct {
	s     *Server
	trunk bool // a number at the carrier, not a registered client
}

func (r sipRinger) Ring(ctx context.Context, req calls.RingRequest) (calls.Leg, calls.LegMedia, error) {
	return r.s.ring(ctx, req, r.trunk)
}

// Binding is the pseudo-binding a number is rung at: the number at the
// carrier, reached over the trunk's transport.
func (r sipRinger) Binding(accountSid, number string) presence.Binding {
	return r.s.trunk.binding(accountSid, number)
}

// ring sends one INVITE to a binding over its flow (or to the carrier) and
// waits for the answer.
func (s *Server) ring(ctx context.Context, req calls.RingRequest, trunk bool) (calls.Leg, calls.LegMedia, error) {
	b, codecs := req.Binding, req.Offer
	// A binding on a WebSocket is a browser SIP stack (JsSIP, SIP.js): its
	// media is WebRTC (ICE, DTLS-SRTP), terminated by s.calls.WebRTC.
	var ep *media.Endpoint
	var web calls.MediaOffer
	var body []byte
	if s.calls.WebRTC != nil && (b.Transport == presence.TransportWS || b.Transport == presence.TransportWSS) {
		w, err := s.calls.WebRTC.OfferSIP(ctx, codecs)
		if err != nil {
			return nil, calls.LegMedia{}, err
		}
		web, body = w, []byte(w.SDP())
	} else {
		var err error
		if ep, err = s.calls.Ports.Listen(s.calls.MediaAddr); err != nil {
			return nil, calls.LegMedia{}, err
		}
		sessID := uint64(time.Now().UnixNano())
		offer := media.Session{Addr: s.calls.MediaAddr, Port: int(ep.Local().Port()), Codecs: codecs, PTime: 20}
		body = offer.Marshal(sessID, sessID)
	}
	release := func() {
		if ep != nil {
			ep.Close()
		}
		if web != nil {
			web.Close()
		}
	}

	var contact sip.Uri
	if err := sip.ParseUri(b.Contact, &contact); err != nil {
		release()
		return nil, calls.LegMedia{}, fmt.Errorf("binding contact %q: %w", b.Contact, err)
	}
	inv := sip.NewRequest(sip.INVITE, contact)
	inv.SetBody(body)
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	from := sip.Uri{Scheme: "sip", User: callerUser(req.From, req.CallerID), Host: s.contactFor(b.Transport).Host}
	fromHdr := &sip.FromHeader{DisplayName: sanitize(req.Call.CallerName), Address: from, Params: sip.NewParams()}
	fromHdr.Params.Add("tag", sip.GenerateTagN(16))
	inv.AppendHeader(fromHdr)
	to := sip.Uri{Scheme: "sip", User: identityUser(b.Identity), Host: contact.Host}
	inv.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	inv.AppendHeader(&sip.ContactHeader{Address: s.contactFor(b.Transport)})
	if err := s.route(b, inv); err != nil {
		release()
		return nil, calls.LegMedia{}, err
	}
	ua := s.dialogUA()
	ua.ContactHDR = s.contactHeader(b.Transport)
	dc, err := ua.WriteInvite(ctx, inv)
	if err != nil {
		release()
		return nil, calls.LegMedia{}, fmt.Errorf("invite %s: %w", b.Contact, err)
	}
	callID := inv.CallID().Value()
	leg := &outboundLeg{s: s, dc: dc, binding: b, release: release, callSid: req.CallSid, callID: callID,
		digits: make(chan byte, 16), done: make(chan struct{})}
	s.legs.put(callID, leg)
	opts := sipgo.AnswerOptions{}
	if trunk {
		// The carrier may challenge (401/407); sipgo answers with Digest.
		opts.Username, opts.Password = s.trunk.username, s.trunk.password
	}
	opts.OnResponse = func(res *sip.Response) error {
		// A 2xx right behind a 180 can replace it in sipgo's transaction
		// (it passes up its latest response), and an answer implies the
		// phone was alerted: report ringing once either way.
		if res.StatusCode == 180 || res.StatusCode == 183 || res.IsSuccess() {
			if req.Ringing != nil {
				req.Ringing()
			}
		}
		return nil
	}
	err = dc.WaitAnswer(ctx, opts)
	if err != nil {
		if res := dc.InviteResponse; res != nil && res.IsSuccess() {
			// It answered while we were cancelling: complete the
			// dialog and end it, or the phone is left in a call.
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if dc.Ack(ctx) == nil {
					dc.Bye(ctx)
				}
				leg.end()
			}()
			return nil, calls.LegMedia{}, err
		}
		leg.end()
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			return nil, calls.LegMedia{}, &calls.RingRefused{Status: de.Res.StatusCode, Reason: de.Res.Reason}
		}
		return nil, calls.LegMedia{}, err
	}
	if web != nil {
		if err := dc.Ack(context.Background()); err != nil {
			s.log.Warn("ack failed", "err", err)
		}
		m, err := web.Connect(ctx, string(dc.InviteResponse.Body()))
		if err != nil {
			s.log.Warn("webrtc media of a websocket leg failed", "contact", b.Contact, "err", err)
			leg.Hangup(context.Background())
			return nil, calls.LegMedia{}, &calls.RingRefused{Status: 488, Reason: "Not Acceptable Here"}
		}
		leg.media = m
	} else {
		answer, err := media.ParseSDP(dc.InviteResponse.Body())
		if err == nil {
			if _, _, ok := answer.First(); !ok {
				err = errors.New("no audio codec in the answer")
			}
		}
		if err := dc.Ack(context.Background()); err != nil {
			s.log.Warn("ack failed", "err", err)
		}
		if err != nil {
			leg.Hangup(context.Background())
			return nil, calls.LegMedia{}, &calls.RingRefused{Status: 488, Reason: "Not Acceptable Here"}
		}
		ep.SetRemote(answer.RTP())
		leg.media = legMedia(ep, answer.Codecs)
	}
	go func() {
		select {
		case <-dc.Context().Done(): // the far end hung up
			leg.end()
		case <-leg.done:
		}
	}()
	return leg, leg.media, nil
}

// callerUser is the user part of the From we present: the Dial's callerId
// (a client's name for client:name), else the caller's own user.
func callerUser(from, callerID string) string {
	if callerID != "" {
		if id, _ := presence.ParseIdentity(callerID); id.Kind == presence.KindClient {
			return id.User
		}
		return callerID
	}
	return identityUser(from)
}

// identityUser is the user of an identity (alice of client:alice and of
// sip:alice@host) or, for anything else (a number), the value up to an @.
func identityUser(id string) string {
	if p, _ := presence.ParseIdentity(id); p.Kind != "" {
		id = p.User
	}
	user, _, _ := strings.Cut(id, "@")
	return user
}

// outboundLeg is a party Parley dialled.
type outboundLeg struct {
	s       *Server
	dc      *sipgo.DialogClientSession
	binding presence.Binding
	release func() // the leg's media: its RTP endpoint or WebRTC session
	media   calls.LegMedia
	callSid string
	callID  string
	digits  chan byte
	once    sync.Once // the BYE
	endOnce sync.Once
	done    chan struct{}
}

// end releases the leg: its port, its dialog and its place in the index,
// whether or not the far end answered our BYE.
func (l *outboundLeg) end() {
	l.endOnce.Do(func() {
		close(l.done)
		l.s.legs.drop(l.callID)
		if ep := l.media.Endpoint; ep != nil {
			st := ep.Stats()
			l.s.log.Debug("dialled leg ended", "call", l.callSid, "rtp_in", st.PacketsIn.Load(), "rtp_out", st.PacketsOut.Load(),
				"foreign", st.Foreign.Load(), "rtcp_in", st.RTCPIn.Load())
		}
		l.release()
		l.dc.Close()
	})
}

func (l *outboundLeg) Offer() []media.RTPCodec { return l.media.Codecs }
func (l *outboundLeg) Answer(context.Context, []media.RTPCodec) (calls.LegMedia, error) {
	return l.media, nil
}
func (l *outboundLeg) Ringing(context.Context) error { return nil }
func (l *outboundLeg) Reject(ctx context.Context, _ int, _ string) error {
	return l.Hangup(ctx)
}

func (l *outboundLeg) Hangup(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err = l.dc.Bye(ctx)
	})
	l.end()
	return err
}

func (l *outboundLeg) Done() <-chan struct{} { return l.done }
func (l *outboundLeg) Digits() <-chan byte   { return l.digits }

func (l *outboundLeg) readAck(*sip.Request, sip.ServerTransaction) {}
func (l *outboundLeg) readBye(req *sip.Request, tx sip.ServerTransaction) error {
	return l.dc.ReadBye(req, tx)
}
func (l *outboundLeg) digit(d byte) {
	select {
	case l.digits <- d:
	default:
	}
}
