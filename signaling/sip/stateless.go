package sip

import (
	"bytes"
	"net"
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
type udpRegistrar struct {
	s      *Server
	parser *sip.Parser
	pc     net.PacketConn
	keep   time.Duration

	mu   sync.Mutex
	seen map[string]*sentResponse
}

type sentResponse struct {
	data    []byte // nil while the request is being handled
	to      net.Addr
	expires time.Time
}

func newUDPRegistrar(s *Server, pc net.PacketConn) *udpRegistrar {
	return &udpRegistrar{s: s, parser: sip.NewParser(), pc: pc, keep: sip.Timer_J, seen: map[string]*sentResponse{}}
}

var registerPrefix = []byte("REGISTER ")

// handle takes a datagram; it returns false when sipgo should have it.
func (u *udpRegistrar) handle(data []byte, from net.Addr) bool {
	if !bytes.HasPrefix(data, registerPrefix) {
		return false
	}
	msg, err := u.parser.ParseSIP(data)
	if err != nil {
		return false // sipgo drops it the same way
	}
	req, ok := msg.(*sip.Request)
	if !ok || req.Via() == nil {
		return false
	}
	branch, _ := req.Via().Params.Get("branch")
	if !strings.HasPrefix(branch, sip.RFC3261BranchMagicCookie) {
		return false // pre-RFC 3261 clients: let the transaction layer match them
	}
	key := branch + "|" + from.String()
	now := u.s.now()
	u.mu.Lock()
	if prev, dup := u.seen[key]; dup && now.Before(prev.expires) {
		out, to := prev.data, prev.to
		u.mu.Unlock()
		if out != nil {
			u.pc.WriteTo(out, to)
		}
		return true
	}
	u.seen[key] = &sentResponse{expires: now.Add(u.keep)}
	u.mu.Unlock()
	req.SetSource(from.String())
	req.SetTransport("UDP")
	go u.s.dispatch(u.s.handleRegister, req, &statelessTx{u: u, key: key, req: req, from: from})
	return true
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

// statelessTx sends a response to where RFC 3261 §18.2.2 and RFC 3581 say
// and remembers the final one for retransmissions.
type statelessTx struct {
	u    *udpRegistrar
	key  string
	req  *sip.Request
	from net.Addr
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
			if ua, ok := t.from.(*net.UDPAddr); ok {
				to = &net.UDPAddr{IP: ua.IP, Port: port, Zone: ua.Zone}
			}
		}
	}
	data := []byte(res.String())
	if res.StatusCode >= 200 {
		t.u.mu.Lock()
		if e := t.u.seen[t.key]; e != nil {
			e.data, e.to = data, to
		}
		t.u.mu.Unlock()
	}
	_, err := t.u.pc.WriteTo(data, to)
	return err
}
