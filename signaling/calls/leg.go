package calls

import (
	"context"
	"errors"
	"time"

	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/twiml"
)

// LegMedia is a leg's anchored media after it was answered.
type LegMedia struct {
	Endpoint *media.Endpoint
	Codec    media.Codec      // the G.711 law used for generated media
	EventPT  uint8            // negotiated telephone-event payload type, 0 if none
	Codecs   []media.RTPCodec // all negotiated codecs, for pass-through bridging
}

// Leg is one party of a call, as the engine drives it.
type Leg interface {
	// Offer is what the far end offered (an inbound caller's SDP codecs).
	Offer() []media.RTPCodec
	// Answer accepts an inbound call with Parley anchoring its media,
	// choosing among the offered codecs those of prefer first (nil: the leg's
	// own preference, G.711 first, since generated media is G.711). It is
	// idempotent: the second call returns the first answer's media.
	Answer(ctx context.Context, prefer []media.RTPCodec) (LegMedia, error)
	// Ringing tells an unanswered caller that the far end rings (180); it is
	// a no-op once answered.
	Ringing(ctx context.Context) error
	// Reject refuses a call that was not answered, with a SIP status code.
	Reject(ctx context.Context, status int, reason string) error
	// Hangup ends the leg (BYE when answered, CANCEL or a final response otherwise).
	Hangup(ctx context.Context) error
	// Done is closed when the far end hangs up or the leg fails.
	Done() <-chan struct{}
	// Digits delivers DTMF that arrives out of band (SIP INFO); RFC 4733
	// events arrive in the media and are detected by the engine.
	Digits() <-chan byte
}

// DialStatus is the outcome of a Dial, as reported in DialCallStatus.
type DialStatus string

// Dial outcomes.
const (
	DialCompleted DialStatus = "completed"
	DialAnswered  DialStatus = "answered"
	DialBusy      DialStatus = "busy"
	DialNoAnswer  DialStatus = "no-answer"
	DialFailed    DialStatus = "failed"
	DialCanceled  DialStatus = "canceled"
)

// DialRequest asks a Dialer to reach a Dial's targets for a call.
type DialRequest struct {
	Call     *Call
	Targets  []twiml.DialTarget
	CallerID string
	Timeout  time.Duration
	// Offer is what the caller's leg negotiated: the dialled leg should be
	// offered these codecs so that media passes through unchanged.
	Offer []media.RTPCodec
	// Ringing is called (once) when any target starts ringing.
	Ringing func()
}

// DialResult is what a Dialer reports: the winning leg when one answered.
type DialResult struct {
	Status  DialStatus
	Leg     Leg      // nil unless answered
	Media   LegMedia // the answered leg's media
	CallSid string   // the dialled leg's call sid (DialCallSid)
}

// Dialer reaches the targets of a Dial: it forks to every target (every
// binding of a client) at once, takes the first answer and cancels the rest.
type Dialer interface {
	Dial(ctx context.Context, req DialRequest) (DialResult, error)
}

// ErrHungUp is returned by verbs interrupted because the caller hung up.
var ErrHungUp = errors.New("caller hung up")

// MediaOffer is media offered to a far end before it answers, as an SDP
// body: signaling/webrtc's WebRTC session for a SIP leg to a browser SIP
// stack (ICE, DTLS-SRTP) that the SIP side puts in its INVITE.
type MediaOffer interface {
	// SDP is the offer.
	SDP() string
	// Connect applies the far end's answer and waits for the media to
	// connect; the media it returns is an anchored endpoint the engine
	// bridges like any other.
	Connect(ctx context.Context, answer string) (LegMedia, error)
	// Close releases the media (safe more than once).
	Close()
}
