// Package admission is Parley's concurrency admission policy (SPEC §4a): for
// each request of a resource type, per account, compare the concurrency value
// with its limit; within it, dispatch and count +1 (a lease with a TTL); over
// it, impede; on completion, count −1.
//
// The package holds three things:
//
//   - the domain types the server programs against (Resource, Denial, Limit,
//     Config);
//   - Server, the built-in admission plugin: limits per account × resource
//     and leases in its own SQLite database (store.OpenDB with the embedded
//     migrations/), mirrored in memory; it runs as a subprocess, started by
//     the plugin supervisor as `parley plugin serve admission` (ServePlugin);
//   - Client, the host side, used by REST middleware and call setup:
//     Acquire(ctx, account, resource) → release func or *Denial.
//
// # Why a leased-block fast path
//
// A gRPC call across the go-plugin boundary costs ≈185 µs on the target
// machine (measured p50 250 µs / p99 2 ms for Acquire with its SQLite write)
// — more than a REST request itself. One call per request would halve REST
// throughput, so the host does not ask the plugin per request. Instead the
// Client leases capacity from the plugin in blocks (Config.Block slots per
// call, one lease per account × resource × host) and admits requests
// locally against it with exact accounting:
//
//   - the plugin only ever grants capacity within the limit, counting every
//     host's leases; a host only admits while in-use < leased. So the limit
//     holds across any number of hosts: Σ in-use ≤ Σ leased ≤ limit.
//   - when a host's block is full it asks the plugin for more (min 1, up to
//     Block). The plugin grants at most half of what is free (at least the
//     minimum), so near the limit blocks shrink to single slots and one host
//     never takes the last slots another needs. If the plugin refuses, the
//     host is at the limit by its own count, so a Denial from a single host
//     is exact (Current = in use).
//   - release is a local decrement; spare capacity above one block is given
//     back every LeaseTTL/3, and all of it after two idle periods, on limit
//     changes and at Close, so other hosts are not starved for long.
//
// Steady-state decisions are a mutex and a map insert: ≈0.2 µs p50 and
// ≈0.3 µs p99 serial, ≈1.2 µs p99 with contention (BenchmarkAdmission), against
// ≈250 µs per bare plugin call. A streaming RPC was rejected: it still pays a
// round-trip per decision (≈70 µs even in-process) and keeps the plugin on
// the request path.
//
// # Leases and failures
//
//   - Block leases have a TTL (Config.LeaseTTL) and are renewed in one batched
//     Renew call every LeaseTTL/3. A host that dies stops renewing and its
//     capacity comes back after at most LeaseTTL. A restarted host drops the
//     leases of its previous life at Start (same Config.Holder).
//   - A request that never calls release (a bug or a panic past the
//     middleware) has its slot reclaimed after Config.SlotTTL for its
//     resource (calls: the maximum call duration).
//   - Leases are written to SQLite before they are acknowledged, so a
//     restarted plugin counts exactly the live leases (expired ones are
//     dropped at start and by a sweeper each second): no stale lease is
//     counted forever, and no capacity is granted twice.
//   - While the plugin is down, requests that fit in already-leased capacity
//     are still admitted exactly. Requests that need the plugin follow the
//     kind's on_failure: open admits them untracked (their release is a
//     no-op), closed returns a Denial with Unavailable set (answer 503).
//   - If a host cannot renew for longer than LeaseTTL its lease expires in
//     the plugin; at the next renewal or growth the host re-leases what it
//     has in use (best effort: if another host took the capacity meanwhile,
//     the limit can be exceeded by those in-flight requests until they end).
//
// calls-cps is a rate, not a concurrency: the plugin counts call setups in a
// fixed one-second window, every setup asks the plugin (setups are rare and
// already cost milliseconds), Retry-After is the time to the next second, and
// release does nothing.
//
// The trade-off of blocks: with several hosts, capacity leased but idle on
// one host is not available to another until it is given back (at most
// LeaseTTL/3 later), so a host can be refused while the account's true
// in-use total is below the limit. Config.Block = 1 removes that at the
// price of one plugin call per request that finds no spare slot.
package admission
