package sip

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// problem is why a request is refused before any handler sees it.
type problem struct {
	Code   int
	Reason string
}

// singleHeaders may appear once at most (RFC 3261 §7.3.1, §20).
var singleHeaders = []string{"Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length", "Content-Type", "Expires", "Min-Expires", "Event"}

// compact forms of singleHeaders that sipgo keeps under their short names.
var compactAliases = map[string]string{"Event": "o"}

// validateRequest applies the checks RFC 3261 asks of a UAS that sipgo's
// parser leaves to the application (RFC 4475 invalid messages). It returns
// nil for an acceptable request.
func validateRequest(req *sip.Request) *problem {
	if req.Via() == nil {
		return &problem{400, "Missing Via"}
	}
	if req.From() == nil {
		return &problem{400, "Missing From"}
	}
	if req.To() == nil {
		return &problem{400, "Missing To"}
	}
	if req.CallID() == nil || strings.TrimSpace(string(*req.CallID())) == "" {
		return &problem{400, "Missing Call-ID"}
	}
	cseq := req.CSeq()
	if cseq == nil {
		return &problem{400, "Missing CSeq"}
	}
	for _, name := range singleHeaders {
		n := len(req.GetHeaders(name))
		if alias, ok := compactAliases[name]; ok {
			n += len(req.GetHeaders(alias))
		}
		if n > 1 {
			return &problem{400, "Duplicate " + name + " header"}
		}
	}
	if cseq.MethodName != req.Method {
		return &problem{400, "CSeq method does not match request method"}
	}
	if cseq.SeqNo >= 1<<31 {
		return &problem{400, "CSeq sequence number out of range"}
	}
	if via := req.Via(); via.ProtocolName != "SIP" || via.ProtocolVersion != "2.0" {
		return &problem{400, "Unsupported Via protocol"}
	}
	if req.SipVersion != "SIP/2.0" {
		return &problem{505, "Version Not Supported"}
	}
	switch strings.ToLower(req.Recipient.Scheme) {
	case "sip", "sips":
	default:
		return &problem{416, "Unsupported URI Scheme"}
	}
	if req.Recipient.Host == "" {
		return &problem{400, "Request-URI has no host"}
	}
	if cl := req.ContentLength(); cl != nil && int(*cl) != len(req.Body()) {
		return &problem{400, "Content-Length mismatch"}
	}
	if len(req.Body()) > 0 && req.ContentType() == nil {
		return &problem{400, "Body without Content-Type"}
	}
	if h := req.GetHeader("Expires"); h != nil {
		if _, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32); err != nil {
			return &problem{400, "Invalid Expires"}
		}
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		return &problem{483, "Too Many Hops"}
	}
	return nil
}

// rawContentLengthProblem inspects a datagram before sipgo parses it: sipgo
// silently drops a UDP request whose Content-Length exceeds its body, which
// RFC 3261 §18.3 answers with 400. It returns "" when the datagram is fine
// or not a request it can judge.
func rawContentLengthProblem(b []byte) string {
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
