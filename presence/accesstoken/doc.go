// Package accesstoken mints and verifies client access tokens: HS256 JWTs
// signed with an API key secret, header cty "twilio-fpa;v=1", claims iss (key
// sid), sub (account sid), jti, nbf, exp and grants {identity, voice}. The
// format is the one existing CPaaS helper libraries produce, byte for byte, so
// tokens they mint are accepted unchanged.
//
// Verification reports why a token fails with a distinct error for each
// reason (malformed, algorithm, content type, unknown key, signature, revoked
// key, account mismatch, inactive account, expired, not yet valid, lifetime too
// long), so that callers can return precise errors and count them.
package accesstoken
