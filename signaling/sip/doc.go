// Package sip is Parley's SIP front end on sipgo: listeners for UDP, TCP,
// TLS, WebSocket and secure WebSocket (RFC 7118), an RFC 3261 §10 registrar
// with Digest (MD5 and SHA-256, RFC 7616/8760) and Bearer access-token
// (RFC 8898) authentication, the application-level message checks sipgo's
// parser leaves to its users (RFC 4475), and the presence event package
// (RFC 6665, RFC 3856) with PIDF bodies.
//
// Bindings live in a presence.Registry. Every binding remembers the flow
// (connection) it arrived on; Server.TransactionRequest sends a request to a
// binding over that flow, which is how browsers registered over WebSocket with
// .invalid contacts are reached. A binding whose connection closes is removed.
//
// The server is split by job into packages it wires together: sipauth
// authenticates every method (Digest and Bearer), registrar is the RFC 3261
// §10.3 registrar on a Request read by sipgo's parser or by udpreg, the
// stateless UDP REGISTER path (which imports the registrar, never this
// package), and internal/sipmsg and internal/reqctx are the request checks,
// responses and request context they share.
//
// The files of this package are named by job: server.go (listeners, flows,
// dispatch), register.go and udpregister.go (REGISTER through sipgo and
// through udpreg), auth.go (the Authenticator's use for every method),
// inbound.go (INVITEs that arrive: the inbound leg of the B2BUA),
// outbound.go (INVITEs Parley sends: the Ringer of SIP bindings and the
// trunk's Carrier), webrtc.go (the media of browser SIP stacks), trunk.go
// (the carrier), message.go (MESSAGE in and the Sink out), subscribe.go
// (SUBSCRIBE/NOTIFY), retry.go (denials as 503 + Retry-After).
//
// The composition root creates a Server with New(Config, Deps), runs it with
// Run(ctx) and stops it with Close. Deps holds every collaborator: the
// consumer-owned interfaces Credentials (SIP domain users), TokenVerifier
// and the presence registry, and optionally Calls (INVITE is served and
// bindings can be rung: Ringer, Carrier for the call engine's forking) and
// Messages (MESSAGE is served; MessageSink delivers).
package sip
