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

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/twiml"
)

// Dialer reaches a Dial's targets through registered bindings: every binding
// of every target is rung at once; the first to answer wins and the others
// are cancelled (RFC 3261 §16.7-style forking done by a B2BUA).
func (s *Server) Dialer() calls.Dialer { return &dialer{s: s} }

type dialer struct{ s *Server }

// attempt is one binding being rung.
type attempt struct {
	binding presence.Binding
	trunk   bool // a number at the carrier, not a registered client
}

func (d *dialer) targets(ctx context.Context, req calls.DialRequest) ([]attempt, error) {
	var out []attempt
	seen := map[string]bool{}
	add := func(identity string) error {
		bs, err := d.s.deps.Registry.Bindings(ctx, req.Call.AccountSid, identity)
		if err != nil {
			return err
		}
		for _, b := range bs {
			k := b.Identity + "\x00" + b.Key
			if !seen[k] {
				seen[k] = true
				out = append(out, attempt{binding: b})
			}
		}
		return nil
	}
	for _, t := range req.Targets {
		switch t := t.(type) {
		case *twiml.Client:
			ids := []string{ClientIdentity(t.Identity)}
			if d.s.calls.Targets != nil {
				more, err := d.s.calls.Targets.ClientIdentities(ctx, req.Call.AccountSid, t.Identity)
				if err != nil {
					return nil, err
				}
				ids = append(ids, more...)
			}
			for _, id := range ids {
				if err := add(id); err != nil {
					return nil, err
				}
			}
		case *twiml.Sip:
			var u sip.Uri
			if err := sip.ParseUri(t.URI, &u); err != nil {
				return nil, fmt.Errorf("dial %q: %w", t.URI, err)
			}
			// A SIP user of this server is reached through its bindings.
			if err := add(SIPIdentity(u.User, u.Host)); err != nil {
				return nil, err
			}
		case *twiml.Number:
			if !d.s.trunk.dials() {
				d.s.log.Warn("dial: no outbound trunk is configured for numbers", "number", t.Number)
				continue
			}
			out = append(out, attempt{binding: d.s.trunk.binding(req.Call.AccountSid, t.Number), trunk: true})
		}
	}
	return out, nil
}

// outcome of one attempt.
type outcome struct {
	leg     calls.Leg // answered: an *outboundLeg or a browser leg
	media   calls.LegMedia
	callSid string
	binding presence.Binding
	trunk   bool // dialled through the carrier: no presence to mark busy
	status  int  // final SIP status when refused
	err     error
}

func (d *dialer) Dial(ctx context.Context, req calls.DialRequest) (calls.DialResult, error) {
	atts, err := d.targets(ctx, req)
	if err != nil {
		return calls.DialResult{Status: calls.DialFailed}, err
	}
	if len(atts) == 0 {
		return calls.DialResult{Status: calls.DialFailed}, nil
	}
	ringCtx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	results := make(chan outcome, len(atts))
	var ringOnce sync.Once
	ringing := func() {
		if req.Ringing != nil {
			ringOnce.Do(req.Ringing)
		}
	}
	for _, a := range atts {
		go func() {
			if a.binding.Transport == presence.TransportWebRTC {
				results <- d.ringBrowser(ringCtx, req, a.binding, ringing)
				return
			}
			results <- d.ring(ringCtx, req, a, ringing)
		}()
	}
	var winner *outcome
	busy, refused, pending := 0, 0, len(atts)
collect:
	for pending > 0 {
		select {
		case o := <-results:
			pending--
			switch {
			case o.leg != nil && winner == nil:
				winner = &o
				cancel() // CANCEL the others
			case o.leg != nil:
				go o.leg.Hangup(context.Background()) // answered too late: BYE
			case o.status == 486 || o.status == 600 || o.status == 603:
				busy++
			default:
				refused++
			}
		case <-ctx.Done():
			break collect // the caller left: do not wait for attempts still being cancelled
		}
	}
	if pending > 0 {
		// Attempts still finishing (a CANCEL waiting for its response) clean
		// up on their own; any that answers after all is hung up.
		go func() {
			for ; pending > 0; pending-- {
				if o := <-results; o.leg != nil {
					o.leg.Hangup(context.Background())
				}
			}
		}()
		if winner != nil && ctx.Err() != nil {
			winner.leg.Hangup(context.Background())
			winner = nil
		}
	}
	if winner != nil {
		if !winner.trunk {
			d.markBusy(winner.binding, winner.leg)
		}
		return calls.DialResult{Status: calls.DialAnswered, Leg: winner.leg, Media: winner.media, CallSid: winner.callSid}, nil
	}
	switch {
	case ctx.Err() != nil:
		return calls.DialResult{Status: calls.DialCanceled}, nil
	case ringCtx.Err() != nil:
		return calls.DialResult{Status: calls.DialNoAnswer}, nil
	case busy > 0 && refused == 0:
		return calls.DialResult{Status: calls.DialBusy}, nil
	}
	return calls.DialResult{Status: calls.DialFailed}, nil
}

// markBusy shows the answering identity busy until its leg ends.
func (d *dialer) markBusy(b presence.Binding, l calls.Leg) {
	if err := d.s.deps.Registry.SetBusy(context.Background(), b.AccountSid, b.Identity, true); err != nil {
		d.s.log.Warn("presence: mark busy", "identity", b.Identity, "err", err)
	}
	go func() {
		<-l.Done()
		if err := d.s.deps.Registry.SetBusy(context.Background(), b.AccountSid, b.Identity, false); err != nil {
			d.s.log.Warn("presence: clear busy", "identity", b.Identity, "err", err)
		}
	}()
}

// ring sends one INVITE to a binding over its flow (or to the carrier) and
// waits for the answer.
func (d *dialer) ring(ctx context.Context, req calls.DialRequest, a attempt, ringing func()) outcome {
	s, b := d.s, a.binding
	codecs := req.Offer
	if len(codecs) == 0 {
		codecs = []media.RTPCodec{{PT: 0, Name: "PCMU", Rate: 8000, Channels: 1}, {PT: 101, Name: "telephone-event", Rate: 8000, Channels: 1, Fmtp: "0-15"}}
	}
	// A binding on a WebSocket is a browser SIP stack (JsSIP, SIP.js): its
	// media is WebRTC (ICE, DTLS-SRTP), terminated by s.calls.WebRTC.
	var ep *media.Endpoint
	var web WebRTCSession
	var body []byte
	if s.calls.WebRTC != nil && (b.Transport == presence.TransportWS || b.Transport == presence.TransportWSS) {
		w, err := s.calls.WebRTC.OfferSIP(ctx, codecs)
		if err != nil {
			return outcome{err: err}
		}
		web, body = w, []byte(w.SDP())
	} else {
		var err error
		if ep, err = s.calls.Ports.Listen(s.calls.MediaAddr); err != nil {
			return outcome{err: err}
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
		return outcome{err: fmt.Errorf("binding contact %q: %w", b.Contact, err)}
	}
	inv := sip.NewRequest(sip.INVITE, contact)
	inv.SetBody(body)
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	from := sip.Uri{Scheme: "sip", User: callerUser(req.Call.From, req.CallerID), Host: s.contactFor(b.Transport).Host}
	fromHdr := &sip.FromHeader{DisplayName: sanitize(req.Call.CallerName), Address: from, Params: sip.NewParams()}
	fromHdr.Params.Add("tag", sip.GenerateTagN(16))
	inv.AppendHeader(fromHdr)
	to := sip.Uri{Scheme: "sip", User: identityUser(b.Identity), Host: contact.Host}
	inv.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	inv.AppendHeader(&sip.ContactHeader{Address: s.contactFor(b.Transport)})
	if err := s.route(b, inv); err != nil {
		release()
		return outcome{err: err}
	}
	ua := s.dialogUA()
	ua.ContactHDR = s.contactHeader(b.Transport)
	dc, err := ua.WriteInvite(ctx, inv)
	if err != nil {
		release()
		return outcome{err: fmt.Errorf("invite %s: %w", b.Contact, err)}
	}
	callID := inv.CallID().Value()
	leg := &outboundLeg{s: s, dc: dc, binding: b, release: release, callSid: sid.New(sid.Call), callID: callID,
		digits: make(chan byte, 16), done: make(chan struct{})}
	s.legs.put(callID, leg)
	opts := sipgo.AnswerOptions{}
	if a.trunk {
		// The carrier may challenge (401/407); sipgo answers with Digest.
		opts.Username, opts.Password = s.trunk.username, s.trunk.password
	}
	opts.OnResponse = func(res *sip.Response) error {
		// A 2xx right behind a 180 can replace it in sipgo's transaction
		// (it passes up its latest response), and an answer implies the
		// phone was alerted: report ringing once either way.
		if res.StatusCode == 180 || res.StatusCode == 183 || res.IsSuccess() {
			ringing()
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
			return outcome{err: err}
		}
		leg.end()
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			return outcome{status: de.Res.StatusCode}
		}
		return outcome{err: err}
	}
	if web != nil {
		if err := dc.Ack(context.Background()); err != nil {
			s.log.Warn("ack failed", "err", err)
		}
		m, err := web.Connect(ctx, string(dc.InviteResponse.Body()))
		if err != nil {
			s.log.Warn("webrtc media of a websocket leg failed", "contact", b.Contact, "err", err)
			leg.Hangup(context.Background())
			return outcome{status: 488}
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
			return outcome{status: 488}
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
	return outcome{leg: leg, media: leg.media, callSid: leg.callSid, binding: b, trunk: a.trunk}
}

// ringBrowser offers the call to a browser session through the BrowserRinger.
func (d *dialer) ringBrowser(ctx context.Context, req calls.DialRequest, b presence.Binding, ringing func()) outcome {
	r := d.s.calls.Browsers
	if r == nil {
		return outcome{status: 480}
	}
	codecs := req.Offer
	if len(codecs) == 0 {
		codecs = []media.RTPCodec{{PT: 0, Name: "PCMU", Rate: 8000, Channels: 1}, {PT: 101, Name: "telephone-event", Rate: 8000, Channels: 1, Fmtp: "0-15"}}
	}
	callSid := sid.New(sid.Call)
	leg, m, err := r.Ring(ctx, BrowserRing{Binding: b, Call: req.Call, CallSid: callSid, From: req.Call.From,
		CallerID: req.CallerID, Offer: codecs, Ringing: ringing})
	if err != nil {
		var refused *RingRefused
		if errors.As(err, &refused) {
			return outcome{status: refused.Status}
		}
		return outcome{err: err}
	}
	return outcome{leg: leg, media: m, callSid: callSid, binding: b}
}

// callerUser is the user part of the From we present: the Dial's callerId,
// else the caller's own user.
func callerUser(from, callerID string) string {
	if callerID != "" {
		return strings.TrimPrefix(callerID, "client:")
	}
	return identityUser(from)
}

// identityUser extracts the user of "client:alice" or "sip:alice@host".
func identityUser(id string) string {
	id = strings.TrimPrefix(strings.TrimPrefix(id, "client:"), "sip:")
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
