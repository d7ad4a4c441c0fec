package webrtc

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/parleyhq/parley/signaling/media"
)

func TestParseFrame(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"register", `{"v":1,"type":"register","token":"abc"}`, true},
		{"no version is v1", `{"type":"ping"}`, true},
		{"invite", `{"type":"invite","ref":"r1","to":"bob","sdp":"v=0","params":{"a":"b"}}`, true},
		{"invite without ref", `{"type":"invite","to":"bob","sdp":"v=0"}`, false},
		{"candidate", `{"type":"candidate","callSid":"CA1","candidate":{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdpMid":"0","sdpMLineIndex":0}}`, true},
		{"candidate without candidate", `{"type":"candidate","callSid":"CA1"}`, false},
		{"hangup by ref", `{"type":"hangup","ref":"r1"}`, true},
		{"hangup without call", `{"type":"hangup"}`, false},
		{"dtmf", `{"type":"dtmf","callSid":"CA1","digits":"12*#A,"}`, true},
		{"dtmf bad", `{"type":"dtmf","callSid":"CA1","digits":"1z"}`, false},
		{"dtmf too long", `{"type":"dtmf","callSid":"CA1","digits":"` + strings.Repeat("1", 65) + `"}`, false},
		{"message", `{"type":"message","to":"bob","body":"hi"}`, true},
		{"unknown type", `{"type":"x"}`, false},
		{"server-only type", `{"type":"incoming","callSid":"CA1"}`, false},
		{"version 2", `{"v":2,"type":"ping"}`, false},
		{"not an object", `[1,2]`, false},
		{"wrong field type", `{"type":"register","token":5}`, false},
		{"too many params", `{"type":"invite","ref":"r","to":"b","sdp":"v","params":{` + manyParams(40) + `}}`, false},
		{"huge sdp", `{"type":"answer","callSid":"CA1","sdp":"` + strings.Repeat("a", maxSDP+1) + `"}`, false},
		{"empty", ``, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFrame([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("ParseFrame(%.60q) = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrFrame) {
				t.Fatalf("error %v does not wrap ErrFrame", err)
			}
		})
	}
}

func manyParams(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + strings.Repeat("x", i) + `":"v"`)
	}
	return b.String()
}

// FuzzParseFrame: the parser never panics, refuses with ErrFrame, and what
// it accepts survives a round trip.
func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{`{"type":"ping"}`, `{"v":1,"type":"register","token":"x"}`,
		`{"type":"invite","ref":"r","to":"b","sdp":"v=0","params":{"a":"b"}}`,
		`{"type":"candidate","ref":"r","candidate":{"candidate":"c","sdpMLineIndex":0}}`,
		`{"type":"dtmf","callSid":"C","digits":"1#"}`, `{"type":`, `null`, `{"type":"hangup","callSid":"C","status":486}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := ParseFrame(data)
		if err != nil {
			if !errors.Is(err, ErrFrame) {
				t.Fatalf("error %v does not wrap ErrFrame", err)
			}
			return
		}
		b, err := json.Marshal(fr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseFrame(b); err != nil {
			t.Fatalf("re-parse of accepted frame %s: %v", b, err)
		}
	})
}

func TestChooseAndBridgeable(t *testing.T) {
	chrome := `v=0
o=- 1 2 IN IP4 127.0.0.1
s=-
t=0 0
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
`
	codecs, err := audioCodecs(strings.ReplaceAll(chrome, "\n", "\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := bridgeable(codecs)
	var names []string
	for _, c := range b {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "opus,PCMU,PCMA,telephone-event,telephone-event" {
		t.Fatalf("bridgeable = %s", got)
	}
	tests := []struct {
		name   string
		prefer []string
		want   string
	}{
		{"default G.711 first", nil, "PCMU/0,telephone-event/126"},
		{"pass-through PCMA", []string{"PCMA"}, "PCMA/8,telephone-event/126"},
		{"pass-through opus", []string{"opus"}, "opus/111,telephone-event/110"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var prefer []mediaCodec
			for _, n := range tc.prefer {
				prefer = append(prefer, mediaCodec{Name: n})
			}
			got, err := choose(b, prefer)
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, c := range got {
				s = append(s, c.Name+"/"+itoa(int(c.PT)))
			}
			if strings.Join(s, ",") != tc.want {
				t.Fatalf("choose = %v, want %s", s, tc.want)
			}
		})
	}
}

type mediaCodec = media.RTPCodec

func itoa(n int) string { return strconv.Itoa(n) }
