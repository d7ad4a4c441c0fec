package webrtc

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/signaling/media"
)

// browser is a pion-based client of the JSON protocol: what a browser with
// the SDK does, in Go.
type browser struct {
	*socket
	pc       *pion.PeerConnection
	track    *pion.TrackLocalStaticRTP
	received atomic.Int64
	sent     atomic.Int64
	stop     chan struct{}
}

func newBrowser(t *testing.T, e *env, token string) *browser {
	t.Helper()
	b := &browser{socket: dialSocket(t, e), stop: make(chan struct{})}
	b.register(token)
	t.Cleanup(func() {
		select {
		case <-b.stop:
		default:
			close(b.stop)
		}
		if b.pc != nil {
			b.pc.Close()
		}
	})
	return b
}

// peer creates the client's PeerConnection with PCMU and telephone-event.
func (b *browser) peer() {
	t := b.t
	me := &pion.MediaEngine{}
	for _, c := range []pion.RTPCodecParameters{
		{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypePCMU, ClockRate: 8000, Channels: 1}, PayloadType: 0},
		{RTPCodecCapability: pion.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 8000, Channels: 1, SDPFmtpLine: "0-15"}, PayloadType: 101},
	} {
		if err := me.RegisterCodec(c, pion.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	se := pion.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	api := pion.NewAPI(pion.WithMediaEngine(me), pion.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	track, err := pion.NewTrackLocalStaticRTP(pion.RTPCodecCapability{MimeType: pion.MimeTypePCMU, ClockRate: 8000}, "audio", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	pc.OnTrack(func(tr *pion.TrackRemote, _ *pion.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			b.received.Add(1)
		}
	})
	b.pc, b.track = pc, track
}

func (b *browser) gather(desc pion.SessionDescription) string {
	b.t.Helper()
	done := pion.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(desc); err != nil {
		b.t.Fatal(err)
	}
	<-done
	return b.pc.LocalDescription().SDP
}

// answer accepts an incoming frame's offer and starts sending audio.
func (b *browser) answer(in Frame) {
	b.t.Helper()
	b.peer()
	if err := b.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: in.SDP}); err != nil {
		b.t.Fatal(err)
	}
	ans, err := b.pc.CreateAnswer(nil)
	if err != nil {
		b.t.Fatal(err)
	}
	b.send(Frame{Type: TypeAnswer, CallSid: in.CallSid, SDP: b.gather(ans)})
	go b.talk()
}

// invite places a call; the answer frame is applied by acceptAnswer.
func (b *browser) invite(ref, to string, params map[string]string) {
	b.t.Helper()
	b.peer()
	offer, err := b.pc.CreateOffer(nil)
	if err != nil {
		b.t.Fatal(err)
	}
	b.send(Frame{Type: TypeInvite, Ref: ref, To: to, Params: params, SDP: b.gather(offer)})
}

func (b *browser) acceptAnswer(f Frame) {
	b.t.Helper()
	if err := b.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: f.SDP}); err != nil {
		b.t.Fatal(err)
	}
	go b.talk()
}

// talk sends 20 ms PCMU frames of a 1 kHz tone until stopped.
func (b *browser) talk() {
	payload := media.PCMU.Encode(nil, media.Tone(1000, 160, 9000))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var seq uint16
	var ts uint32
	for {
		select {
		case <-b.stop:
			return
		case <-tick.C:
		}
		seq++
		ts += 160
		if err := b.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: ts}, Payload: payload}); err == nil {
			b.sent.Add(1)
		}
	}
}

// sipCaller is a SIP UA with real RTP that calls through Parley as bob.
type sipCaller struct {
	t       *testing.T
	e       *env
	ua      *sipgo.UserAgent
	c       *sipgo.Client
	srv     *sipgo.Server
	ep      *media.Endpoint
	capture *capture
	sender  *media.Sender
	dc      *sipgo.DialogClientSession
	byes    chan struct{}
	// As a phone (answerCalls):
	dtx      *sipgo.DialogServerSession
	answered chan *sipgo.DialogServerSession
}

func newSIPCaller(t *testing.T, e *env) *sipCaller {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-caller"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	ports, err := media.NewPortRange(44000, 44999)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := ports.Listen(lo)
	if err != nil {
		t.Fatal(err)
	}
	s := &sipCaller{t: t, e: e, ua: ua, c: c, srv: srv, ep: ep, capture: newCapture(101), sender: media.NewSender(ep, media.PCMU, 101), byes: make(chan struct{}, 1), answered: make(chan *sipgo.DialogServerSession, 1)}
	ep.SetSink(s.capture.sink)
	srv.OnBye(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		if s.dc != nil {
			s.dc.ReadBye(req, tx)
		} else {
			tx.Respond(sipmsg.NewResponseFromRequest(req, 200, "OK", nil))
		}
		select {
		case s.byes <- struct{}{}:
		default:
		}
	})
	t.Cleanup(func() { ep.Close(); ua.Close() })
	return s
}

// call INVITEs user@pbx.test and returns once the call is answered.
func (s *sipCaller) call(ctx context.Context, user string) error {
	offer := media.Session{Addr: lo, Port: int(s.ep.Local().Port()), Codecs: []media.RTPCodec{
		{PT: 0, Name: "PCMU", Rate: 8000, Channels: 1}, {PT: 101, Name: "telephone-event", Rate: 8000, Channels: 1, Fmtp: "0-15"}}}
	to := sipmsg.Uri{Scheme: "sip", User: user, Host: testDomain}
	inv := sipmsg.NewRequest(sipmsg.INVITE, to)
	inv.SetTransport("UDP")
	inv.SetDestination(s.e.sip.Addr("udp").String())
	from := &sipmsg.FromHeader{Address: sipmsg.Uri{Scheme: "sip", User: "bob", Host: testDomain}, Params: sipmsg.NewParams()}
	from.Params.Add("tag", sipmsg.GenerateTagN(8))
	inv.AppendHeader(from)
	inv.AppendHeader(&sipmsg.ToHeader{Address: to, Params: sipmsg.NewParams()})
	inv.AppendHeader(&sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1"}})
	inv.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody(offer.Marshal(2, 2))
	ua := &sipgo.DialogUA{Client: s.c, ContactHDR: *inv.Contact(), RewriteContact: true}
	dc, err := ua.WriteInvite(ctx, inv)
	if err != nil {
		return err
	}
	s.dc = dc
	if err := dc.WaitAnswer(ctx, sipgo.AnswerOptions{Username: "bob", Password: testPassword}); err != nil {
		return err
	}
	if err := dc.Ack(ctx); err != nil {
		return err
	}
	answer, err := media.ParseSDP(dc.InviteResponse.Body())
	if err != nil {
		return err
	}
	s.ep.SetRemote(answer.RTP())
	return nil
}

// heard collects d of audio and returns samples and the strength at freq.
func (s *sipCaller) heard(d time.Duration, freq float64) (int, float64) {
	var samples []int16
	end := time.After(d)
	for {
		select {
		case c := <-s.capture.Samples:
			samples = append(samples, c...)
		case <-end:
			return len(samples), media.ToneRatio(samples, freq)
		}
	}
}

// answerCalls makes the UA a phone registered as user that answers every
// INVITE at once with PCMU on its endpoint; dialogs are kept in s.dtx.
func (s *sipCaller) answerCalls(user string) {
	t := s.t
	dua := &sipgo.DialogUA{Client: s.c, ContactHDR: sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: user, Host: "127.0.0.1", Port: 5999}}}
	var legs sync.Map
	s.srv.OnInvite(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		offer, err := media.ParseSDP(req.Body())
		if err != nil {
			tx.Respond(sipmsg.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
			return
		}
		dtx, err := dua.ReadInvite(req, tx)
		if err != nil {
			return
		}
		legs.Store(req.CallID().Value(), dtx)
		s.ep.SetRemote(offer.RTP())
		sess := media.Session{Addr: lo, Port: int(s.ep.Local().Port()), Codecs: media.Negotiate(offer.Codecs, "PCMU", "telephone-event")}
		dtx.Respond(180, "Ringing", nil)
		if err := dtx.RespondSDP(sess.Marshal(3, 3)); err != nil {
			t.Logf("phone answer: %v", err)
			return
		}
		s.answered <- dtx
		<-dtx.Context().Done()
		select {
		case s.byes <- struct{}{}:
		default:
		}
	})
	s.srv.OnAck(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		if d, ok := legs.Load(req.CallID().Value()); ok {
			d.(*sipgo.DialogServerSession).ReadAck(req, tx)
		}
	})
	s.srv.OnBye(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		if d, ok := legs.Load(req.CallID().Value()); ok {
			d.(*sipgo.DialogServerSession).ReadBye(req, tx)
		}
	})
	req := sipmsg.NewRequest(sipmsg.REGISTER, sipmsg.Uri{Scheme: "sip", Host: testDomain})
	req.SetTransport("UDP")
	req.SetDestination(s.e.sip.Addr("udp").String())
	aor := sipmsg.Uri{Scheme: "sip", User: user, Host: testDomain}
	from := &sipmsg.FromHeader{Address: aor, Params: sipmsg.NewParams()}
	from.Params.Add("tag", sipmsg.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sipmsg.ToHeader{Address: aor})
	req.AppendHeader(sipmsg.NewHeader("Contact", "<sip:"+user+"@127.0.0.1:5999>"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := s.c.Do(ctx, req)
	if err == nil && res.StatusCode == 401 {
		res, err = s.c.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: testPassword})
	}
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("register %s: %v %v", user, res, err)
	}
}

// capture decodes every PCMU packet and RFC 4733 digit it gets, whatever
// its sequence number: the stream switches source (ringback, then the
// bridged party) and a real phone follows the new SSRC.
type capture struct {
	Samples chan []int16
	Digits  chan byte
	dtmf    media.DTMFDetector
}

func newCapture(eventPT uint8) *capture {
	return &capture{Samples: make(chan []int16, 512), Digits: make(chan byte, 32), dtmf: media.DTMFDetector{PayloadType: eventPT}}
}

func (c *capture) sink(pkt []byte) {
	var p rtp.Packet
	if p.Unmarshal(pkt) != nil {
		return
	}
	switch p.PayloadType {
	case c.dtmf.PayloadType:
		if d, ok := c.dtmf.Feed(pkt); ok {
			c.Digits <- d
		}
	case 0:
		select {
		case c.Samples <- media.PCMU.Decode(nil, p.Payload):
		default:
		}
	}
}
