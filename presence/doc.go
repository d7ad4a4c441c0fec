// Package presence is Parley's token-checked presence: which clients of an
// account are reachable, over which bindings, in which state. Its first step,
// access-token verification, lives in presence/accesstoken.
package presence
