package calls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/twiml"
)

// RingRequest asks a Ringer to ring one binding for a Dial.
type RingRequest struct {
	Binding  presence.Binding
	Call     *Call
	CallSid  string // the dialled leg's sid (DialCallSid when it answers)
	From     string // the caller as the far end sees it
	CallerID string // the Dial's callerId, "" for none
	// Offer is the caller's negotiated codecs, with their payload types, for
	// pass-through (G.711 and telephone-event when the caller had none).
	Offer []media.RTPCodec
	// Ringing is called when the far end reports that it rings (or answers);
	// it may be called more than once.
	Ringing func()
}

// Ringer rings bindings of one transport: it offers the call, waits for the
// far end to answer, refuse, or ctx to end, and returns the answered leg
// with its media. A refusal is a *RingRefused; an answer after ctx ended
// must be hung up by the Ringer itself. signaling/sip rings SIP bindings,
// signaling/webrtc browser sessions.
type Ringer interface {
	Ring(ctx context.Context, req RingRequest) (Leg, LegMedia, error)
}

// RingRefused is a far end's refusal, with the SIP status it maps to
// (486 busy, 603 declined, 480 unavailable, 488 no common codec …).
type RingRefused struct {
	Status int
	Reason string
}

func (e *RingRefused) Error() string { return fmt.Sprintf("refused: %d %s", e.Status, e.Reason) }

// Carrier reaches numbers (<Dial><Number>) through an outbound trunk.
type Carrier interface {
	Ringer
	// Binding is where number is rung: the number at the carrier.
	Binding(accountSid, number string) presence.Binding
}

// Bindings is what forking needs of presence (presence.Registry implements it).
type Bindings interface {
	Bindings(ctx context.Context, accountSid, identity string) ([]presence.Binding, error)
	SetBusy(ctx context.Context, accountSid, identity string, busy bool) error
}

// ForkerDeps are a Forker's collaborators.
type ForkerDeps struct {
	Bindings Bindings
	// Targets widens <Client>name</Client> beyond client:name (to the SIP
	// users called name on the account's domains); nil: client:name only.
	Targets ClientTargets
	// SIPIdentity reads the identity a <Sip> URI reaches (sip.URIIdentity):
	// that user of a SIP domain of this server.
	SIPIdentity func(uri string) (string, error)
	Log         *slog.Logger
}

// Forker is the Dialer of every transport: it resolves a Dial's targets to
// presence bindings, rings every binding at once through the Ringer
// registered for its transport (numbers through the Carrier), takes the
// first answer and cancels the others — any that answers in the race is
// hung up — and shows the answering identity busy until its leg ends
// (RFC 3261 §16.7-style forking, done by a B2BUA).
type Forker struct {
	deps ForkerDeps
	log  *slog.Logger

	mu      sync.Mutex
	ringers map[string]Ringer
	carrier Carrier
}

// NewForker creates a forker that rings nothing until ringers are set.
func NewForker(deps ForkerDeps) (*Forker, error) {
	if deps.Bindings == nil || deps.SIPIdentity == nil {
		return nil, errors.New("calls: the forker needs Bindings and SIPIdentity")
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	return &Forker{deps: deps, log: deps.Log, ringers: map[string]Ringer{}}, nil
}

// SetRinger makes r ring bindings whose Transport is transport ("udp",
// "tcp", "tls", "ws", "wss" for SIP; presence.TransportWebRTC for browser
// sessions). A binding with no ringer for its transport is unavailable (480).
func (f *Forker) SetRinger(transport string, r Ringer) {
	f.mu.Lock()
	f.ringers[strings.ToLower(transport)] = r
	f.mu.Unlock()
}

// SetCarrier makes c reach numbers. Without one, numbers are skipped.
func (f *Forker) SetCarrier(c Carrier) {
	f.mu.Lock()
	f.carrier = c
	f.mu.Unlock()
}

func (f *Forker) ringer(transport string) Ringer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ringers[strings.ToLower(transport)]
}

func (f *Forker) carrierOf() Carrier {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.carrier
}

// attempt is one binding being rung.
type attempt struct {
	binding presence.Binding
	ringer  Ringer // nil: no ringer for the binding's transport
	trunk   bool   // a number at the carrier, not a registered client
}

func (f *Forker) targets(ctx context.Context, req DialRequest) ([]attempt, error) {
	var out []attempt
	seen := map[string]bool{}
	add := func(identity string) error {
		bs, err := f.deps.Bindings.Bindings(ctx, req.Call.AccountSid, identity)
		if err != nil {
			return err
		}
		for _, b := range bs {
			k := b.Identity + "\x00" + b.Key
			if !seen[k] {
				seen[k] = true
				out = append(out, attempt{binding: b, ringer: f.ringer(b.Transport)})
			}
		}
		return nil
	}
	for _, t := range req.Targets {
		switch t := t.(type) {
		case *twiml.Client:
			ids := []string{presence.ClientIdentity(t.Identity)}
			if f.deps.Targets != nil {
				more, err := f.deps.Targets.ClientIdentities(ctx, req.Call.AccountSid, t.Identity)
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
			// A SIP user of this server is reached through its bindings.
			id, err := f.deps.SIPIdentity(t.URI)
			if err != nil {
				return nil, err
			}
			if err := add(id); err != nil {
				return nil, err
			}
		case *twiml.Number:
			c := f.carrierOf()
			if c == nil {
				f.log.Warn("dial: no outbound trunk is configured for numbers", "number", t.Number)
				continue
			}
			out = append(out, attempt{binding: c.Binding(req.Call.AccountSid, t.Number), ringer: c, trunk: true})
		}
	}
	return out, nil
}

// outcome of one attempt.
type outcome struct {
	leg     Leg // answered
	media   LegMedia
	callSid string
	binding presence.Binding
	trunk   bool // dialled through the carrier: no presence to mark busy
	status  int  // final SIP status when refused
	err     error
}

// defaultOffer is what a dialled leg is offered when the caller negotiated
// nothing (REST-originated calls): G.711 µ-law and telephone-event.
func defaultOffer() []media.RTPCodec {
	return []media.RTPCodec{{PT: 0, Name: "PCMU", Rate: 8000, Channels: 1}, {PT: 101, Name: "telephone-event", Rate: 8000, Channels: 1, Fmtp: "0-15"}}
}

// Dial implements Dialer.
func (f *Forker) Dial(ctx context.Context, req DialRequest) (DialResult, error) {
	atts, err := f.targets(ctx, req)
	if err != nil {
		return DialResult{Status: DialFailed}, err
	}
	if len(atts) == 0 {
		return DialResult{Status: DialFailed}, nil
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
	offer := req.Offer
	if len(offer) == 0 {
		offer = defaultOffer()
	}
	for _, a := range atts {
		go func() {
			results <- ring(ringCtx, a, RingRequest{Binding: a.binding, Call: req.Call, CallSid: sid.New(sid.Call),
				From: req.Call.From, CallerID: req.CallerID, Offer: offer, Ringing: ringing})
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
			f.markBusy(winner.binding, winner.leg)
		}
		return DialResult{Status: DialAnswered, Leg: winner.leg, Media: winner.media, CallSid: winner.callSid}, nil
	}
	switch {
	case ctx.Err() != nil:
		return DialResult{Status: DialCanceled}, nil
	case ringCtx.Err() != nil:
		return DialResult{Status: DialNoAnswer}, nil
	case busy > 0 && refused == 0:
		return DialResult{Status: DialBusy}, nil
	}
	return DialResult{Status: DialFailed}, nil
}

// ring rings one attempt through its ringer.
func ring(ctx context.Context, a attempt, req RingRequest) outcome {
	if a.ringer == nil {
		return outcome{status: 480} // nothing rings this transport
	}
	leg, m, err := a.ringer.Ring(ctx, req)
	if err != nil {
		var refused *RingRefused
		if errors.As(err, &refused) {
			return outcome{status: refused.Status}
		}
		return outcome{err: err}
	}
	return outcome{leg: leg, media: m, callSid: req.CallSid, binding: a.binding, trunk: a.trunk}
}

// markBusy shows the answering identity busy until its leg ends.
func (f *Forker) markBusy(b presence.Binding, l Leg) {
	if err := f.deps.Bindings.SetBusy(context.Background(), b.AccountSid, b.Identity, true); err != nil {
		f.log.Warn("presence: mark busy", "identity", b.Identity, "err", err)
	}
	go func() {
		<-l.Done()
		if err := f.deps.Bindings.SetBusy(context.Background(), b.AccountSid, b.Identity, false); err != nil {
			f.log.Warn("presence: clear busy", "identity", b.Identity, "err", err)
		}
	}()
}
