package udpreg

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/signaling/sip/internal/sipmsg"
)

var renderBufs = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 2048)) }}

// statelessTx sends a response to where RFC 3261 §18.2.2 and RFC 3581 say
// and remembers the final one for retransmissions.
type statelessTx struct {
	u        *Stateless
	w        *regWorker // the worker handling the request: responses go out with its batch
	key      txKey
	req      *sip.Request
	fast     *fastRegister // instead of req, for a request parseFastRegister read
	from     netip.AddrPort
	remember bool
}

func (t *statelessTx) Respond(res *sip.Response) error {
	t.render(res.StatusCode, func(buf *bytes.Buffer) { res.StringWrite(buf) })
	return nil
}

// Reply implements replier: the response is rendered from the request by
// renderResponse, without a sip.Response (its clones of the request's
// headers were a fifth of a registration's allocations).
func (t *statelessTx) Reply(req *sip.Request, code int, reason string, extra []sip.Header) error {
	if req.Method != sip.REGISTER || code < 200 {
		return t.Respond(sipmsg.Response(req, code, reason, t.u.server, extra...))
	}
	t.render(code, func(buf *bytes.Buffer) { renderResponse(buf, req, code, reason, t.u.server, extra) })
	return nil
}

// replyFast is Reply for a request parseFastRegister read.
func (t *statelessTx) replyFast(f *fastRegister, code int, reason string, extra []sip.Header) {
	t.render(code, func(buf *bytes.Buffer) { renderFast(buf, f, code, reason, t.u.server, extra) })
}

// render has write render a response into a pooled buffer, then sends a
// copy at its exact size (kept for Timer J when final) and remembers a final
// one for retransmissions.
func (t *statelessTx) render(code int, write func(*bytes.Buffer)) {
	buf := renderBufs.Get().(*bytes.Buffer)
	buf.Reset()
	write(buf)
	data := bytes.Clone(buf.Bytes())
	renderBufs.Put(buf)

	to := t.from
	if t.fast != nil {
		if _, ok := t.fast.via0.get("rport"); !ok {
			port := t.fast.via0.port
			if port == 0 {
				port = sip.DefaultUdpPort
			}
			to = netip.AddrPortFrom(t.from.Addr(), uint16(port))
		}
	} else if via := t.req.Via(); via != nil {
		if _, ok := via.Params.Get("rport"); !ok {
			// No rport: the response goes to the source IP and the Via port.
			port := via.Port
			if port == 0 {
				port = sip.DefaultUdpPort
			}
			to = netip.AddrPortFrom(t.from.Addr(), uint16(port))
		}
	}
	if t.remember && code >= 200 {
		t.u.mu.Lock()
		if e, ok := t.u.seen[t.key]; ok {
			e.data, e.to = data, to
			t.u.seen[t.key] = e
		}
		t.u.mu.Unlock()
	}
	if t.w != nil && t.u.out != nil {
		t.w.out = append(t.w.out, outDatagram{data, to})
		return
	}
	t.u.send(data, to)
}

// renderResponse writes the final response to a REGISTER that
// sipmsg.Response would build (with sipgo's NewResponseFromRequest) and
// extra appended, header for header: the request's Vias (the first with
// received and rport filled in, RFC 3261 §18.2.1 and RFC 3581), From, To
// with a tag, Call-ID, CSeq, Content-Length, Server, then extra. Only the To
// tag differs, being random. FuzzRenderResponse holds the two together.
// It fills in the request's first Via, as sipmsg.Response does.
func renderResponse(buf *bytes.Buffer, req *sip.Request, code int, reason, server string, extra []sip.Header) {
	if via := req.Via(); via != nil {
		src, port, err := net.SplitHostPort(req.Source())
		if err == nil && src != via.Host && !via.Params.Has("received") {
			via.Params.Add("received", src)
		}
		if v, ok := via.Params.Get("rport"); ok && v == "" {
			via.Params.Add("rport", port)
			via.Params.Add("received", src)
		}
	}
	var num [20]byte
	buf.WriteString(req.SipVersion)
	buf.WriteByte(' ')
	buf.Write(strconv.AppendInt(num[:0], int64(code), 10))
	buf.WriteByte(' ')
	buf.WriteString(reason)
	buf.WriteString("\r\n")
	for _, h := range req.Headers() {
		via, ok := h.(*sip.ViaHeader)
		if !ok {
			continue
		}
		// As sipgo's ViaHeader.StringWrite writes it, which builds a string
		// first.
		buf.WriteString("Via: ")
		buf.WriteString(via.ProtocolName)
		buf.WriteByte('/')
		buf.WriteString(via.ProtocolVersion)
		buf.WriteByte('/')
		buf.WriteString(via.Transport)
		buf.WriteByte(' ')
		if a, err := netip.ParseAddr(via.Host); err == nil && a.Is6() && !a.Is4In6() && a.Zone() == "" {
			buf.WriteByte('[')
			buf.WriteString(via.Host)
			buf.WriteByte(']')
		} else {
			buf.WriteString(via.Host)
		}
		if via.Port > 0 {
			buf.WriteByte(':')
			buf.Write(strconv.AppendInt(num[:0], int64(via.Port), 10))
		}
		if len(via.Params) > 0 {
			buf.WriteByte(';')
			via.Params.ToStringWrite(';', buf)
		}
		buf.WriteString("\r\n")
	}
	if h := req.From(); h != nil {
		h.StringWrite(buf)
		buf.WriteString("\r\n")
	}
	if h := req.To(); h != nil {
		h.StringWrite(buf)
		if !h.Params.Has("tag") {
			buf.WriteString(";tag=")
			buf.WriteString(sip.GenerateTagN(16))
		}
		buf.WriteString("\r\n")
	}
	if h := req.CallID(); h != nil {
		h.StringWrite(buf)
		buf.WriteString("\r\n")
	}
	if h := req.CSeq(); h != nil {
		h.StringWrite(buf)
		buf.WriteString("\r\n")
	}
	writeResponseTail(buf, server, extra)
}

// writeResponseTail ends a rendered response: Content-Length 0, Server,
// extra, and the empty line.
func writeResponseTail(buf *bytes.Buffer, server string, extra []sip.Header) {
	buf.WriteString("Content-Length: 0\r\nServer: ")
	buf.WriteString(server)
	buf.WriteString("\r\n")
	for _, h := range extra {
		h.StringWrite(buf)
		buf.WriteString("\r\n")
	}
	buf.WriteString("\r\n")
}
