// Package transcode bridges two call legs that share no codec: each side's
// audio is decoded, re-framed in 20 ms frames and encoded in the other
// side's codec (PCMU, PCMA, Opus), sent with the bridge's own SSRC, sequence
// numbers and timestamps; RFC 4733 telephone-events are relayed into the
// same stream with the other leg's payload type (durations rescaled when the
// event clocks differ). Loss is concealed (Opus PLC, G.711 silence) for up to
// three frames; longer gaps (silence suppression, DTX, a held phone) move the
// outgoing timestamps on by the gap and set the marker bit. RTCP is not
// relayed across a transcoder (its SSRCs and counts would be wrong).
//
// Connect is what a B2BUA calls once both legs are answered. It keeps
// media.BridgeTaps' pass-through whenever each leg's sending codec is one the
// other negotiated, and transcodes only when they share none:
//
//	br, err := transcode.Connect(
//		transcode.Leg{Endpoint: callerEP, Codecs: callerAnswer.Codecs, Tap: dtmfTap},
//		transcode.Leg{Endpoint: calleeEP, Codecs: calleeAnswer.Codecs})
//	…
//	br.Close() // Unbridge
//
// The working PCM rate is the lower of the two codecs' (8 kHz whenever a
// G.711 leg is involved), so a PCMU↔Opus call needs no resampler: libopus
// encodes and decodes narrowband directly.
package transcode
