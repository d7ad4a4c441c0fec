// Package reqctx is the context a SIP request is handled in (the
// registrar, authentication, calls, messages, subscriptions): it ends
// Timeout after the request arrived, or when Cancel is called, and unlike
// context.WithTimeout it makes its timer only when something waits on it,
// which a REGISTER answered from memory never does.
package reqctx
