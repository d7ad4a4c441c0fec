package sip

import (
	"context"
	"fmt"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/media"
)

// BrowserRing asks a BrowserRinger to ring one browser binding.
type BrowserRing struct {
	Binding  presence.Binding
	Call     *calls.Call
	CallSid  string // the dialled leg's sid
	From     string // the caller as the browser shows it
	CallerID string
	// Offer is the caller's negotiated codecs, for pass-through.
	Offer []media.RTPCodec
	// Ringing is called when the browser reports that it rings.
	Ringing func()
}

// BrowserRinger rings bindings whose transport is presence.TransportWebRTC
// (browser sessions of the JSON signalling gateway): it returns the answered
// leg, or a *RingRefused. signaling/webrtc implements it.
type BrowserRinger interface {
	Ring(ctx context.Context, req BrowserRing) (calls.Leg, calls.LegMedia, error)
}

// RingRefused is a browser's refusal, with the SIP-style status it maps to
// (486 busy, 603 declined, 480 unavailable).
type RingRefused struct {
	Status int
	Reason string
}

func (e *RingRefused) Error() string { return fmt.Sprintf("refused: %d %s", e.Status, e.Reason) }

// WebRTCMedia terminates the WebRTC media (ICE, DTLS-SRTP) of SIP legs
// whose far end is a browser SIP stack registered over WebSocket (JsSIP,
// SIP.js): the dialer offers its SDP instead of plain RTP.
// signaling/webrtc implements it.
type WebRTCMedia interface {
	// OfferSIP prepares a session offering codecs (with their payload types).
	OfferSIP(ctx context.Context, codecs []media.RTPCodec) (WebRTCSession, error)
	// ParseOffer reads the codecs of a WebRTC offer from such a stack that
	// can be bridged unchanged (an INVITE it sent).
	ParseOffer(offer string) ([]media.RTPCodec, error)
	// AnswerSIP answers that offer, choosing prefer's codec first when
	// offered (pass-through); the media flows once ICE and DTLS connect.
	// closeFn releases it.
	AnswerSIP(ctx context.Context, offer string, prefer []media.RTPCodec) (answer string, m calls.LegMedia, closeFn func(), err error)
}

// WebRTCSession is one such leg's media.
type WebRTCSession interface {
	// SDP is the offer to put in the INVITE.
	SDP() string
	// Connect applies the answer and waits for ICE and DTLS; the media it
	// returns is an anchored endpoint the engine bridges like any other.
	Connect(ctx context.Context, answer string) (calls.LegMedia, error)
	// Close releases the session (safe more than once).
	Close()
}
