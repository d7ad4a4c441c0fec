package sipmsg

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

const testDomain = "pbx.test"

func rawRequest(method, extra string, body string) string {
	return fmt.Sprintf("%s sip:%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-%d\r\n"+
		"From: <sip:alice@%s>;tag=1\r\n"+
		"To: <sip:alice@%s>\r\n"+
		"%s"+
		"\r\n%s", method, testDomain, time.Now().UnixNano(), testDomain, testDomain, extra, body)
}

func TestValidateRequestTable(t *testing.T) {
	base := "OPTIONS sip:pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@pbx.test>;tag=1\r\nTo: <sip:a@pbx.test>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n"
	tests := []struct {
		name, msg string
		code      int
	}{
		{"ok", base + "Content-Length: 0\r\n\r\n", 0},
		{"sips ok", strings.Replace(base, "sip:pbx.test SIP", "sips:pbx.test SIP", 1) + "\r\n", 0},
		{"tel scheme", strings.Replace(base, "sip:pbx.test SIP", "tel:+15551234 SIP", 1) + "\r\n", 416},
		{"duplicate Max-Forwards", base + "Max-Forwards: 70\r\nMax-Forwards: 69\r\n\r\n", 400},
		{"duplicate Event (compact)", base + "Event: presence\r\no: presence\r\n\r\n", 400},
		{"Content-Length smaller than body", base + "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhello", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := sip.ParseMessage([]byte(tt.msg))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			p := Validate(m.(*sip.Request))
			switch {
			case tt.code == 0 && p != nil:
				t.Fatalf("rejected: %+v", p)
			case tt.code != 0 && (p == nil || p.Code != tt.code):
				t.Fatalf("got %+v, want %d", p, tt.code)
			}
		})
	}
}

func TestRawContentLengthProblem(t *testing.T) {
	tests := map[string]string{
		"REGISTER sip:a SIP/2.0\r\nContent-Length: 3\r\n\r\nabc":                   "",
		"REGISTER sip:a SIP/2.0\r\nl: 4\r\n\r\nabc":                                "Content-Length larger than body",
		"REGISTER sip:a SIP/2.0\r\nContent-Length: x\r\n\r\n":                      "Invalid Content-Length",
		"REGISTER sip:a SIP/2.0\r\nContent-Length: 0\r\nl: 1\r\n\r\n":              "Duplicate Content-Length header",
		"REGISTER sip:a SIP/2.0\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n": "",
		"no header end": "",
	}
	for in, want := range tests {
		if got := RawContentLengthProblem([]byte(in)); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func FuzzValidateRequest(f *testing.F) {
	f.Add([]byte(rawRequest("OPTIONS", "Call-ID: v1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n", "")))
	f.Add([]byte(rawRequest("REGISTER", "Call-ID: v1\r\nCSeq: 1 REGISTER\r\nContact: *\r\nExpires: 0\r\n", "")))
	f.Add([]byte("INVITE sip:a SIP/2.0\r\nl: 9\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = RawContentLengthProblem(b)
		m, err := sip.ParseMessage(b)
		if err != nil {
			return
		}
		req, ok := m.(*sip.Request)
		if !ok {
			return
		}
		p := Validate(req)
		if p == nil {
			// Whatever passes has what the handlers rely on.
			if req.Via() == nil || req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
				t.Fatalf("accepted a request without mandatory headers:\n%s", b)
			}
			if req.CSeq().MethodName != req.Method {
				t.Fatal("accepted a CSeq method mismatch")
			}
			return
		}
		if p.Code < 400 || p.Code > 599 || p.Reason == "" {
			t.Fatalf("bad problem %+v", p)
		}
	})
}

// rawContentLengthProblemRef is the first, allocating version of
// rawContentLengthProblem: the fuzz test below keeps the fast one equal to it.
func rawContentLengthProblemRef(b []byte) string {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return ""
	}
	head, body := b[:end], b[end+4:]
	declared := -1
	lines := bytes.Split(head, []byte("\r\n"))
	for _, line := range lines[1:] {
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := strings.ToLower(string(bytes.TrimSpace(line[:colon])))
		if name != "content-length" && name != "l" {
			continue
		}
		v, err := strconv.Atoi(string(bytes.TrimSpace(line[colon+1:])))
		if err != nil || v < 0 {
			return "Invalid Content-Length"
		}
		if declared >= 0 && declared != v {
			return "Duplicate Content-Length header"
		}
		declared = v
	}
	if declared > len(body) {
		return "Content-Length larger than body"
	}
	return ""
}

func FuzzRawContentLengthProblem(f *testing.F) {
	for _, s := range []string{"REGISTER sip:a SIP/2.0\r\nContent-Length: 3\r\n\r\nabc", "X\r\nl: -0\r\n\r\n",
		"X\r\nContent-Length: +2\r\nL:2\r\n\r\nab", "X\r\n\r\n", "X\r\nContent-Length: 99999999999999999999\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := RawContentLengthProblem(b), rawContentLengthProblemRef(b); got != want {
			t.Fatalf("%q: got %q, reference %q", b, got, want)
		}
	})
}
