package sipmsg

import (
	"net"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Response builds the response to req: received on the first Via when the
// request came from another address than the Via names (RFC 3261
// §18.2.1), a To tag on everything above 100, a Server header naming
// server, then extra. It fills in req's first Via.
func Response(req *sip.Request, code int, reason, server string, extra ...sip.Header) *sip.Response {
	if via := req.Via(); via != nil {
		src, _, err := net.SplitHostPort(req.Source())
		if err == nil && src != via.Host && !via.Params.Has("received") {
			via.Params.Add("received", src)
		}
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if to := res.To(); to != nil && code > 100 {
		if _, ok := to.Params.Get("tag"); !ok {
			to.Params.Add("tag", sip.GenerateTagN(16))
		}
	}
	res.AppendHeader(sip.NewHeader("Server", server))
	for _, h := range extra {
		res.AppendHeader(h)
	}
	return res
}

// Quote renders s as a quoted-string (RFC 3261 §25.1).
func Quote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
