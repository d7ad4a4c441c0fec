// Package partners is the built-in partners plugin (SPEC §4c): partner
// records, their assertion keys (HMAC-SHA256 secrets, Ed25519 and RSA public
// keys, several per partner by kid for rotation), verification of partner
// assertions (signed JWTs) and single-use portal tokens and the portal
// sessions they open, all in the plugin's own SQLite database.
//
// The host reaches it over gRPC (partners/v1) through the plugin supervisor;
// `parley partner` opens the same database in-process through [Server], so
// the plugin keeps no state outside SQLite.
package partners
