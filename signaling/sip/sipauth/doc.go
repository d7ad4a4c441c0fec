// Package sipauth authenticates SIP requests for the registrar (REGISTER),
// calls (INVITE), messages (MESSAGE) and presence subscriptions
// (SUBSCRIBE).
//
// Authenticate reads a request's Authorization headers (RFC 3261 §25.1,
// RFC 7616, RFC 8898: parseAuthorization) and either finds the principal
// or answers the request itself, through the caller's ReplyFunc:
//
//   - Digest (MD5 and SHA-256, RFC 7616/8760): a 401 challenge per
//     configured algorithm carries a per-challenge nonce
//     (base64url(issued | random | HMAC), no state until first used); a
//     response is checked against the user's HA1, found in the in-memory
//     credential index of its domain (credIndex, loaded whole when the
//     Credentials can list domains) or else the database through a
//     short-lived cache (credCache); each nonce's highest nonce-count is
//     remembered until it expires, so a response cannot be replayed, and
//     the right password with an old nonce gets a fresh stale=true
//     challenge.
//   - Bearer (RFC 8898): the access token is checked by the TokenVerifier
//     (signature, key, account, validity) and its grants against the
//     method: INVITE needs the outgoing grant, MESSAGE either, anything
//     else the incoming one.
//
// Failed attempts are counted per source IP (failLimiter, a token bucket):
// past the limit a source gets 403 with Retry-After until its bucket
// refills.
//
// The hot path is the REGISTER one: an Authenticator holds everything it
// needs in memory, so that a registration from a known user costs no
// database query and few allocations (the reply is a function, not an
// interface, so that the caller's closure stays on its stack).
package sipauth
