// Package media is Parley's media plane for anchored calls: G.711 codecs, WAV
// files, RTP endpoints with symmetric latching allocated from a port range,
// pass-through relaying between call legs, RFC 4733 telephone events, and the
// players and recorders that the TwiML verbs Play, Say, Gather and Record use.
//
// Media generated or captured by Parley is 8 kHz mono G.711 (µ-law on the
// wire by default); relayed media is passed through untouched apart from the
// payload type, so Opus and G.711 legs bridge without transcoding.
package media
