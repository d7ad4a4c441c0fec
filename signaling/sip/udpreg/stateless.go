package udpreg

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/signaling/sip/internal/reqctx"
	"github.com/parleyhq/parley/signaling/sip/internal/sipmsg"
	"github.com/parleyhq/parley/signaling/sip/registrar"
)

// Stateless answers REGISTER over UDP without sipgo's transaction layer.
// sipgo keeps every UDP server transaction for Timer J (32 s) with its
// goroutine, timers and messages: at thousands of registrations per second
// that was most of the registrar's memory and much of its CPU. A REGISTER
// needs no more than RFC 3261 §17.2.2 asks: absorb retransmissions by
// re-sending the final response. So this path keeps only the response bytes
// per (branch, source) for Timer J, handles each new request once, and
// drops retransmissions that arrive while the first copy is being handled.
//
// The socket's reader (sipgo's read loop, through Conn) only copies a
// REGISTER datagram and queues it: parsing and handling happen on a pool of
// long-lived workers (no goroutine, and no stack growth, per request), so
// that the one reader keeps draining the socket while every CPU works.
//
// A REGISTER without credentials is not remembered at all: its answer (a
// challenge, or a rejection) changes no state, so a retransmission is simply
// answered again (with a fresh nonce), as RFC 3261 §8.2.7 allows.
type Stateless struct {
	reg    Registrar
	serve  func(req *sip.Request, tx Responder)
	server string // the Server header
	log    *slog.Logger
	now    func() time.Time
	closed chan struct{}
	once   sync.Once

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

// Registrar handles the REGISTERs the fast parser reads
// (*registrar.Registrar implements it); reply renders the response.
type Registrar interface {
	Register(ctx context.Context, r *registrar.Request, reply registrar.ReplyFunc)
}

// Responder answers a request sipgo's parser read.
type Responder interface {
	Respond(res *sip.Response) error
}

// Deps are the stateless path's collaborators.
type Deps struct {
	Registrar Registrar
	// Serve handles a REGISTER the fast parser leaves to sipgo's parser
	// (the SIP server's request checks, then the registrar), answering on
	// tx. tx also has Reply(req, code, reason, extra) error, which renders a
	// final response to a REGISTER straight from the request.
	Serve  func(req *sip.Request, tx Responder)
	Logger *slog.Logger     // default slog.Default()
	Now    func() time.Time // default time.Now
}

// New starts the stateless path on pc: its workers, and (pc a
// *net.UDPConn) its sender. server is the Server header of its responses.
// Close stops them.
func New(pc net.PacketConn, server string, deps Deps) (*Stateless, error) {
	if deps.Registrar == nil || deps.Serve == nil {
		return nil, errors.New("udpreg: Registrar and Serve are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	u := newStateless(pc, server, deps)
	if u.uc != nil {
		u.out = make(chan []outDatagram, registerQueue)
		go u.sender(newBatchWriter(u.uc))
	}
	// Handlers mostly compute; a few wait on the database (credential
	// lookups of domains not in the index): more workers than CPUs.
	for range max(8, 4*runtime.GOMAXPROCS(0)) {
		go u.worker()
	}
	return u, nil
}

// newStateless is a Stateless with nothing running.
func newStateless(pc net.PacketConn, server string, deps Deps) *Stateless {
	u := &Stateless{reg: deps.Registrar, serve: deps.Serve, server: server, log: deps.Logger, now: deps.Now,
		closed: make(chan struct{}), pc: pc, keep: sip.Timer_J, seen: map[txKey]sentResponse{}, work: make(chan []datagram, registerQueue)}
	u.uc, _ = pc.(*net.UDPConn)
	return u
}

// Close stops the workers and the sender; the reader's hand-offs stop
// waiting for them. It does not close pc.
func (u *Stateless) Close() error {
	u.once.Do(func() { close(u.closed) })
	return nil
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

func (u *Stateless) worker() {
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
		case <-u.closed:
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
func (u *Stateless) take(data []byte, from netip.AddrPort) bool {
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
func (u *Stateless) flush() {
	if len(u.taken) == 0 {
		return
	}
	batch := u.taken
	u.taken = make([]datagram, 0, cap(batch))
	select {
	case u.work <- batch:
	case <-u.closed:
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
func (u *Stateless) absorb(branch []byte, from netip.AddrPort) (txKey, bool) {
	key := txKey{string(branch), from}
	if !u.claim(key) {
		return txKey{}, true
	}
	return key, false
}

// forget removes the mark absorb left for a request whose response is not
// kept (a challenge, a request not handled here): a retransmission of it is
// answered anew.
func (u *Stateless) forget(d datagram) {
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
func (u *Stateless) process(w *regWorker, d datagram) {
	remembered := false
	defer func() {
		if !remembered {
			u.forget(d)
		}
	}()
	if reason := sipmsg.RawContentLengthProblem(d.data); reason != "" {
		rejectDatagram(u.pc, net.UDPAddrFromAddrPort(d.from), d.data, reason, u.server, u.log)
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
func (u *Stateless) txOf(d datagram, branch string, credentials bool) (key txKey, remember, handle bool) {
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
func (u *Stateless) claim(key txKey) bool {
	now := u.now()
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
func (u *Stateless) processFast(w *regWorker, d datagram) bool {
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
			u.log.Error("sip handler panic", "method", "REGISTER", "panic", r)
			w.reply(500, "Server Internal Error")
		}
	}()
	ctx := reqctx.New()
	defer ctx.Cancel()
	u.reg.Register(ctx, &f.reg, w.reply)
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

func (u *Stateless) dispatch(w *regWorker, req *sip.Request, key txKey, from netip.AddrPort, remember bool) {
	req.SetSource(from.String())
	req.SetTransport("UDP")
	u.serve(req, &statelessTx{u: u, w: w, key: key, req: req, from: from, remember: remember})
}

func (u *Stateless) write(data []byte, to netip.AddrPort) error {
	if u.uc != nil {
		_, err := u.uc.WriteToUDPAddrPort(data, to)
		return err
	}
	_, err := u.pc.WriteTo(data, net.UDPAddrFromAddrPort(to))
	return err
}

// Sweep forgets responses older than Timer J; the server calls it every
// second.
func (u *Stateless) Sweep(now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for k, r := range u.seen {
		if !now.Before(r.expires) {
			delete(u.seen, k)
		}
	}
}
