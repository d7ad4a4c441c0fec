// Package messaging routes text messages between clients and applications
// (SPEC §3, messaging): client to client through presence (every binding of
// the recipient, over a Sink chosen by the binding's transport), to an
// application's messaging URL (signed webhook; a TwiML <Message> reply is
// sent back), and from the REST API. Messages to a client with no binding are
// stored and delivered when it registers again, until they expire
// (undelivered).
//
// The package owns the logic only: storage (Store), routing decisions that
// need the account's configuration (Resolver) and the transports (Sink) are
// interfaces the composition root provides. signaling/sip delivers over SIP
// MESSAGE (RFC 3428); a browser gateway registers its own Sink for its
// bindings' transport (TransportWebRTC) without changing this package.
package messaging
