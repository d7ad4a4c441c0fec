package media

import (
	"net/netip"
	"strings"
	"testing"
)

const sippOffer = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 6000 RTP/AVP 8 0 18 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n"

func TestParseNegotiateAnswer(t *testing.T) {
	s, err := ParseSDP([]byte(sippOffer))
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr != netip.MustParseAddr("127.0.0.1") || s.Port != 6000 || s.PTime != 20 || s.Direction != "sendrecv" {
		t.Fatalf("session %+v", s)
	}
	// 18 (G.729) has no rtpmap and is not one we know: dropped. 0 is static PCMU.
	var names []string
	for _, c := range s.Codecs {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "PCMA,PCMU,telephone-event" || s.Codecs[2].Fmtp != "0-15" {
		t.Fatalf("codecs %+v", s.Codecs)
	}
	chosen := Negotiate(s.Codecs, "PCMU", "PCMA", "telephone-event")
	audio, ev, ok := Session{Codecs: chosen}.First()
	if !ok || audio.Name != "PCMA" || ev != 101 {
		t.Fatalf("first %+v ev %d", audio, ev)
	}
	answer := Session{Addr: netip.MustParseAddr("127.0.0.1"), Port: 42000, Codecs: chosen, PTime: 20}.Marshal(1, 2)
	back, err := ParseSDP(answer)
	if err != nil || back.Port != 42000 || len(back.Codecs) != 3 || back.Codecs[2].Fmtp != "0-15" {
		t.Fatalf("answer %q parsed %+v %v", answer, back, err)
	}
	m := PTMapFor([]RTPCodec{{PT: 96, Name: "opus", Rate: 48000}, {PT: 101, Name: "telephone-event", Rate: 8000}},
		[]RTPCodec{{PT: 111, Name: "opus", Rate: 48000}, {PT: 101, Name: "telephone-event", Rate: 8000}})
	if len(m) != 1 || m[96] != 111 {
		t.Fatalf("pt map %v", m)
	}
}

func TestParseSDPErrors(t *testing.T) {
	tests := map[string]string{
		"garbage":   "hello",
		"no audio":  "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\n",
		"srtp":      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 UDP/TLS/RTP/SAVPF 111\r\n",
		"no c line": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n",
		"bad addr":  "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 host.example\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n",
		"too big":   strings.Repeat("a", MaxSDPBytes+1),
	}
	for name, body := range tests {
		if _, err := ParseSDP([]byte(body)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func FuzzParseSDP(f *testing.F) {
	f.Add([]byte(sippOffer))
	f.Add([]byte("v=0\r\nc=IN IP6 ::1\r\nm=audio 1 RTP/AVP 0\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSDP(b)
		if err != nil {
			return
		}
		if !s.Addr.IsValid() || s.Port <= 0 {
			t.Fatalf("accepted %+v", s)
		}
		if _, err := ParseSDP(s.Marshal(1, 1)); err != nil && len(s.Codecs) > 0 {
			t.Fatalf("our own answer does not parse: %v", err)
		}
		sec, err := ParseSDPSecure(b)
		if err != nil {
			t.Fatalf("ParseSDP accepted what ParseSDPSecure refuses: %v", err)
		}
		if len(sec.Crypto) != len(s.Crypto) {
			t.Fatalf("crypto lines %d and %d", len(sec.Crypto), len(s.Crypto))
		}
	})
}

func FuzzParseSDPSecure(f *testing.F) {
	f.Add([]byte(savpOffer))
	f.Add([]byte(sippOffer))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSDPSecure(b)
		if err != nil {
			return
		}
		if !s.Addr.IsValid() || s.Port <= 0 || (s.Proto != ProtoRTP && s.Proto != ProtoSRTP) {
			t.Fatalf("accepted %+v", s)
		}
		back, err := ParseSDPSecure(s.Marshal(1, 1))
		if err != nil {
			if len(s.Codecs) > 0 {
				t.Fatalf("our own answer does not parse: %v", err)
			}
			return
		}
		if back.Proto != s.Proto || len(back.Crypto) != len(s.Crypto) {
			t.Fatalf("round trip changed the transport or keys: %+v → %+v", s, back)
		}
	})
}
