// Package registrar is the RFC 3261 §10.3 registrar of the SIP front end,
// whatever read the REGISTER: sipgo's parser (any transport, RequestOf) or
// the stateless UDP path's fast parser (udpreg). Both readings meet in a
// Request.
//
// Register authenticates the request (sipauth: Digest or Bearer), checks
// the To user against a Digest user, reads each Contact's expiry (the
// Contact's expires, else the Expires header, else the default; shorter
// than the minimum → 423, longer than the maximum → shortened), q,
// +sip.instance and reg-id (RFC 5626), applies them to the
// presence.Registry (or, without Contacts, lists the bindings) and answers
// 200 with every binding and a Date.
//
// It answers through a ReplyFunc its caller passes with each request: the
// SIP server's passes one that responds on the sipgo transaction, the UDP
// path one that renders the response bytes itself and keeps them for
// retransmissions. The registrar never sees either: neither depends on the
// other, and the UDP path can import this package without an import cycle.
// A function rather than an interface: the caller's closure then stays on
// its stack (an interface would cost an allocation per REGISTER).
package registrar
