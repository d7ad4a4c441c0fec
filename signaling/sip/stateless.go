package sip

import (
	"bytes"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
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
	work chan datagram
	out  chan outDatagram // responses for the sender (nil: written directly)

	mu   sync.Mutex
	seen map[txKey]sentResponse // by value: one allocation less per request, nothing for the GC to trace
}

type datagram struct {
	data []byte
	from netip.AddrPort
	buf  *[]byte // data's pooled buffer, returned after process
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

// registerQueue is how many REGISTER datagrams may wait for a worker. When
// it is full the reader waits, and the socket's receive buffer
// (Config.UDPReadBuffer) holds what arrives meanwhile: an overloaded server
// does not pile up goroutines and requests whose clients have long since
// retransmitted.
const registerQueue = 1024

func newUDPRegistrar(s *Server, pc net.PacketConn) *udpRegistrar {
	u := &udpRegistrar{s: s, pc: pc, keep: sip.Timer_J, seen: map[txKey]sentResponse{}, work: make(chan datagram, registerQueue)}
	u.uc, _ = pc.(*net.UDPConn)
	if u.uc != nil {
		u.out = make(chan outDatagram, registerQueue)
		go u.sender(newBatchWriter(u.uc))
	}
	// Handlers mostly compute; a few wait on the database (credential
	// lookups of domains not in the index): more workers than CPUs.
	for range max(8, 4*runtime.GOMAXPROCS(0)) {
		go u.worker()
	}
	return u
}

func (u *udpRegistrar) worker() {
	parser := sip.NewParser()
	for {
		select {
		case d := <-u.work:
			u.process(parser, d)
			if d.buf != nil && cap(*d.buf) <= 64<<10 {
				*d.buf = d.data[:0]
				datagramBufs.Put(d.buf)
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

// take queues a REGISTER datagram read by the reader (data is the reader's
// buffer: it is copied); it returns false when sipgo should have the
// datagram.
func (u *udpRegistrar) take(data []byte, from netip.AddrPort) bool {
	if !bytes.HasPrefix(data, registerPrefix) || !bytes.Contains(data, branchCookie) {
		// Pre-RFC 3261 clients: let the transaction layer match them.
		return false
	}
	bp := datagramBufs.Get().(*[]byte)
	*bp = append((*bp)[:0], data...)
	select {
	case u.work <- datagram{data: *bp, from: from, buf: bp}:
	case <-u.s.closed:
	}
	return true
}

// datagramBufs recycles the copies of queued datagrams: process is done with
// one when it returns (sipgo's parser copies what it keeps).
var datagramBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// process parses and handles one REGISTER datagram.
func (u *udpRegistrar) process(parser *sip.Parser, d datagram) {
	if reason := rawContentLengthProblem(d.data); reason != "" {
		u.s.rejectDatagram(u.pc, net.UDPAddrFromAddrPort(d.from), d.data, reason)
		return
	}
	lowerHeaderNames(d.data)
	msg, err := parser.ParseSIP(d.data)
	if err != nil {
		return // sipgo drops it the same way
	}
	req, ok := msg.(*sip.Request)
	if !ok || req.Via() == nil {
		return
	}
	branch, _ := req.Via().Params.Get("branch")
	if !strings.HasPrefix(branch, sip.RFC3261BranchMagicCookie) {
		// The cookie was in another header (take looks at the raw bytes):
		// answer without matching retransmissions.
		u.dispatch(req, txKey{}, d.from, false)
		return
	}
	if req.GetHeader("authorization") == nil {
		// Without credentials the answer (a challenge, or a rejection of
		// the request) changes nothing here: each copy of the request is
		// answered anew, as RFC 3261 §8.2.7 lets a stateless UAS do, and
		// nothing is kept for Timer J. That is half of a Digest
		// registration's requests.
		u.dispatch(req, txKey{}, d.from, false)
		return
	}
	key := txKey{branch, d.from}
	now := u.s.now()
	u.mu.Lock()
	if prev, dup := u.seen[key]; dup && now.Before(prev.expires) {
		out, to := prev.data, prev.to
		u.mu.Unlock()
		if out != nil {
			u.send(out, to)
		}
		return
	}
	u.seen[key] = sentResponse{expires: now.Add(u.keep)}
	u.mu.Unlock()
	u.dispatch(req, key, d.from, true)
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

func (u *udpRegistrar) dispatch(req *sip.Request, key txKey, from netip.AddrPort, remember bool) {
	req.SetSource(from.String())
	req.SetTransport("UDP")
	u.s.dispatch(u.s.handleRegister, req, &statelessTx{u: u, key: key, req: req, from: from, remember: remember})
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
	key      txKey
	req      *sip.Request
	from     netip.AddrPort
	remember bool
}

func (t *statelessTx) Respond(res *sip.Response) error {
	to := t.from
	if via := t.req.Via(); via != nil {
		if _, ok := via.Params.Get("rport"); !ok {
			// No rport: the response goes to the source IP and the Via port.
			port := via.Port
			if port == 0 {
				port = sip.DefaultUdpPort
			}
			to = netip.AddrPortFrom(t.from.Addr(), uint16(port))
		}
	}
	// Rendered into a pooled buffer and copied once at its exact size (it is
	// kept for Timer J); String and a []byte conversion allocated twice.
	buf := renderBufs.Get().(*bytes.Buffer)
	buf.Reset()
	res.StringWrite(buf)
	data := bytes.Clone(buf.Bytes())
	renderBufs.Put(buf)
	if t.remember && res.StatusCode >= 200 {
		t.u.mu.Lock()
		if e, ok := t.u.seen[t.key]; ok {
			e.data, e.to = data, to
			t.u.seen[t.key] = e
		}
		t.u.mu.Unlock()
	}
	t.u.send(data, to)
	return nil
}
