// Package admission is the host side of Parley's concurrency admission
// (SPEC §4a): the types the server programs against (Resource, Denial,
// Limit, Config), the REST middleware and denial answers, and Client, which
// REST and call setup call: Acquire(ctx, account, resource) → release func
// or *Denial.
//
// The Client does not ask the admission plugin per request (a plugin call
// costs more than a REST request): it leases capacity from the plugin in
// blocks, one lease per account × resource × host, renewed in batches every
// LeaseTTL/3, and admits locally against it with exact accounting, so that
// Σ in use ≤ Σ leased ≤ limit across hosts. calls-cps is a per-second
// window that asks the plugin per call setup. While the plugin is down,
// requests that fit in leased capacity are still admitted; the others
// follow on_failure (open: admit untracked; closed: a Denial with
// Unavailable set).
//
// The contract is plugins/proto/admission/v1 and the built-in plugin
// plugins/builtin/admission. The design notes — why a leased-block fast
// path, its measurements, leases and failures, the trade-off of blocks —
// are in docs/admission.md.
package admission
