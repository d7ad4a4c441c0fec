// Package partners is the host side of partner delegation (SPEC §4c): a
// client of the partners plugin (partner records and keys, assertion →
// single-use portal URL, portal sessions) and the embeddable account portal
// served at /portal with its JSON API and live presence over WebSocket.
//
// Verification itself lives in the plugin (the contract is
// plugins/proto/partners/v1, the built-in plugins/builtin/partners); the
// host adds what only it knows — the account an assertion names, through
// the Accounts interface this package owns (the composition root adapts the
// core store to it) — and never trusts the assertion's claims before the
// plugin verified them.
package partners
