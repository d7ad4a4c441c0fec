// Package webrtc is Parley's browser gateway: a WebSocket endpoint
// (/v1/signal) that speaks a small versioned JSON protocol (see
// docs/signalling.md), makes each authenticated session a presence binding
// (transport "webrtc"), and terminates the browser's media with pion/webrtc:
// one PeerConnection per browser leg, ICE with host (and NAT 1:1) candidates,
// DTLS-SRTP, and PCMU/PCMA/Opus negotiated with the payload types of the SIP
// side so that RTP payloads are relayed without transcoding.
//
// Each browser leg owns an ordinary media.Endpoint (an anchored RTP port
// pair), so the call engine bridges it to a SIP leg like any other: packets
// from the browser's track are written into the endpoint over a private
// loopback socket, and what the engine sends to the endpoint comes back on
// that socket and is written to the browser's track.
//
// The Gateway implements calls.RingRequester (the SIP dialer rings webrtc
// bindings through it) and places browser-originated calls through a
// sip.CallRouter and sip.CallRunner, like a SIP caller with a token.
package webrtc
