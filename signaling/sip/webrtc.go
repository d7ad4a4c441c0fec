package sip

import (
	"context"

	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/media"
)

// WebRTCMedia terminates the WebRTC media (ICE, DTLS-SRTP) of SIP legs
// whose far end is a browser SIP stack registered over WebSocket (JsSIP,
// SIP.js): the ringer offers its SDP instead of plain RTP.
// signaling/webrtc's Gateway implements it.
type WebRTCMedia interface {
	// OfferSIP prepares media offering codecs (with their payload types).
	OfferSIP(ctx context.Context, codecs []media.RTPCodec) (calls.MediaOffer, error)
	// ParseOffer reads the codecs of a WebRTC offer from such a stack that
	// can be bridged unchanged (an INVITE it sent).
	ParseOffer(offer string) ([]media.RTPCodec, error)
	// AnswerSIP answers that offer, choosing prefer's codec first when
	// offered (pass-through); the media flows once ICE and DTLS connect.
	// closeFn releases it.
	AnswerSIP(ctx context.Context, offer string, prefer []media.RTPCodec) (answer string, m calls.LegMedia, closeFn func(), err error)
}
