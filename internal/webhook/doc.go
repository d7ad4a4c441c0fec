// Package webhook signs and sends Parley's outgoing webhooks (call
// instructions, status callbacks, usage-trigger and messaging callbacks) and
// owns the egress policy that every fetch of a tenant-supplied URL goes
// through.
//
// Every request carries two signatures over the same string — the full URL
// followed by each parameter name and value, names sorted:
//   - X-Twilio-Signature: base64 HMAC-SHA1 keyed by the account's auth token,
//     which existing helper libraries' request validators accept unchanged;
//   - X-Parley-Signature: base64 HMAC-SHA256 of the same string and key, for
//     receivers that want a stronger hash.
//
// For GET the parameters travel in the query string and the signed URL
// includes them (no parameters are appended to the signed string).
//
// The egress policy (Policy) stops a tenant from pointing Parley at the
// operator's own network: only http and https URLs; host names are resolved
// and every address the server would connect to is checked — loopback,
// private, link-local, CGNAT, multicast, unspecified, reserved,
// documentation and benchmarking ranges and cloud metadata addresses are
// refused, in IPv4, IPv6 and the IPv6 forms that embed IPv4 — and the
// connection goes to the address that was checked (a net.Dialer Control
// hook checks it once more on the socket), so a DNS answer that changes
// between check and use gains nothing. Redirects are bounded and each is
// checked the same way; https never redirects to http. Operators allow
// networks explicitly (webhooks.allow_networks, e.g. 127.0.0.0/8 for an
// application on the same host); cloud metadata addresses stay refused.
// A refusal is a *RefusedError carrying a platform error code
// (docs/errors.md).
package webhook
