// Package builtin is the registry of policy plugins compiled into the parley
// binary. The host lists them in its catalog (Specs) and starts each one by
// re-executing itself as `parley plugin serve <name>`, which calls Serve.
//
// Each built-in lives in its own package, plugins/builtin/<name>
// (admission, usage, partners), shaped the same way: its kind's contract
// from plugins/proto/<kind>/v1, its own SQLite database with embedded
// migrations, and a Serve that hands both to the shared boilerplate in
// plugins/builtin/internal/runner. A built-in imports only plugins/sdk, its
// proto package and internal leaves — never a host package — so it could be
// built as an external plugin unchanged.
package builtin
