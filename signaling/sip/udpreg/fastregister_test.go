package udpreg

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/signaling/sip/internal/sipmsg"
	"github.com/parleyhq/parley/signaling/sip/registrar"
)

// fastTestFrom is the source fast-path tests read their messages from.
var fastTestFrom = netip.MustParseAddrPort("127.0.0.1:5999")

func TestParseFastRegister(t *testing.T) {
	digest := `Digest username="alice", realm="parley", nonce="abc", uri="sip:` + testDomain + `", response="0123", algorithm=MD5, qop=auth, nc=00000001, cnonce="x"`
	tests := []struct {
		name string
		msg  string
		fast bool
	}{
		{"bearer, as the bench sends it", registerMsg("b1", 1, "Bearer abc.def.ghi"), true},
		{"no credentials", registerMsg("b1", 1, ""), true},
		{"digest", registerMsg("b1", 2, digest), true},
		{"user agent, unknown headers, two Vias, Contact params",
			"REGISTER sip:" + testDomain + ":5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKa;received=10.0.0.9\r\n" +
				"Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKb\r\nFrom: <sip:bob@" + testDomain + ">;tag=9\r\nTo: <sip:bob@" + testDomain + ">\r\n" +
				"Call-ID: 77@10.0.0.1\r\nCSeq: 20 REGISTER\r\nContact: <sip:bob@10.0.0.1:5070;transport=udp>;expires=600;q=0.5\r\n" +
				"Contact: <sip:bob@10.0.0.3>\r\nAllow: INVITE, ACK\r\nUser-Agent: Phone/1.0 (ünïcode)\r\nExpires: 300\r\n\r\n", true},
		{"no Contact (a query)", strings.Replace(registerMsg("b1", 1, "Bearer t"), "Contact: <sip:alice@127.0.0.1:5999>\r\n", "", 1), true},
		{"compact header", strings.Replace(registerMsg("b1", 1, ""), "Call-ID:", "i:", 1), false},
		{"display name", strings.Replace(registerMsg("b1", 1, ""), "To: <", `To: "Alice" <`, 1), false},
		{"quoted Contact param", strings.Replace(registerMsg("b1", 1, ""), "5999>\r\n", `5999>;+sip.instance="<urn:uuid:1>"`+"\r\n", 1), false},
		{"wildcard Contact", strings.Replace(registerMsg("b1", 1, ""), "<sip:alice@127.0.0.1:5999>", "*", 1), false},
		{"two Contacts in one header", strings.Replace(registerMsg("b1", 1, ""), "5999>\r\n", "5999>, <sip:alice@10.0.0.1>\r\n", 1), false},
		{"duplicate From", strings.Replace(registerMsg("b1", 1, ""), "To:", "From: <sip:x@y>\r\nTo:", 1), false},
		{"Max-Forwards 0", strings.Replace(registerMsg("b1", 1, ""), "Max-Forwards: 70", "Max-Forwards: 0", 1), false},
		{"CSeq method mismatch", strings.Replace(registerMsg("b1", 1, ""), "1 REGISTER", "1 INVITE", 1), false},
		{"CSeq leading zero", strings.Replace(registerMsg("b1", 1, ""), "CSeq: 1 ", "CSeq: 01 ", 1), false},
		{"CSeq out of range", strings.Replace(registerMsg("b1", 1, ""), "CSeq: 1 ", "CSeq: 2147483648 ", 1), false},
		{"no Call-ID", strings.Replace(registerMsg("b1", 1, ""), "Call-ID: stateless-1\r\n", "", 1), false},
		{"a body", strings.Replace(registerMsg("b1", 1, ""), "Content-Length: 0\r\n\r\n", "Content-Length: 2\r\n\r\nhi", 1), false},
		{"folded header", strings.Replace(registerMsg("b1", 1, ""), "Max-Forwards: 70", "Max-Forwards:\r\n 70", 1), false},
		{"Via over TCP", strings.Replace(registerMsg("b1", 1, ""), "SIP/2.0/UDP", "SIP/2.0/TCP", 1), false},
		{"IPv6 Via", strings.Replace(registerMsg("b1", 1, ""), "127.0.0.1:5999;", "[::1]:5999;", 1), false},
		{"Route", strings.Replace(registerMsg("b1", 1, ""), "Max-Forwards", "Route: <sip:p>\r\nMax-Forwards", 1), false},
		{"Request-URI with a password", strings.Replace(registerMsg("b1", 1, ""), "REGISTER sip:", "REGISTER sip:a:b@", 1), false},
		{"branch without the cookie", strings.Replace(registerMsg("b1", 1, ""), "branch=z9hG4bK", "branch=", 1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.msg)
			lowerHeaderNames(data)
			f := new(fastRegister)
			ok := parseFastRegister(data, fastTestFrom, f)
			if ok != tc.fast {
				t.Fatalf("fast path: %v, want %v", ok, tc.fast)
			}
			if ok {
				checkFastRegister(t, tc.msg, f)
			}
		})
	}
}

// checkFastRegister holds what parseFastRegister read of msg to what the
// registrar reads of sipgo's parse, and renderFast to renderResponse.
func checkFastRegister(t *testing.T, msg string, f *fastRegister) {
	t.Helper()
	data := []byte(msg)
	lowerHeaderNames(data)
	m, err := sip.NewParser().ParseSIP(data)
	if err != nil {
		t.Fatalf("fast path took a message sipgo refuses: %v\n%q", err, msg)
	}
	req, ok := m.(*sip.Request)
	if !ok {
		t.Fatalf("fast path took a response:\n%q", msg)
	}
	req.SetSource(fastTestFrom.String())
	req.SetTransport("UDP")
	if p := sipmsg.Validate(req); p != nil {
		t.Fatalf("fast path took a message validateRequest refuses (%d %s):\n%q", p.Code, p.Reason, msg)
	}
	if branch, _ := req.Via().Params.Get("branch"); branch != f.branch {
		t.Fatalf("branch %q, sipgo reads %q", f.branch, branch)
	}
	want := registrar.RequestOf(req, "udp", "")
	got := f.reg
	if len(want.Auth.Authorization) == 0 {
		want.Auth.Authorization = nil
	}
	if len(got.Auth.Authorization) == 0 {
		got.Auth.Authorization = nil
	}
	if len(want.Contacts) == 0 {
		want.Contacts = nil
	}
	if len(got.Contacts) == 0 {
		got.Contacts = nil
	}
	for i := range got.Contacts {
		if len(got.Contacts[i].Params) == 0 {
			got.Contacts[i].Params = nil
		}
		if len(want.Contacts[i].Params) == 0 {
			want.Contacts[i].Params = nil
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fast path reads\n%+v\nsipgo's parse reads\n%+v\nof %q", got, want, msg)
	}
	// The responses, but for the random To tag.
	extra := []sip.Header{sip.NewHeader("Contact", "<sip:a@127.0.0.1:5999>;expires=60"), sip.NewHeader("Date", "Sun, 22 Nov 2026 13:08:19 GMT")}
	var wbuf, gbuf, gbuf2 bytes.Buffer
	renderResponse(&wbuf, req, 200, "OK", "Parley", extra)
	renderFast(&gbuf, f, 200, "OK", "Parley", extra)
	renderFast(&gbuf2, f, 200, "OK", "Parley", extra)
	w, g, g2 := wbuf.String(), gbuf.String(), gbuf2.String()
	if !f.toTag {
		w, g, g2 = dropToTag(w), dropToTag(g), dropToTag(g2)
	}
	if g != w || g2 != w {
		t.Fatalf("fast response\n%s\nsipgo's path's\n%s\nsecond fast response\n%s", g, w, g2)
	}
}

// dropToTag removes the tag the server added to a response's To.
func dropToTag(res string) string {
	i := strings.Index(res, "\r\nTo: ")
	if i < 0 {
		return res
	}
	end := i + 2 + strings.Index(res[i+2:], "\r\n")
	if j := strings.LastIndex(res[i:end], ";tag="); j >= 0 && end-(i+j) == len(";tag=")+16 {
		return res[:i+j] + res[end:]
	}
	return res
}

// FuzzFastRegister: whatever parseFastRegister takes, sipgo's parser takes
// too, validateRequest passes, the registrar reads the same of both, and
// renderFast writes the response renderResponse writes.
func FuzzFastRegister(f *testing.F) {
	f.Add(registerMsg("b1", 1, "Bearer abc.def.ghi"))
	f.Add(registerMsg("b1", 1, ""))
	f.Add(registerMsg("b9", 7, `Digest username="alice", realm="parley", nonce="abc", uri="sip:x", response="0123"`))
	f.Add("REGISTER sips:u@h.example:5061;lr SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKa;received=10.0.0.9;rport=7\r\n" +
		"Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKb\r\nFrom: <sip:bob@h.example>;tag=9\r\nTo: <sip:bob@h.example>;tag=1\r\n" +
		"Call-ID: 77@10.0.0.1\r\nCSeq: 20 REGISTER\r\nContact: <sip:bob@10.0.0.1:5070;transport=udp>;expires=600;q=0.5;reg-id=1\r\n" +
		"Contact: <sip:bob@10.0.0.3>\r\nAllow: INVITE, ACK\r\nUser-Agent:  Phone/1.0 \r\nExpires: 300\r\nMax-Forwards: 1\r\n\r\n")
	f.Fuzz(func(t *testing.T, msg string) {
		data := []byte(msg)
		lowerHeaderNames(data)
		fr := new(fastRegister)
		if !parseFastRegister(data, fastTestFrom, fr) {
			return
		}
		checkFastRegister(t, msg, fr)
	})
}
