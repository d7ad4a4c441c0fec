// Package twiml parses TwiML-compatible call instructions into a typed
// document model. It is pure (no I/O, no clock) and fuzzed: every input either
// parses or yields a *ParseError naming the element and line at fault.
//
// The root must be <Response>. Verbs: Say, Play, Pause, Dial (nouns Client,
// Sip, Number, or a bare number as text), Gather (nesting Say, Play, Pause),
// Record, Redirect, Hangup, Reject, Message. Verbs and attribute names are
// case-sensitive, as in the well-known dialect. Unknown attributes are
// ignored (helper libraries emit some this server does not use); unknown
// verbs and bad attribute values are errors. URLs are kept as written: the
// call engine resolves relative URLs against the document's own URL.
package twiml
