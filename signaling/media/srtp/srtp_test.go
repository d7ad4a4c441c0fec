package srtp

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/media/internal/mediatest"
)

// negotiate runs an offer/answer through real SDP bodies and returns the
// offerer's and the answerer's ciphers.
func negotiate(t *testing.T, suites []string) (*Cipher, *Cipher, string) {
	t.Helper()
	var offers []media.Crypto
	for i, s := range suites {
		c, err := NewKey(i+1, s)
		if err != nil { // a suite of the future, offered by a newer peer
			c = media.Crypto{Tag: i + 1, Suite: s, Key: make(media.SecretKey, 30)}
		}
		offers = append(offers, c)
	}
	offerSDP := media.Session{Addr: mediatest.Loopback, Port: 4000, Codecs: []media.RTPCodec{{PT: 0, Name: "PCMU", Rate: 8000}},
		Proto: media.ProtoSRTP, Crypto: offers}.Marshal(1, 1)
	offer, err := media.ParseSDPSecure(offerSDP)
	if err != nil {
		t.Fatal(err)
	}
	if !Required(offer) || !Offered(offer) {
		t.Fatalf("offer %s not seen as SRTP", offerSDP)
	}
	local, remote, err := Answer(offer.Crypto)
	if err != nil {
		t.Fatal(err)
	}
	answerer, err := NewCipher(local, remote)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := media.ParseSDPSecure(media.Session{Addr: mediatest.Loopback, Port: 4002, Codecs: offer.Codecs, Proto: media.ProtoSRTP,
		Crypto: []media.Crypto{local}}.Marshal(2, 2))
	if err != nil {
		t.Fatal(err)
	}
	ol, or, err := Accept(offers, answer.Crypto)
	if err != nil {
		t.Fatal(err)
	}
	offerer, err := NewCipher(ol, or)
	if err != nil {
		t.Fatal(err)
	}
	return offerer, answerer, local.Suite
}

// TestEndpointsExchangeSRTP has two endpoints speak SRTP to each other on
// loopback: a paced tone each way is heard after decryption, what crosses the
// wire is not the tone in the clear, and RTCP goes through SRTCP.
func TestEndpointsExchangeSRTP(t *testing.T) {
	for _, suites := range [][]string{{AES128SHA1_80}, {"UNKNOWN_SUITE", AES128SHA1_32}, {AES256SHA1_80}} {
		offerer, answerer, suite := negotiate(t, suites)
		t.Run(suite, func(t *testing.T) {
			r := mediatest.Ports(t)
			a, b := mediatest.Pair(t, r)
			a.SetCipher(offerer)
			b.SetCipher(answerer)
			pcmu := media.RTPCodec{PT: 0, Name: "PCMU", Rate: 8000}
			atB, atA := mediatest.NewReceiver(t, pcmu), mediatest.NewReceiver(t, pcmu)
			b.SetSink(atB.Sink)
			a.SetSink(atA.Sink)
			rtcpAtB := make(chan []byte, 4)
			b.SetRTCPSink(func(p []byte) { rtcpAtB <- append([]byte(nil), p...) })

			ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
			defer cancel()
			go mediatest.Source(ctx, t, a, pcmu, 1000, 1)
			go mediatest.Source(ctx, t, b, pcmu, 600, 2)
			<-ctx.Done()
			gotB, gotA := atB.WaitSamples(4000, time.Second), atA.WaitSamples(4000, time.Second)
			if len(gotB) < 3200 || mediatest.Ratio(gotB, 1000, 8000) < 0.8 {
				t.Fatalf("b decrypted %d samples, 1 kHz ratio %.2f", len(gotB), mediatest.Ratio(gotB, 1000, 8000))
			}
			if len(gotA) < 3200 || mediatest.Ratio(gotA, 600, 8000) < 0.8 {
				t.Fatalf("a decrypted %d samples, 600 Hz ratio %.2f", len(gotA), mediatest.Ratio(gotA, 600, 8000))
			}
			if f := b.Stats().SRTPFailed.Load() + a.Stats().SRTPFailed.Load(); f != 0 {
				t.Fatalf("%d packets failed to authenticate", f)
			}
			// SRTCP: a receiver report from a reaches b's RTCP sink in the clear.
			rr := []byte{0x80, 201, 0, 1, 0, 0, 0, 1} // RR, no report blocks, SSRC 1
			if err := a.WriteRTCP(rr); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-rtcpAtB:
				if string(got) != string(rr) {
					t.Fatalf("rtcp %x, want %x", got, rr)
				}
			case <-time.After(time.Second):
				t.Fatal("no SRTCP arrived")
			}
		})
	}
}

// TestWireIsEncrypted listens on the wire: a plain socket in place of the
// answerer gets packets whose payload is not the tone, and that it cannot
// decode.
func TestWireIsEncrypted(t *testing.T) {
	offerer, _, _ := negotiate(t, []string{AES128SHA1_80})
	r := mediatest.Ports(t)
	a := mediatest.Listen(t, r)
	a.SetCipher(offerer)
	tap, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	a.SetRemote(tap.LocalAddr().(*net.UDPAddr).AddrPort())
	pcmu := media.RTPCodec{PT: 0, Name: "PCMU", Rate: 8000}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	go mediatest.Source(ctx, t, a, pcmu, 1000, 1)
	var clear []int16
	buf := make([]byte, 1500)
	tap.SetReadDeadline(time.Now().Add(time.Second))
	for len(clear) < 1600 {
		n, _, err := tap.ReadFromUDP(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n != 12+160+10 {
			t.Fatalf("packet of %d bytes, want header + 160 + 10-byte tag", n)
		}
		clear = media.PCMU.Decode(clear, buf[12:12+160])
	}
	if r := mediatest.Ratio(clear, 1000, 8000); r > 0.1 {
		t.Fatalf("the tone is audible on the wire (ratio %.2f)", r)
	}
}

// TestBadTagAndReplayDropped feeds an SRTP endpoint from a phone socket that
// holds the peer's key: a tampered packet and a replayed one are dropped and
// counted, the good ones pass.
func TestBadTagAndReplayDropped(t *testing.T) {
	phoneCipher, epCipher, _ := negotiate(t, []string{AES128SHA1_80})
	r := mediatest.Ports(t)
	ep := mediatest.Listen(t, r)
	ep.SetCipher(epCipher)
	pcmu := media.RTPCodec{PT: 0, Name: "PCMU", Rate: 8000}
	got := mediatest.NewReceiver(t, pcmu)
	ep.SetSink(got.Sink)
	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	to := net.UDPAddrFromAddrPort(ep.Local())
	protect := func(seq uint16) []byte {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 9},
			Payload: media.PCMU.Encode(nil, mediatest.Tone(1000, 8000, 160, int(seq)*160, 8000))}
		raw, _ := pkt.Marshal()
		out, err := phoneCipher.ProtectRTP(nil, raw)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// A stranger's forged packet before anything else must not latch.
	forged := protect(1)
	forged[len(forged)-1] ^= 1
	stranger.WriteToUDP(forged, to)
	time.Sleep(20 * time.Millisecond)
	var sent [][]byte
	for seq := uint16(1); seq <= 20; seq++ {
		p := protect(seq)
		sent = append(sent, p)
		if seq == 10 {
			bad := append([]byte(nil), p...)
			bad[len(bad)-3] ^= 0x40 // flip a bit of the tag
			phone.WriteToUDP(bad, to)
		}
		phone.WriteToUDP(p, to)
		time.Sleep(2 * time.Millisecond)
	}
	phone.WriteToUDP(sent[4], to) // a replay
	deadline := time.Now().Add(time.Second)
	for ep.Stats().SRTPReplayed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s := ep.Stats()
	if s.SRTPFailed.Load() != 2 || s.SRTPReplayed.Load() != 1 || s.PacketsIn.Load() != 20 || got.Packets(0) != 20 {
		t.Fatalf("failed %d (want 2), replayed %d (want 1), in %d, delivered %d (want 20)",
			s.SRTPFailed.Load(), s.SRTPReplayed.Load(), s.PacketsIn.Load(), got.Packets(0))
	}
	if r := mediatest.Ratio(got.Samples(), 1000, 8000); r < 0.8 {
		t.Fatalf("tone ratio %.2f", r)
	}
	// Latched on the phone, not the stranger who spoke first.
	stranger.WriteToUDP(protect(30), to)
	time.Sleep(30 * time.Millisecond)
	if s.Foreign.Load() != 1 || got.Packets(0) != 20 {
		t.Fatalf("foreign %d, delivered %d: the stranger got through", s.Foreign.Load(), got.Packets(0))
	}
}

func TestNegotiationErrors(t *testing.T) {
	if _, _, err := Answer([]media.Crypto{{Tag: 1, Suite: "NOPE", Key: make(media.SecretKey, 30)}}); !errors.Is(err, ErrNoSuite) {
		t.Fatalf("unknown suite: %v", err)
	}
	if _, _, err := Answer([]media.Crypto{{Tag: 1, Suite: AES128SHA1_80, Key: make(media.SecretKey, 29)}}); !errors.Is(err, ErrNoSuite) {
		t.Fatalf("short key: %v", err)
	}
	if _, _, err := Answer([]media.Crypto{{Tag: 1, Suite: AES128SHA1_80, Key: make(media.SecretKey, 30), Params: []string{"UNENCRYPTED_SRTP"}}}); !errors.Is(err, ErrNoSuite) {
		t.Fatalf("unencrypted session parameter accepted: %v", err)
	}
	offers, _ := Offer()
	if len(offers) != len(Suites) || offers[0].Tag != 1 || string(offers[0].Key) == string(offers[1].Key[:30]) {
		t.Fatalf("offers %v", offers)
	}
	wrongTag, _ := NewKey(9, AES128SHA1_80)
	if _, _, err := Accept(offers, []media.Crypto{wrongTag}); err == nil {
		t.Fatal("answer with a tag not offered accepted")
	}
	wrongSuite, _ := NewKey(1, AES128SHA1_32)
	if _, _, err := Accept(offers, []media.Crypto{wrongSuite}); err == nil {
		t.Fatal("answer changing the suite of a tag accepted")
	}
	if _, _, err := Accept(offers, nil); err == nil {
		t.Fatal("answer without crypto accepted")
	}
	a, _ := NewKey(1, AES128SHA1_80)
	b, _ := NewKey(1, AES256SHA1_80)
	if _, err := NewCipher(a, b); err == nil {
		t.Fatal("mixed suites keyed")
	}
	if Offered(media.Session{}) || Required(media.Session{Proto: media.ProtoRTP}) {
		t.Fatal("plain session seen as SRTP")
	}
}

// TestMKI keys both sides with a 4-byte MKI: it is carried and checked.
func TestMKI(t *testing.T) {
	local, _ := NewKey(1, AES128SHA1_80)
	local.MKI, local.MKILen = 7, 4
	tx, err := NewCipher(local, local)
	if err != nil {
		t.Fatal(err)
	}
	rx, _ := NewCipher(local, local)
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1, SSRC: 1}, Payload: make([]byte, 160)}).Marshal()
	p, err := tx.ProtectRTP(nil, raw)
	if err != nil || len(p) != len(raw)+4+10 || p[len(p)-14+3] != 7 {
		t.Fatalf("protected %d bytes (%v), want MKI 7 before the tag", len(p), err)
	}
	if _, err := rx.UnprotectRTP(nil, p); err != nil {
		t.Fatal(err)
	}
}

func TestNoAllocationPerPacket(t *testing.T) {
	if raceDetector {
		t.Skip("allocation counts under -race are the detector's; make test runs the NoAllocation tests again without it")
	}
	tx, rx, _ := negotiate(t, []string{AES128SHA1_80})
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: make([]byte, 160)}).Marshal()
	enc, dec := make([]byte, 0, 1500), make([]byte, 0, 1500)
	seq := uint16(0)
	allocs := testing.AllocsPerRun(500, func() {
		seq++
		raw[2], raw[3] = byte(seq>>8), byte(seq)
		var err error
		if enc, err = tx.ProtectRTP(enc[:0], raw); err != nil {
			t.Fatal(err)
		}
		if dec, err = rx.UnprotectRTP(dec[:0], enc); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per packet", allocs)
	}
}

func BenchmarkProtectUnprotect(b *testing.B) {
	tx, rx, _ := negotiate(&testing.T{}, []string{AES128SHA1_80})
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: make([]byte, 160)}).Marshal()
	enc, dec := make([]byte, 0, 1500), make([]byte, 0, 1500)
	seq := uint16(0)
	for b.Loop() {
		seq++
		raw[2], raw[3] = byte(seq>>8), byte(seq)
		enc, _ = tx.ProtectRTP(enc[:0], raw)
		dec, _ = rx.UnprotectRTP(dec[:0], enc)
	}
}
