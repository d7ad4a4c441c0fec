package sipmsg

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Problem is why a request is refused before any handler sees it.
type Problem struct {
	Code   int
	Reason string
}

// singleHeaders may appear once at most (RFC 3261 §7.3.1, §20).
var singleHeaderNames = [...]string{"Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length", "Content-Type", "Expires", "Min-Expires", "Event"}

// compact forms of singleHeaders that sipgo keeps under their short names.
var compactAliases = map[string]string{"Event": "o"}

// Validate applies the checks RFC 3261 asks of a UAS that sipgo's
// parser leaves to the application (RFC 4475 invalid messages). It returns
// nil for an acceptable request.
func Validate(req *sip.Request) *Problem {
	if req.Via() == nil {
		return &Problem{400, "Missing Via"}
	}
	if req.From() == nil {
		return &Problem{400, "Missing From"}
	}
	if req.To() == nil {
		return &Problem{400, "Missing To"}
	}
	if req.CallID() == nil || strings.TrimSpace(string(*req.CallID())) == "" {
		return &Problem{400, "Missing Call-ID"}
	}
	cseq := req.CSeq()
	if cseq == nil {
		return &Problem{400, "Missing CSeq"}
	}
	// One pass over the headers (GetHeaders per name allocated and
	// lower-cased each time); reported in singleHeaders order as before.
	var counts [len(singleHeaderNames)]uint8
	for _, h := range req.Headers() {
		name := h.Name()
		for i, sh := range singleHeaderNames {
			if asciiEqualFold(name, sh) || compactAliases[sh] != "" && asciiEqualFold(name, compactAliases[sh]) {
				if counts[i] < 2 {
					counts[i]++
				}
				break
			}
		}
	}
	for i, n := range counts {
		if n > 1 {
			return &Problem{400, "Duplicate " + singleHeaderNames[i] + " header"}
		}
	}
	if cseq.MethodName != req.Method {
		return &Problem{400, "CSeq method does not match request method"}
	}
	if cseq.SeqNo >= 1<<31 {
		return &Problem{400, "CSeq sequence number out of range"}
	}
	if via := req.Via(); via.ProtocolName != "SIP" || via.ProtocolVersion != "2.0" {
		return &Problem{400, "Unsupported Via protocol"}
	}
	if req.SipVersion != "SIP/2.0" {
		return &Problem{505, "Version Not Supported"}
	}
	switch strings.ToLower(req.Recipient.Scheme) {
	case "sip", "sips":
	default:
		return &Problem{416, "Unsupported URI Scheme"}
	}
	if req.Recipient.Host == "" {
		return &Problem{400, "Request-URI has no host"}
	}
	if cl := req.ContentLength(); cl != nil && int(*cl) != len(req.Body()) {
		return &Problem{400, "Content-Length mismatch"}
	}
	if len(req.Body()) > 0 && req.ContentType() == nil {
		return &Problem{400, "Body without Content-Type"}
	}
	if h := req.GetHeader("expires"); h != nil {
		if _, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32); err != nil {
			return &Problem{400, "Invalid Expires"}
		}
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		return &Problem{483, "Too Many Hops"}
	}
	return nil
}

// RawContentLengthProblem inspects a datagram before sipgo parses it: sipgo
// silently drops a UDP request whose Content-Length exceeds its body, which
// RFC 3261 §18.3 answers with 400. It returns "" when the datagram is fine
// or not a request it can judge.
func RawContentLengthProblem(b []byte) string {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return ""
	}
	head, body := b[:end], b[end+4:]
	declared := -1
	// Header lines after the start line, without allocating: this runs for
	// every datagram.
	first := true
	for len(head) > 0 {
		line := head
		if i := bytes.Index(head, []byte("\r\n")); i >= 0 {
			line, head = head[:i], head[i+2:]
		} else {
			head = nil
		}
		if first {
			first = false
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := bytes.TrimSpace(line[:colon])
		if !bytes.EqualFold(name, []byte("content-length")) && !bytes.EqualFold(name, []byte("l")) {
			continue
		}
		v, ok := atoiBytes(bytes.TrimSpace(line[colon+1:]))
		if !ok {
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

// asciiEqualFold compares header names case-insensitively in ASCII only,
// as sipgo's GetHeaders does.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// atoiBytes parses a non-negative decimal as strconv.Atoi would, without
// converting plain digits to a string.
func atoiBytes(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return atoiSlow(b)
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return atoiSlow(b) // signs and the like: strconv's rules
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func atoiSlow(b []byte) (int, bool) {
	v, err := strconv.Atoi(string(b))
	return v, err == nil && v >= 0
}
