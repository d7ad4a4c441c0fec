package udpreg

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/signaling/sip/registrar"
	"github.com/parleyhq/parley/signaling/sip/sipauth"
)

// fastRegister is a REGISTER read straight from a datagram's bytes by
// parseFastRegister, for the stateless UDP path: sipgo's parser, which
// builds a value for every header and parameter, was the largest single
// cost of a registration and most of its garbage.
//
// parseFastRegister reads only requests written in the plain way nearly
// every client writes them, for which it can tell that sipgo would read the
// same thing and write each header back byte for byte as it was sent. It
// refuses everything else (compact or folded headers, display names, quoted
// or escaped parts, bodies, more than a few Vias or Contacts, any header
// sipgo parses that a REGISTER does not need, anything validateRequest
// would reject), and those requests take sipgo's path as before.
// FuzzFastRegister holds the two paths to the same reading and the same
// responses.
//
// A worker reads every request into the same fastRegister: nothing may keep
// a pointer into it once the request is answered (its strings may be kept).
// Its reply answers the request it holds.
type fastRegister struct {
	reg  registrar.Request
	tx   statelessTx
	from netip.AddrPort

	vias    [maxFastVias]string // the Via values, as sent
	nvias   int
	via0    fastVia
	fromHdr string // the From value, as sent
	toHdr   string // the To value, as sent
	toTag   bool
	cseq    string // the CSeq value, as sent
	branch  string // the first Via's branch

	contactBuf [maxFastContacts]registrar.Contact
	paramBuf   [maxFastContacts * maxFastParams]sip.HeaderKV
	authBuf    [2]string
}

const (
	maxFastVias     = 4
	maxFastContacts = 2
	maxFastParams   = 8
)

// reply answers the request f holds (a registrar.ReplyFunc; the worker
// makes the method value once, not per request).
func (f *fastRegister) reply(code int, reason string, extra ...sip.Header) {
	f.tx.replyFast(f, code, reason, extra)
}

// fastVia is the first Via: where a response goes, and what it fills in.
type fastVia struct {
	host   string
	port   int
	params [maxFastParams]sip.HeaderKV
	n      int
}

func (v *fastVia) get(name string) (string, bool) {
	for _, kv := range v.params[:v.n] {
		if kv.K == name {
			return kv.V, true
		}
	}
	return "", false
}

// set is sipgo's HeaderParams.Add: replace the first such parameter, or
// append one.
func (v *fastVia) set(name, value string) {
	for i := range v.params[:v.n] {
		if v.params[i].K == name {
			v.params[i].V = value
			return
		}
	}
	if v.n < len(v.params) {
		v.params[v.n] = sip.HeaderKV{K: name, V: value}
		v.n++
	}
}

// fastRefused are the header names parseFastRegister leaves to sipgo's
// path: those sipgo's parser reads into its own types (and may refuse)
// beside the ones parseFastRegister reads itself, compact forms, and the
// ones validateRequest allows only once.
var fastRefused = map[string]bool{
	"c": true, "content-type": true, "f": true, "t": true, "m": true, "i": true, "v": true, "l": true,
	"route": true, "record-route": true, "refer-to": true, "referred-by": true,
	"min-expires": true, "event": true, "o": true,
}

// parseFastRegister reads data (a REGISTER whose header names
// lowerHeaderNames has lower-cased) from from into f, and reports false when
// it is not written in the plain way described at fastRegister.
func parseFastRegister(data []byte, from netip.AddrPort, f *fastRegister) bool {
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 || end+4 != len(data) {
		return false // no end of headers, or a body
	}
	head := data[:end+2]
	if n := bytes.Count(head, []byte("\r\n")); bytes.Count(head, []byte("\r")) != n || bytes.Count(head, []byte("\n")) != n {
		return false // a CR or LF that does not end a line, which sipgo refuses
	}
	// One string for the whole message: every field is cut from it. What a
	// binding keeps is cloned, so that a binding does not keep the message.
	msg := string(head)
	line, rest, _ := strings.Cut(msg, "\r\n")
	uri, ok := strings.CutPrefix(line, "REGISTER ")
	// (The Request-URI's characters are checked by plainURI.)
	if !ok {
		return false
	}
	uri, ok = strings.CutSuffix(uri, " SIP/2.0")
	if !ok {
		return false
	}
	ru, ok := plainURI(uri)
	if !ok {
		return false
	}
	*f = fastRegister{}
	r := &f.reg
	r.Auth = sipauth.Request{Method: "REGISTER", Recipient: uri, RecipientHost: ru.host, RecipientPort: ru.port}
	r.Expires = -1
	r.Transport = "udp"
	var seen struct{ from, to, callID, cseq, maxForwards, contentLength, expires, userAgent bool }
	once := func(b *bool) bool {
		if *b {
			return false
		}
		*b = true
		return true
	}
	nparams := 0
	for rest != "" {
		line, rest, _ = strings.Cut(rest, "\r\n")
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return false
		}
		name := line[:colon]
		for i := 0; i < len(name); i++ {
			if c := name[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false // folded, spaced or odd: sipgo's business
			}
		}
		value := strings.TrimSpace(line[colon+1:])
		if !plainText(value) && name != "user-agent" {
			return false
		}
		switch name {
		case "via":
			if f.nvias == maxFastVias {
				return false
			}
			if f.nvias == 0 {
				if !plainVia(value, &f.via0) {
					return false
				}
			} else if !plainVia(value, &fastVia{}) {
				return false
			}
			f.vias[f.nvias] = value
			f.nvias++
		case "from":
			if !once(&seen.from) {
				return false
			}
			if _, _, ok := plainNameAddr(value, nil); !ok {
				return false
			}
			f.fromHdr = value
		case "to":
			if !once(&seen.to) {
				return false
			}
			var params [maxFastParams]sip.HeaderKV
			u, n, ok := plainNameAddr(value, params[:])
			if !ok {
				return false
			}
			for _, kv := range params[:n] {
				f.toTag = f.toTag || kv.K == "tag"
			}
			f.toHdr, r.ToUser, r.ToHost = value, u.user, u.host
		case "call-id":
			if !once(&seen.callID) || value == "" || strings.ContainsAny(value, " \t,") {
				return false
			}
			r.CallID = strings.Clone(value)
		case "cseq":
			num, method, ok := strings.Cut(value, " ")
			if !once(&seen.cseq) || !ok || method != "REGISTER" {
				return false
			}
			n, ok := plainUint(num, 1<<31-1)
			if !ok {
				return false
			}
			f.cseq, r.CSeq = value, uint32(n)
		case "max-forwards":
			if n, ok := plainUint(value, 1<<31); !once(&seen.maxForwards) || !ok || n == 0 {
				return false
			}
		case "content-length":
			if !once(&seen.contentLength) || value != "0" {
				return false
			}
		case "expires":
			n, ok := plainUint(value, 1<<32-1)
			if !once(&seen.expires) || !ok {
				return false
			}
			r.Expires = int(min(n, 1<<31))
		case "contact":
			if len(r.Contacts) == maxFastContacts {
				return false
			}
			params := f.paramBuf[nparams : nparams+maxFastParams]
			u, n, ok := plainNameAddr(value, params)
			if !ok {
				return false
			}
			f.contactBuf[len(r.Contacts)] = registrar.Contact{URI: strings.Clone(u.text), Params: params[:n:n]}
			r.Contacts = f.contactBuf[:len(r.Contacts)+1]
			nparams += maxFastParams
		case "authorization":
			if len(r.Auth.Authorization) == len(f.authBuf) {
				return false
			}
			f.authBuf[len(r.Auth.Authorization)] = value
			r.Auth.Authorization = f.authBuf[:len(r.Auth.Authorization)+1]
		case "user-agent":
			if !once(&seen.userAgent) {
				return false
			}
			r.UserAgent = strings.Clone(value)
		default:
			if fastRefused[name] {
				return false
			}
		}
	}
	if f.nvias == 0 || !seen.from || !seen.to || !seen.callID || !seen.cseq {
		return false
	}
	f.branch, _ = f.via0.get("branch")
	if !strings.HasPrefix(f.branch, sip.RFC3261BranchMagicCookie) {
		return false
	}
	f.from = from
	r.Auth.Source = from.String()
	return true
}

// plainText reports whether v holds only printable ASCII and spaces.
func plainText(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

// plainUint reads decimal digits without a leading zero (as sipgo would
// write the number back), at most max.
func plainUint(s string, max uint64) (uint64, bool) {
	if s == "" || len(s) > 10 || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + uint64(s[i]-'0')
	}
	return n, n <= max
}

func plainTokenChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '+' || c == '!' || c == '~' || c == '*'
}

func isHostChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.'
}

// plainURI is a SIP URI written sip:[user@]host[:port][;param[=value]]...
// with plain characters only.
type plainURIParts struct {
	text       string
	user, host string
	port       int
}

func plainURI(s string) (plainURIParts, bool) {
	u := plainURIParts{text: s}
	rest, ok := strings.CutPrefix(s, "sip:")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "sips:"); !ok {
			return u, false
		}
	}
	if at := strings.IndexByte(rest, '@'); at >= 0 {
		u.user, rest = rest[:at], rest[at+1:]
		if u.user == "" {
			return u, false
		}
		for i := 0; i < len(u.user); i++ {
			if !plainTokenChar(u.user[i]) {
				return u, false
			}
		}
	}
	u.host, u.port, rest, ok = plainHostPort(rest)
	if !ok {
		return u, false
	}
	if _, ok := plainParams(rest, nil); !ok {
		return u, false
	}
	return u, true
}

// plainHostPort reads host[:port] (a name or an IPv4 address; port 0 when
// there is none) from the start of s.
func plainHostPort(s string) (host string, port int, rest string, ok bool) {
	i := 0
	for i < len(s) && isHostChar(s[i]) {
		i++
	}
	if i == 0 {
		return "", 0, "", false
	}
	host, rest = s[:i], s[i:]
	if p, has := strings.CutPrefix(rest, ":"); has {
		j := 0
		for j < len(p) && '0' <= p[j] && p[j] <= '9' {
			j++
		}
		n, ok := plainUint(p[:j], 65535)
		if !ok || n == 0 {
			return "", 0, "", false
		}
		port, rest = int(n), p[j:]
	}
	return host, port, rest, true
}

// plainParam reads name[=value] up to the next ';' (or the end): both
// tokens, the value not empty.
func plainParam(s string) (name, value, rest string, ok bool) {
	i := 0
	for i < len(s) && plainTokenChar(s[i]) {
		i++
	}
	if i == 0 {
		return "", "", "", false
	}
	name, s = s[:i], s[i:]
	if v, has := strings.CutPrefix(s, "="); has {
		j := 0
		for j < len(v) && plainTokenChar(v[j]) {
			j++
		}
		if j == 0 {
			return "", "", "", false
		}
		value, s = v[:j], v[j:]
	}
	if s != "" && s[0] != ';' {
		return "", "", "", false
	}
	return name, value, s, true
}

// plainParams reads ;name[=value]... into out (nil: only checks), and
// returns how many there were: at most maxFastParams, each name once (sipgo
// keeps the last value of a repeated name, in the first one's place).
func plainParams(s string, out []sip.HeaderKV) (int, bool) {
	var local [maxFastParams]sip.HeaderKV
	if out == nil {
		out = local[:]
	}
	n := 0
	for s != "" {
		if s[0] != ';' {
			return 0, false
		}
		name, value, rest, ok := plainParam(s[1:])
		if !ok || n == len(out) {
			return 0, false
		}
		for _, kv := range out[:n] {
			if kv.K == name {
				return 0, false
			}
		}
		out[n] = sip.HeaderKV{K: name, V: value}
		n++
		s = rest
	}
	return n, true
}

// plainNameAddr reads <uri>;params (no display name), the params into out.
func plainNameAddr(s string, out []sip.HeaderKV) (plainURIParts, int, bool) {
	rest, ok := strings.CutPrefix(s, "<")
	if !ok {
		return plainURIParts{}, 0, false
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return plainURIParts{}, 0, false
	}
	u, ok := plainURI(rest[:end])
	if !ok {
		return u, 0, false
	}
	n, ok := plainParams(rest[end+1:], out)
	return u, n, ok
}

// plainVia reads SIP/2.0/UDP host[:port];params into v.
func plainVia(s string, v *fastVia) bool {
	rest, ok := strings.CutPrefix(s, "SIP/2.0/UDP ")
	if !ok {
		return false
	}
	v.host, v.port, rest, ok = plainHostPort(rest)
	if !ok {
		return false
	}
	if rest == "" {
		return false // no branch
	}
	n, ok := plainParams(rest, v.params[:])
	v.n = n
	return ok
}

// renderFast writes the response to f that renderResponse writes to the
// same request parsed by sipgo.
func renderFast(buf *bytes.Buffer, f *fastRegister, code int, reason, server string, extra []sip.Header) {
	var num [20]byte
	buf.WriteString("SIP/2.0 ")
	buf.Write(strconv.AppendInt(num[:0], int64(code), 10))
	buf.WriteByte(' ')
	buf.WriteString(reason)
	buf.WriteString("\r\n")
	// The first Via with received and rport filled in, as renderResponse
	// does: on a copy, so that a second response fills in the same.
	via := f.via0
	src, port := f.from.Addr().String(), strconv.Itoa(int(f.from.Port()))
	if _, has := via.get("received"); src != via.host && !has {
		via.set("received", src)
	}
	if v, ok := via.get("rport"); ok && v == "" {
		via.set("rport", port)
		via.set("received", src)
	}
	buf.WriteString("Via: SIP/2.0/UDP ")
	buf.WriteString(via.host)
	if via.port > 0 {
		buf.WriteByte(':')
		buf.Write(strconv.AppendInt(num[:0], int64(via.port), 10))
	}
	for _, kv := range via.params[:via.n] {
		buf.WriteByte(';')
		buf.WriteString(kv.K)
		if kv.V != "" {
			buf.WriteByte('=')
			buf.WriteString(kv.V)
		}
	}
	buf.WriteString("\r\n")
	for _, v := range f.vias[1:f.nvias] {
		buf.WriteString("Via: ")
		buf.WriteString(v)
		buf.WriteString("\r\n")
	}
	buf.WriteString("From: ")
	buf.WriteString(f.fromHdr)
	buf.WriteString("\r\nTo: ")
	buf.WriteString(f.toHdr)
	if !f.toTag {
		buf.WriteString(";tag=")
		buf.WriteString(sip.GenerateTagN(16))
	}
	buf.WriteString("\r\nCall-ID: ")
	buf.WriteString(f.reg.CallID)
	buf.WriteString("\r\nCSeq: ")
	buf.WriteString(f.cseq)
	buf.WriteString("\r\n")
	writeResponseTail(buf, server, extra)
}
