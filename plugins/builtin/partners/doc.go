// Package partners is the built-in partners plugin (SPEC §4c): partner
// records, their assertion keys (HMAC-SHA256 secrets, Ed25519 and RSA public
// keys, several per partner by kid for rotation), verification of partner
// assertions (signed JWTs) and single-use portal tokens and the portal
// sessions they open, all in the plugin's own SQLite database.
//
// The host reaches it over gRPC (plugins/proto/partners/v1, where the
// kind's vocabulary — features, statuses, key types, refusal reasons —
// lives too) through the plugin supervisor, and so does `parley partner`
// (through a running server's control socket, or a plugin it starts). The
// plugin keeps no state outside SQLite. It imports only the SDK, its
// contract and internal leaves.
package partners
