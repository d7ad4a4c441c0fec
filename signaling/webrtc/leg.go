package webrtc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/signaling/media"
)

// leg is one browser party of a call: a PeerConnection whose audio is
// relayed to and from an anchored media.Endpoint.
type leg struct {
	s        *session
	g        *Gateway
	callSid  string
	ref      string // the client's reference of a call it placed
	outgoing bool   // the browser placed the call (it is the caller's leg)

	offer    []media.RTPCodec // outgoing: the bridgeable codecs the browser offered
	offerSDP string

	mu        sync.Mutex
	pc        *pion.PeerConnection
	remoteSet bool
	pending   []pion.ICECandidateInit
	answered  bool
	final     bool
	rang      bool
	med       calls.LegMedia
	ep        *media.Endpoint
	relay     *net.UDPConn
	track     *localTrack
	dtmfMu    sync.Mutex // one digit string at a time
	dtmfTS    uint32
	dtmfSeq   uint16
	dtmfSSRC  uint32
	connected chan struct{}
	connOnce  sync.Once

	// Ring: what the browser said.
	answers chan string
	rejects chan int
	ringing chan struct{}

	digits  chan byte
	done    chan struct{}
	endOnce sync.Once
	hungUp  atomic.Bool // a hangup frame was sent or received
}

func newLeg(g *Gateway, s *session, callSid, ref string) *leg {
	return &leg{s: s, g: g, callSid: callSid, ref: ref, connected: make(chan struct{}),
		answers: make(chan string, 1), rejects: make(chan int, 1), ringing: make(chan struct{}, 1),
		digits: make(chan byte, 16), done: make(chan struct{}), dtmfSSRC: randUint32()}
}

// frame handles a frame about this call from the browser.
func (l *leg) frame(f Frame) {
	switch f.Type {
	case TypeAnswer:
		select {
		case l.answers <- f.SDP:
		default:
			l.s.sendError(CodeBadFrame, "the call was already answered", f)
		}
	case TypeRinging:
		select {
		case l.ringing <- struct{}{}:
		default:
		}
	case TypeReject:
		status := f.Status
		if status < 400 || status > 699 {
			status = 603
		}
		select {
		case l.rejects <- status:
		default:
		}
	case TypeHangup:
		l.hungUp.Store(true)
		l.remoteHangup()
	case TypeCandidate:
		if err := l.addCandidate(*f.Candidate); err != nil {
			l.s.sendError(CodeBadFrame, err.Error(), f)
		}
	case TypeDTMF:
		go l.sendDigits(f.Digits)
	}
}

func (l *leg) addCandidate(c Candidate) error {
	init := pion.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.Candidate == "" {
		return nil // end of candidates
	}
	if l.pc == nil || !l.remoteSet {
		if len(l.pending) < 64 {
			l.pending = append(l.pending, init)
		}
		return nil
	}
	if err := l.pc.AddICECandidate(init); err != nil {
		return fmt.Errorf("candidate: %w", err)
	}
	return nil
}

// setRemote applies the browser's description and then any candidates that
// arrived before it.
func (l *leg) setRemote(typ pion.SDPType, sdp string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.pc.SetRemoteDescription(pion.SessionDescription{Type: typ, SDP: sdp}); err != nil {
		return fmt.Errorf("remote description: %w", err)
	}
	l.remoteSet = true
	for _, c := range l.pending {
		if err := l.pc.AddICECandidate(c); err != nil {
			l.g.log.Debug("buffered candidate refused", "err", err)
		}
	}
	l.pending = nil
	return nil
}

// setup creates the PeerConnection for codecs, with the relay to a new
// anchored endpoint.
func (l *leg) setup(codecs []media.RTPCodec) error {
	api, err := l.g.api(codecs)
	if err != nil {
		return err
	}
	pc, err := api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		return fmt.Errorf("peer connection: %w", err)
	}
	ep, err := l.g.deps.Ports.Listen(l.g.deps.MediaAddr)
	if err != nil {
		pc.Close()
		return fmt.Errorf("media endpoint: %w", err)
	}
	relay, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(l.g.deps.MediaAddr, 0)))
	if err != nil {
		pc.Close()
		ep.Close()
		return fmt.Errorf("media relay: %w", err)
	}
	ep.SetRemote(relay.LocalAddr().(*net.UDPAddr).AddrPort())
	track := &localTrack{}
	tr, err := pc.AddTransceiverFromTrack(track, pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionSendrecv})
	if err != nil {
		pc.Close()
		ep.Close()
		relay.Close()
		return fmt.Errorf("audio track: %w", err)
	}
	go drainRTCP(tr.Sender())
	pc.OnTrack(func(t *pion.TrackRemote, r *pion.RTPReceiver) {
		go drainRTCPReceiver(r)
		l.fromBrowser(t, relay, ep.Local())
	})
	pc.OnConnectionStateChange(func(st pion.PeerConnectionState) {
		l.g.log.Debug("browser leg connection", "call", l.callSid, "state", st.String())
		switch st {
		case pion.PeerConnectionStateConnected:
			l.connOnce.Do(func() { close(l.connected) })
		case pion.PeerConnectionStateFailed, pion.PeerConnectionStateClosed:
			go l.remoteHangup()
		}
	})
	l.mu.Lock()
	l.pc, l.ep, l.relay, l.track = pc, ep, relay, track
	l.mu.Unlock()
	go l.toBrowser(relay)
	return nil
}

// localDescription sets desc and waits (briefly) for host candidates, so
// that the SDP sent is complete.
func (l *leg) localDescription(desc pion.SessionDescription) (string, error) {
	gathered := pion.GatheringCompletePromise(l.pc)
	if err := l.pc.SetLocalDescription(desc); err != nil {
		return "", fmt.Errorf("local description: %w", err)
	}
	select {
	case <-gathered:
	case <-time.After(3 * time.Second):
	case <-l.done:
		return "", errors.New("call ended")
	}
	return l.pc.LocalDescription().SDP, nil
}

// fromBrowser relays the browser's RTP into the anchored endpoint.
func (l *leg) fromBrowser(t *pion.TrackRemote, relay *net.UDPConn, to netip.AddrPort) {
	buf := make([]byte, 1500)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		if _, err := relay.WriteToUDPAddrPort(buf[:n], to); err != nil {
			return
		}
	}
}

// toBrowser relays what the engine sends to the endpoint onto the browser's
// track, and tells the browser of RFC 4733 digits from the other party.
func (l *leg) toBrowser(relay *net.UDPConn) {
	buf := make([]byte, 1500)
	var det *media.DTMFDetector
	for {
		n, _, err := relay.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		var p rtp.Packet
		if p.Unmarshal(buf[:n]) != nil {
			continue
		}
		if det == nil {
			l.mu.Lock()
			if l.answered {
				det = &media.DTMFDetector{PayloadType: l.med.EventPT}
			}
			l.mu.Unlock()
		}
		if det != nil && det.PayloadType != 0 {
			if d, ok := det.Feed(buf[:n]); ok {
				l.notify(Frame{Type: TypeDTMF, CallSid: l.callSid, Digits: string(d)})
			}
		}
		l.track.write(&p)
	}
}

func drainRTCP(s *pion.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := s.Read(buf); err != nil {
			return
		}
	}
}

func drainRTCPReceiver(r *pion.RTPReceiver) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// sendDigits plays digits from a dtmf frame to the other party: as RFC 4733
// events into the endpoint when telephone-event was negotiated, else out of
// band (Digits). A comma pauses half a second.
func (l *leg) sendDigits(digits string) {
	l.dtmfMu.Lock()
	defer l.dtmfMu.Unlock()
	l.mu.Lock()
	answered, m, relay := l.answered, l.med, l.relay
	l.mu.Unlock()
	if !answered {
		return
	}
	for i := 0; i < len(digits); i++ {
		d := digits[i]
		if d == ',' {
			time.Sleep(500 * time.Millisecond)
			continue
		}
		if m.EventPT == 0 {
			select {
			case l.digits <- d:
			default:
			}
			continue
		}
		l.dtmfTS += 8000 // a new event: a new timestamp
		const step, packets = 160, 6
		for k := 1; k <= packets+2; k++ {
			dur := k * step
			if dur > packets*step {
				dur = packets * step
			}
			payload, err := media.MarshalDTMF(media.DTMFEvent{Digit: d, End: k >= packets, Volume: 10, Duration: uint16(dur)})
			if err != nil {
				break
			}
			l.dtmfSeq++
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: m.EventPT, Marker: k == 1, SequenceNumber: l.dtmfSeq,
				Timestamp: l.dtmfTS, SSRC: l.dtmfSSRC}, Payload: payload}
			b, _ := p.Marshal()
			if _, err := relay.WriteToUDPAddrPort(b, m.Endpoint.Local()); err != nil {
				return
			}
			select {
			case <-l.done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		time.Sleep(60 * time.Millisecond)
	}
}

// notify sends a frame to the leg's session (none for SIP-over-WebSocket legs).
func (l *leg) notify(f Frame) {
	if l.s != nil {
		l.s.send(f)
	}
}

// remoteHangup ends the leg because the browser hung up, refused or left.
func (l *leg) remoteHangup() { l.end() }

// end releases everything the leg holds; Done is closed.
func (l *leg) end() {
	l.endOnce.Do(func() {
		l.g.log.Debug("browser leg ended", "call", l.callSid)
		close(l.done)
		if l.s != nil {
			l.s.dropLeg(l)
		}
		l.mu.Lock()
		pc, ep, relay := l.pc, l.ep, l.relay
		l.mu.Unlock()
		if pc != nil {
			go pc.Close() // it waits for its goroutines; do not hold up the caller
		}
		if ep != nil {
			ep.Close()
		}
		if relay != nil {
			relay.Close()
		}
	})
}

// hangup tells the browser the call ended (once) and ends the leg.
func (l *leg) hangup(status int, reason string) {
	if !l.hungUp.Swap(true) {
		l.notify(Frame{Type: TypeHangup, CallSid: l.callSid, Ref: l.ref, Status: status, Message: reason})
	}
	l.end()
}

// calls.Leg

func (l *leg) Offer() []media.RTPCodec {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.answered {
		return l.med.Codecs
	}
	return l.offer
}

func (l *leg) Answer(ctx context.Context, prefer []media.RTPCodec) (calls.LegMedia, error) {
	l.mu.Lock()
	if l.answered {
		defer l.mu.Unlock()
		return l.med, nil
	}
	if l.final || !l.outgoing {
		l.mu.Unlock()
		return calls.LegMedia{}, errors.New("the call was already refused")
	}
	l.mu.Unlock()
	codecs, err := choose(l.offer, prefer)
	if err != nil {
		return calls.LegMedia{}, err
	}
	if err := l.setup(codecs); err != nil {
		return calls.LegMedia{}, err
	}
	if err := l.setRemote(pion.SDPTypeOffer, l.offerSDP); err != nil {
		return calls.LegMedia{}, err
	}
	answer, err := l.pc.CreateAnswer(nil)
	if err != nil {
		return calls.LegMedia{}, fmt.Errorf("answer: %w", err)
	}
	sdp, err := l.localDescription(answer)
	if err != nil {
		return calls.LegMedia{}, err
	}
	l.mu.Lock()
	l.answered, l.final = true, true
	codec, ev := legMediaOf(l.ep, codecs)
	l.med = calls.LegMedia{Endpoint: l.ep, Codec: codec, EventPT: ev, Codecs: codecs}
	m := l.med
	l.mu.Unlock()
	l.notify(Frame{Type: TypeAnswer, CallSid: l.callSid, Ref: l.ref, SDP: sdp})
	return m, nil
}

func (l *leg) Ringing(ctx context.Context) error {
	l.mu.Lock()
	send := l.outgoing && !l.final && !l.rang
	l.rang = true
	l.mu.Unlock()
	if send {
		l.notify(Frame{Type: TypeRinging, CallSid: l.callSid, Ref: l.ref})
	}
	return nil
}

func (l *leg) Reject(ctx context.Context, status int, reason string) error {
	l.mu.Lock()
	l.final = true
	l.mu.Unlock()
	l.hangup(status, reason)
	return nil
}

func (l *leg) Hangup(ctx context.Context) error {
	l.mu.Lock()
	l.final = true
	l.mu.Unlock()
	l.hangup(0, "")
	return nil
}

func (l *leg) Done() <-chan struct{} { return l.done }
func (l *leg) Digits() <-chan byte   { return l.digits }

// localTrack is the audio Parley sends to the browser. It writes RTP as it
// comes from the endpoint (payload, timestamp, marker) under the SSRC and
// with sequence numbers of its own, so that a switch of source (ringback,
// then the bridged party) stays one stream to the browser.
type localTrack struct {
	mu   sync.Mutex
	w    pion.TrackLocalWriter
	ssrc uint32
	seq  uint16
}

func (t *localTrack) Bind(ctx pion.TrackLocalContext) (pion.RTPCodecParameters, error) {
	codecs := ctx.CodecParameters()
	if len(codecs) == 0 {
		return pion.RTPCodecParameters{}, errors.New("no codec negotiated")
	}
	t.mu.Lock()
	t.w, t.ssrc = ctx.WriteStream(), uint32(ctx.SSRC())
	t.mu.Unlock()
	return codecs[0], nil
}

func (t *localTrack) Unbind(pion.TrackLocalContext) error {
	t.mu.Lock()
	t.w = nil
	t.mu.Unlock()
	return nil
}

func (t *localTrack) ID() string              { return "audio" }
func (t *localTrack) RID() string             { return "" }
func (t *localTrack) StreamID() string        { return "parley" }
func (t *localTrack) Kind() pion.RTPCodecType { return pion.RTPCodecTypeAudio }

func (t *localTrack) write(p *rtp.Packet) {
	t.mu.Lock()
	w := t.w
	t.seq++
	p.Header.SequenceNumber = t.seq
	p.Header.SSRC = t.ssrc
	p.Header.Extension, p.Header.Extensions, p.Header.CSRC = false, nil, nil
	t.mu.Unlock()
	if w != nil {
		_, _ = w.WriteRTP(&p.Header, p.Payload)
	}
}
