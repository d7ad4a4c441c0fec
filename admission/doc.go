// Package admission is Parley's concurrency admission policy (SPEC §4a): for
// each request of a resource type, per account, compare the concurrency value
// with its limit; within it, dispatch and count +1 (a lease with a TTL); over
// it, impede; on completion, count −1.
//
// This file set holds the domain types the rest of the server programs
// against. The host-side client and the built-in plugin build on them.
package admission
