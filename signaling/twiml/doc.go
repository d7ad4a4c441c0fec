// Package twiml parses TwiML-compatible call instructions into a typed
// document model. It is pure (no I/O, no clock) and fuzzed: every input either
// parses or yields a *ParseError naming the element and line at fault.
//
// The root must be <Response>. Verbs: Say, Play, Pause, Dial (nouns Client —
// with nested Identity and Parameter —, Sip, Number, Conference, Queue, or a
// bare number as text; Conference and Queue stand alone), Gather (nesting Say,
// Play, Pause; dtmf and speech input), Record, Redirect, Hangup, Reject,
// Message, Enqueue (with an optional Task), Leave, Refer (nesting one Sip),
// Connect and Start (one Stream each, with Parameters) and Stop (a Stream by
// name). Verbs and attribute names are case-sensitive, as in the well-known
// dialect. Unknown attributes are ignored (helper libraries emit some this
// server does not use, as the hosted platform ignores them); unknown verbs
// and nouns and bad attribute values are errors. URLs are kept as written:
// the call engine resolves relative URLs against the document's own URL.
//
// The model covers more than the call engine runs: the engine refuses a verb
// or noun it does not carry out with a reported "not supported" error.
package twiml
