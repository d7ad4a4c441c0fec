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
