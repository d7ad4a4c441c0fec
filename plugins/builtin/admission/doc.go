// Package admission is the built-in admission plugin (SPEC §4a), run as a
// subprocess (`parley plugin serve admission`): limits per account ×
// resource and the hosts' leases in its own SQLite database (admission.db,
// the embedded migrations/), mirrored in memory so a decision never waits
// on a read. Every change is written through before it is acknowledged, so
// a restarted plugin counts exactly the leases that are still live; expired
// ones are dropped at start and by a sweeper each second. Acquire grants at
// most half of what is free (at least the minimum asked), so near the limit
// blocks shrink to single slots; calls-cps is counted in a fixed one-second
// window without leases.
//
// It imports only the SDK, its contract (plugins/proto/admission/v1) and
// internal leaves; the host's side is package admission at the top level
// (see docs/admission.md).
package admission
