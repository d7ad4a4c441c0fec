package sip

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func rawRequest(method, extra string, body string) string {
	return fmt.Sprintf("%s sip:%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-%d\r\n"+
		"From: <sip:alice@%s>;tag=1\r\n"+
		"To: <sip:alice@%s>\r\n"+
		"%s"+
		"\r\n%s", method, testDomain, time.Now().UnixNano(), testDomain, testDomain, extra, body)
}

func statusLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	return strings.TrimSpace(line)
}

func TestValidationOverUDP(t *testing.T) {
	e := newEnv(t, "", nil)
	conn, err := net.Dial("udp", e.addr("udp"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	std := "Call-ID: v1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
	tests := []struct {
		name, msg, want string
	}{
		{"valid", rawRequest("OPTIONS", std+"Content-Length: 0\r\n", ""), "SIP/2.0 200 OK"},
		{"missing Call-ID", rawRequest("OPTIONS", "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n", ""), "SIP/2.0 400 Missing Call-ID"},
		{"duplicate Call-ID", rawRequest("OPTIONS", std+"Call-ID: v2\r\nContent-Length: 0\r\n", ""), "SIP/2.0 400 Duplicate Call-ID header"},
		{"duplicate To", rawRequest("OPTIONS", std+"To: <sip:bob@pbx.test>\r\nContent-Length: 0\r\n", ""), "SIP/2.0 400 Duplicate To header"},
		{"CSeq method mismatch", rawRequest("OPTIONS", "Call-ID: v1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n", ""), "SIP/2.0 400 CSeq method does not match request method"},
		{"Max-Forwards 0", rawRequest("OPTIONS", "Call-ID: v1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 0\r\nContent-Length: 0\r\n", ""), "SIP/2.0 483 Too Many Hops"},
		{"Content-Length too large", rawRequest("OPTIONS", std+"Content-Type: text/plain\r\nContent-Length: 50\r\n", "short"), "SIP/2.0 400 Content-Length larger than body"},
		{"body without Content-Type", rawRequest("OPTIONS", std+"Content-Length: 5\r\n", "hello"), "SIP/2.0 400 Body without Content-Type"},
		{"bad Expires", rawRequest("OPTIONS", std+"Expires: soon\r\nContent-Length: 0\r\n", ""), "SIP/2.0 400 Invalid Expires"},
		{"unsupported method", rawRequest("PUBLISH", "Call-ID: v1\r\nCSeq: 1 PUBLISH\r\nContent-Length: 0\r\n", ""), "SIP/2.0 405 Method Not Allowed"},
		{"malformed Authorization", rawRequest("REGISTER", "Call-ID: v1\r\nCSeq: 1 REGISTER\r\nAuthorization: Digest username=\"alice\r\nContent-Length: 0\r\n", ""), "SIP/2.0 400 Malformed Authorization"},
	}
	r := bufio.NewReader(conn)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := conn.Write([]byte(tt.msg)); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 4096)
			n, err := r.Read(buf)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			got, _, _ := strings.Cut(string(buf[:n]), "\r\n")
			if got != tt.want {
				t.Fatalf("got %q, want %q\n%s", got, tt.want, buf[:n])
			}
		})
	}
	// Garbage is dropped, and the server keeps serving.
	conn.Write([]byte("\x00\x01garbage\r\n\r\n"))
	conn.Write([]byte(rawRequest("OPTIONS", std+"Content-Length: 0\r\n", "")))
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 4096)
	n, err := r.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
		t.Fatalf("server stopped answering after garbage: %v %q", err, buf[:n])
	}
}

func TestValidationAndKeepAliveOverTCP(t *testing.T) {
	e := newEnv(t, "", nil)
	conn, err := net.Dial("tcp", e.addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	// RFC 5626 §4.4.1 CRLF keep-alive: a double CRLF ping gets a single CRLF pong.
	if _, err := conn.Write([]byte("\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	pong := make([]byte, 2)
	if _, err := r.Read(pong); err != nil || string(pong) != "\r\n" {
		t.Fatalf("pong %q %v", pong, err)
	}
	msg := strings.Replace(rawRequest("OPTIONS", "Call-ID: t1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 0\r\nContent-Length: 0\r\n", ""), "UDP", "TCP", 1)
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if got := statusLine(t, r); got != "SIP/2.0 483 Too Many Hops" {
		t.Fatalf("got %q", got)
	}
}
