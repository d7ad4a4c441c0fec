package sip

import (
	"bytes"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/signaling/sip/internal/reqctx"
	"github.com/parleyhq/parley/signaling/sip/internal/sipmsg"
	"github.com/parleyhq/parley/signaling/sip/registrar"
)

// udpRegistrar answers REGISTER over UDP without sipgo's transaction layer.
// sipgo keeps every UDP server transaction for Timer J (32 s) with its
// goroutine, timers and messages: at thousands of registrations per second
// that was most of the registrar's memory and much of its CPU. A REGISTER
// needs no more than RFC 3261 §17.2.2 asks: absorb retransmissions by
// re-sending the final response. So this path keeps only the response bytes
// per (branch, source) for Timer J, handles each new request once, and
// drops retransmissions that arrive while the first copy is being handled.
//
// The socket's reader (sipgo's read loop, through udpConn) only copies a
// REGISTER datagram and queues it: parsing and handling happen on a pool of
// long-lived workers (no goroutine, and no stack growth, per request), so
// that the one reader keeps draining the socket while every CPU works.
//
// A REGISTER without credentials is not remembered at all: its answer (a
// challenge, or a rejection) changes no state, so a retransmission is simply
// answered again (with a fresh nonce), as RFC 3261 §8.2.7 allows.
type udpRegistrar struct {
	s    *Server
	pc   net.PacketConn
	uc   *net.UDPConn // pc when it is one: sends without allocating an address
	keep time.Duration
	work chan []datagram
	out  chan []outDatagram // responses for the sender (nil: written directly)

	// taken holds what take took from the datagrams the reader has read
	// since it last called flush (the reader's alone).
	taken []datagram

	mu   sync.Mutex
	seen map[txKey]sentResponse // by value: one allocation less per request, nothing for the GC to trace
}

type datagram struct {
	data []byte
	from netip.AddrPort
	buf  *[]byte // data's pooled buffer, returned after process
	// key is the request's transaction, by the branch rawBranch found in
	// data; inflight says take marked it in seen as being handled (it found
	// a branch).
	key      txKey
	inflight bool
}

type txKey struct {
	branch string
	from   netip.AddrPort
}

type sentResponse struct {
	data    []byte // nil while the request is being handled
	to      netip.AddrPort
	expires time.Time
}

// registerQueue is how many batches of REGISTER datagrams (what the reader
// read with one system call: one datagram when the server is not busy, up
// to recvBatch when it is) may wait for a worker. When it is full the
// reader waits, and the socket's receive buffer (Config.UDPReadBuffer)
// holds what arrives meanwhile: an overloaded server does not pile up
// goroutines and requests whose clients have long since retransmitted.
const registerQueue = 128

func newUDPRegistrar(s *Server, pc net.PacketConn) *udpRegistrar {
	u := &udpRegistrar{s: s, pc: pc, keep: sip.Timer_J, seen: map[txKey]sentResponse{}, work: make(chan []datagram, registerQueue)}
	u.uc, _ = pc.(*net.UDPConn)
	if u.uc != nil {
		u.out = make(chan []outDatagram, registerQueue)
		go u.sender(newBatchWriter(u.uc))
	}
	// Handlers mostly compute; a few wait on the database (credential
	// lookups of domains not in the index): more workers than CPUs.
	for range max(8, 4*runtime.GOMAXPROCS(0)) {
		go u.worker()
	}
	return u
}

// regWorker is a worker's own state.
type regWorker struct {
	parser *sip.Parser
	fast   fastRegister
	reply  registrar.ReplyFunc // fast.reply, made once
	// out collects the responses to a batch, sent together when it is done.
	out []outDatagram
}

func newRegWorker() *regWorker {
	w := &regWorker{parser: sip.NewParser()}
	w.reply = w.fast.reply
	return w
}

func (u *udpRegistrar) worker() {
	w := newRegWorker()
	for {
		select {
		case batch := <-u.work:
			for _, d := range batch {
				u.process(w, d)
				if d.buf != nil && cap(*d.buf) <= 64<<10 {
					*d.buf = d.data[:0]
					datagramBufs.Put(d.buf)
				}
			}
			if len(w.out) > 0 {
				u.sendBatch(w.out)
				w.out = make([]outDatagram, 0, len(w.out))
			}
		case <-u.s.closed:
			return
		}
	}
}

var (
	registerPrefix = []byte("REGISTER ")
	branchCookie   = []byte("branch=" + sip.RFC3261BranchMagicCookie)
)

// take keeps a REGISTER datagram read by the reader (data is the reader's
// buffer: it is copied) for the next flush; it returns false when sipgo
// should have the datagram.
func (u *udpRegistrar) take(data []byte, from netip.AddrPort) bool {
	if !bytes.HasPrefix(data, registerPrefix) || !bytes.Contains(data, branchCookie) {
		// Pre-RFC 3261 clients: let the transaction layer match them.
		return false
	}
	d := datagram{from: from}
	if branch := rawBranch(data); branch != nil {
		var absorbed bool
		if d.key, absorbed = u.absorb(branch, from); absorbed {
			return true
		}
		d.inflight = true
	}
	bp := datagramBufs.Get().(*[]byte)
	*bp = append((*bp)[:0], data...)
	d.data, d.buf = *bp, bp
	u.taken = append(u.taken, d)
	return true
}

// flush hands what take took to a worker, as one batch.
func (u *udpRegistrar) flush() {
	if len(u.taken) == 0 {
		return
	}
	batch := u.taken
	u.taken = make([]datagram, 0, cap(batch))
	select {
	case u.work <- batch:
	case <-u.s.closed:
	}
}

// absorb answers a retransmission of a request already answered, and drops
// one whose first copy is still queued or being handled; it reports whether
// the request was one of those. Otherwise it marks the request in seen as
// being handled, and returns its key. It runs on the reader, before any
// parsing: a client that retransmits because the server is slow (SIPp does
// after 500 ms) would otherwise have each copy parsed in full by the
// workers, and an overloaded server, its queue filling with copies of
// requests it has not yet reached, would spend more and more of its time
// on copies.
func (u *udpRegistrar) absorb(branch []byte, from netip.AddrPort) (txKey, bool) {
	key := txKey{string(branch), from}
	if !u.claim(key) {
		return txKey{}, true
	}
	return key, false
}

// forget removes the mark absorb left for a request whose response is not
// kept (a challenge, a request not handled here): a retransmission of it is
// answered anew.
func (u *udpRegistrar) forget(d datagram) {
	if !d.inflight {
		return
	}
	u.mu.Lock()
	if e, ok := u.seen[d.key]; ok && e.data == nil {
		delete(u.seen, d.key)
	}
	u.mu.Unlock()
}

// rawBranch finds the branch parameter of a message's first Via in its raw
// bytes, as sipgo's parser would read it, or returns nil when the header is
// written in any way it does not follow (folded, quoted, spaced, no branch).
func rawBranch(b []byte) []byte {
	i := bytes.IndexByte(b, '\r') // after the start line
	for i >= 0 && i+1 < len(b) && b[i+1] == '\n' {
		b = b[i+2:]
		i = bytes.IndexByte(b, '\r')
		if i <= 0 || i+1 >= len(b) || b[i+1] != '\n' {
			return nil // the end of the headers, or a line sipgo refuses
		}
		line := b[:i]
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return nil
		}
		name := bytes.TrimSpace(line[:colon])
		if !bytes.EqualFold(name, []byte("via")) && !bytes.EqualFold(name, []byte("v")) {
			continue
		}
		if i+2 < len(b) && (b[i+2] == ' ' || b[i+2] == '\t') {
			return nil // folded onto the next line
		}
		value := line[colon+1:]
		if bytes.IndexByte(value, '"') >= 0 {
			return nil
		}
		if c := bytes.IndexByte(value, ','); c >= 0 {
			value = value[:c] // the first of several
		}
		params := plainViaParams(value)
		if params == nil {
			return nil
		}
		// Every parameter plain (a token name, no quotes or spaces), so
		// that sipgo's parameter parser reads them as written.
		var branch []byte
		for len(params) > 0 {
			p := params
			if sc := bytes.IndexByte(params, ';'); sc >= 0 {
				p, params = params[:sc], params[sc+1:]
			} else {
				params = nil
			}
			name, v, _ := bytes.Cut(p, []byte("="))
			if len(name) == 0 || bytes.ContainsAny(p, " \t") {
				return nil
			}
			for _, c := range name {
				if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '+') {
					return nil
				}
			}
			if branch == nil && string(name) == "branch" && len(v) > 0 {
				branch = v
			}
		}
		return branch
	}
	return nil
}

// plainViaParams returns what follows the ';' in a Via value written the
// plain way, "SIP/2.0/UDP host[:port];params" (with the host a name, an IPv4
// address or a bracketed IPv6 address), or nil for any other writing, which
// sipgo's Via parser might read otherwise.
func plainViaParams(v []byte) []byte {
	v = bytes.TrimLeft(v, " \t")
	rest, ok := bytes.CutPrefix(v, []byte("SIP/2.0/"))
	if !ok {
		return nil
	}
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return nil
	}
	for _, c := range rest[:sp] {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return nil
		}
	}
	rest = rest[sp+1:]
	i := 0
	if len(rest) > 0 && rest[0] == '[' {
		end := bytes.IndexByte(rest, ']')
		if end < 0 {
			return nil
		}
		for _, c := range rest[1:end] {
			if !(c == ':' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return nil
			}
		}
		i = end + 1
	} else {
		for i < len(rest) && (rest[i] == '.' || rest[i] == '-' || '0' <= rest[i] && rest[i] <= '9' ||
			'a' <= rest[i] && rest[i] <= 'z' || 'A' <= rest[i] && rest[i] <= 'Z') {
			i++
		}
		if i == 0 {
			return nil
		}
	}
	if i < len(rest) && rest[i] == ':' {
		j := i + 1
		for j < len(rest) && '0' <= rest[j] && rest[j] <= '9' {
			j++
		}
		if j == i+1 || j-i-1 > 5 {
			return nil
		}
		i = j
	}
	if i >= len(rest) || rest[i] != ';' {
		return nil
	}
	return rest[i+1:]
}

// datagramBufs recycles the copies of queued datagrams: process is done with
// one when it returns (sipgo's parser copies what it keeps).
var datagramBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// process parses and handles one REGISTER datagram.
func (u *udpRegistrar) process(w *regWorker, d datagram) {
	remembered := false
	defer func() {
		if !remembered {
			u.forget(d)
		}
	}()
	if reason := sipmsg.RawContentLengthProblem(d.data); reason != "" {
		u.s.rejectDatagram(u.pc, net.UDPAddrFromAddrPort(d.from), d.data, reason)
		return
	}
	lowerHeaderNames(d.data)
	if parseFastRegister(d.data, d.from, &w.fast) {
		remembered = u.processFast(w, d)
		return
	}
	msg, err := w.parser.ParseSIP(d.data)
	if err != nil {
		return // sipgo drops it the same way
	}
	req, ok := msg.(*sip.Request)
	if !ok || req.Via() == nil {
		return
	}
	branch, _ := req.Via().Params.Get("branch")
	key, remember, handle := u.txOf(d, branch, req.GetHeader("authorization") != nil)
	remembered = remember
	if handle {
		u.dispatch(w, req, key, d.from, remember)
	}
}

// txOf decides under which transaction key the response to d is kept for
// retransmissions (remember), given the first Via's branch as the parser
// read it and whether the request carries credentials. It reports false for
// handle when d is a copy of a request already answered or in hand (claim
// has answered or dropped it).
func (u *udpRegistrar) txOf(d datagram, branch string, credentials bool) (key txKey, remember, handle bool) {
	switch {
	case !strings.HasPrefix(branch, sip.RFC3261BranchMagicCookie):
		// The cookie was in another header (take looks at the raw bytes):
		// answer without matching retransmissions.
		return txKey{}, false, true
	case d.inflight && d.key.branch != branch:
		// take looked retransmissions up under another branch than the
		// parser reads (FuzzRawBranch finds no such message): keep nothing.
		return txKey{}, false, true
	case !credentials:
		// Without credentials the answer (a challenge, or a rejection of
		// the request) changes nothing here: each copy of the request is
		// answered anew, as RFC 3261 §8.2.7 lets a stateless UAS do, and
		// nothing is kept for Timer J. That is half of a Digest
		// registration's requests.
		return txKey{}, false, true
	case d.inflight:
		return d.key, true, true
	}
	// take found no branch in the raw bytes: look for copies now (the
	// branch cloned, so that the entry does not keep a whole message).
	key = txKey{strings.Clone(branch), d.from}
	return key, true, u.claim(key)
}

// claim answers a copy of a request already answered, and drops one whose
// first copy is still queued or being handled; otherwise it marks the
// request as in hand. It reports whether the request is new.
func (u *udpRegistrar) claim(key txKey) bool {
	now := u.s.now()
	u.mu.Lock()
	if prev, dup := u.seen[key]; dup && now.Before(prev.expires) {
		out, to := prev.data, prev.to
		u.mu.Unlock()
		if out != nil {
			u.send(out, to)
		}
		return false
	}
	u.seen[key] = sentResponse{expires: now.Add(u.keep)}
	u.mu.Unlock()
	return true
}

// processFast is process for a REGISTER parseFastRegister has read; it
// reports whether the response is kept for retransmissions.
func (u *udpRegistrar) processFast(w *regWorker, d datagram) bool {
	f := &w.fast
	f.tx = statelessTx{u: u, w: w, fast: f, from: d.from}
	tx := &f.tx
	var handle bool
	tx.key, tx.remember, handle = u.txOf(d, f.branch, len(f.reg.Auth.Authorization) > 0)
	if !handle {
		return true
	}
	defer func() {
		if r := recover(); r != nil {
			u.s.log.Error("sip handler panic", "method", "REGISTER", "panic", r)
			w.reply(500, "Server Internal Error")
		}
	}()
	ctx := reqctx.New()
	defer ctx.Cancel()
	u.s.reg.Register(ctx, &f.reg, w.reply)
	return tx.remember
}

// lowerHeaderNames lower-cases, in place, the field names of a message's
// header lines (RFC 3261 §7.3.1: they are case-insensitive). sipgo looks
// headers up by lower-casing the name of every header it passes, and that
// allocates for each name not already in lower case (Authorization,
// Expires, User-Agent…): on a REGISTER that was about one allocation in six.
// Start line, values, continuation lines and body are left as they are.
func lowerHeaderNames(b []byte) {
	// Lines end in CRLF, as sipgo's parser reads them; where they do not,
	// sipgo refuses the message and what is left is not touched.
	for first := true; ; first = false {
		i := bytes.IndexByte(b, '\r')
		if i < 0 || i+1 >= len(b) || b[i+1] != '\n' {
			return
		}
		line := b[:i]
		b = b[i+2:]
		switch {
		case first:
			continue // the start line
		case len(line) == 0:
			return // the end of the headers
		case line[0] == ' ' || line[0] == '\t':
			continue // a continuation line
		}
		for j, c := range line {
			if c == ':' {
				break
			}
			if 'A' <= c && c <= 'Z' {
				line[j] = c + 'a' - 'A'
			}
		}
	}
}

func (u *udpRegistrar) dispatch(w *regWorker, req *sip.Request, key txKey, from netip.AddrPort, remember bool) {
	req.SetSource(from.String())
	req.SetTransport("UDP")
	u.s.dispatch(u.s.handleRegister, req, &statelessTx{u: u, w: w, key: key, req: req, from: from, remember: remember})
}

func (u *udpRegistrar) write(data []byte, to netip.AddrPort) error {
	if u.uc != nil {
		_, err := u.uc.WriteToUDPAddrPort(data, to)
		return err
	}
	_, err := u.pc.WriteTo(data, net.UDPAddrFromAddrPort(to))
	return err
}

// sweep forgets responses older than Timer J.
func (u *udpRegistrar) sweep(now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for k, r := range u.seen {
		if !now.Before(r.expires) {
			delete(u.seen, k)
		}
	}
}

var renderBufs = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 2048)) }}

// statelessTx sends a response to where RFC 3261 §18.2.2 and RFC 3581 say
// and remembers the final one for retransmissions.
type statelessTx struct {
	u        *udpRegistrar
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
		return t.Respond(t.u.s.response(req, code, reason, extra...))
	}
	t.render(code, func(buf *bytes.Buffer) { renderResponse(buf, req, code, reason, t.u.s.cfg.UserAgent, extra) })
	return nil
}

// replyFast is Reply for a request parseFastRegister read.
func (t *statelessTx) replyFast(f *fastRegister, code int, reason string, extra []sip.Header) {
	t.render(code, func(buf *bytes.Buffer) { renderFast(buf, f, code, reason, t.u.s.cfg.UserAgent, extra) })
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
// Server.response would build (with sipgo's NewResponseFromRequest) and
// extra appended, header for header: the request's Vias (the first with
// received and rport filled in, RFC 3261 §18.2.1 and RFC 3581), From, To
// with a tag, Call-ID, CSeq, Content-Length, Server, then extra. Only the To
// tag differs, being random. FuzzRenderResponse holds the two together.
// It fills in the request's first Via, as Server.response does.
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
