// Package presence is Parley's token-checked presence: which clients of an
// account are reachable, over which bindings, in which state.
//
// A Registry holds bindings (SIP contacts and browser sessions) per identity
// ("sip:alice@example.com" for Digest users, "client:alice" for access-token
// users; see Identity, the one place that builds and parses them) and
// derives a Status (available, busy, offline) from them. Memory is the
// embedded implementation: an in-memory index with write-behind
// persistence through a Persister (the core store implements it with SQLite),
// restored on start and expired on time. Status changes are published on a
// Bus. Access-token verification lives in presence/accesstoken and PIDF
// (RFC 3863) documents in presence/pidf.
package presence
