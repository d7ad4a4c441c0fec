// Package calls is Parley's call engine: for each call it fetches
// instructions from the application's webhook (with the fallback URL when the
// first fetch fails), parses them as TwiML and carries out the verbs against
// the caller's leg — playing and speaking into it, gathering digits,
// recording, redirecting, dialling other parties and bridging their media.
//
// The engine does not speak SIP or WebRTC. A transport implements Leg for
// the caller's side and a Ringer for the bindings of its transports; the
// Forker, the engine's Dialer, resolves a Dial's targets to presence
// bindings and rings them all at once through those ringers, the first
// answer winning. The engine owns the order of things: what is fetched
// when, which parameters each callback carries, and how a call ends. The
// vocabulary of inbound call routing the transports share (Invite,
// Router, Runner, ErrNoRoute) lives here too.
package calls
