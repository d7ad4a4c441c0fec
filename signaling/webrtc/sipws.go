package webrtc

import (
	"context"
	"errors"
	"fmt"
	"time"

	pion "github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/media"
)

// OfferSIP implements signaling/sip's WebRTCMedia: the media of a SIP leg to a browser
// SIP stack over WebSocket (JsSIP, SIP.js) is a PeerConnection like a
// gateway leg's, offered in the INVITE instead of plain RTP.
func (g *Gateway) OfferSIP(ctx context.Context, codecs []media.RTPCodec) (calls.MediaOffer, error) {
	codecs = bridgeable(codecs)
	if _, _, ok := sessionOf(codecs).First(); !ok {
		return nil, errors.New("webrtc: no codec a browser can take unchanged")
	}
	l := newLeg(g, nil, "", "")
	if err := l.setup(codecs); err != nil {
		return nil, err
	}
	offer, err := l.pc.CreateOffer(nil)
	if err != nil {
		l.end()
		return nil, fmt.Errorf("webrtc: offer: %w", err)
	}
	sdp, err := l.localDescription(offer)
	if err != nil {
		l.end()
		return nil, err
	}
	return &sipSession{l: l, sdp: sdp}, nil
}

type sipSession struct {
	l   *leg
	sdp string
}

func (s *sipSession) SDP() string { return s.sdp }
func (s *sipSession) Close()      { s.l.end() }

func (s *sipSession) Connect(ctx context.Context, answer string) (calls.LegMedia, error) {
	l := s.l
	got, err := audioCodecs(answer)
	if err != nil {
		return calls.LegMedia{}, err
	}
	got = bridgeable(got)
	if _, _, ok := sessionOf(got).First(); !ok {
		return calls.LegMedia{}, errors.New("webrtc: no audio codec in the answer")
	}
	if err := l.setRemote(pion.SDPTypeAnswer, answer); err != nil {
		return calls.LegMedia{}, err
	}
	select {
	case <-l.connected:
	case <-l.done:
		return calls.LegMedia{}, errors.New("webrtc: media closed before it connected")
	case <-ctx.Done():
		return calls.LegMedia{}, ctx.Err()
	case <-time.After(l.g.cfg.ConnectTimeout):
		return calls.LegMedia{}, errors.New("webrtc: ICE/DTLS did not connect")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answered, l.final = true, true
	codec, ev := legMediaOf(l.ep, got)
	l.med = calls.LegMedia{Endpoint: l.ep, Codec: codec, EventPT: ev, Codecs: got}
	return l.med, nil
}

// ParseOffer implements signaling/sip's WebRTCMedia.
func (g *Gateway) ParseOffer(offer string) ([]media.RTPCodec, error) {
	codecs, err := audioCodecs(offer)
	if err != nil {
		return nil, err
	}
	codecs = bridgeable(codecs)
	if _, _, ok := sessionOf(codecs).First(); !ok {
		return nil, errors.New("webrtc: the offer has no PCMU, PCMA or Opus")
	}
	return codecs, nil
}

// AnswerSIP implements signaling/sip's WebRTCMedia: a browser SIP stack's call is
// answered by a PeerConnection like a gateway leg's.
func (g *Gateway) AnswerSIP(ctx context.Context, offer string, prefer []media.RTPCodec) (string, calls.LegMedia, func(), error) {
	offered, err := g.ParseOffer(offer)
	if err != nil {
		return "", calls.LegMedia{}, nil, err
	}
	codecs, err := choose(offered, prefer)
	if err != nil {
		return "", calls.LegMedia{}, nil, err
	}
	l := newLeg(g, nil, "", "")
	if err := l.setup(codecs); err != nil {
		return "", calls.LegMedia{}, nil, err
	}
	fail := func(err error) (string, calls.LegMedia, func(), error) {
		l.end()
		return "", calls.LegMedia{}, nil, err
	}
	if err := l.setRemote(pion.SDPTypeOffer, offer); err != nil {
		return fail(err)
	}
	answer, err := l.pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("webrtc: answer: %w", err))
	}
	sdp, err := l.localDescription(answer)
	if err != nil {
		return fail(err)
	}
	l.mu.Lock()
	l.answered, l.final = true, true
	codec, ev := legMediaOf(l.ep, codecs)
	l.med = calls.LegMedia{Endpoint: l.ep, Codec: codec, EventPT: ev, Codecs: codecs}
	m := l.med
	l.mu.Unlock()
	return sdp, m, l.end, nil
}
