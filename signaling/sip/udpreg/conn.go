package udpreg

import (
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/signaling/sip/internal/sipmsg"
)

// NewConn wraps pc for sipgo's ServeUDP. With st (nil: every datagram goes
// to sipgo), REGISTERs go to the stateless path, read in batches with
// recvmmsg where the system has it. server is the Server header of the 400s
// Conn sends itself.
func NewConn(pc net.PacketConn, st *Stateless, server string, log *slog.Logger) *Conn {
	c := &Conn{PacketConn: pc, reject: func(pc net.PacketConn, addr net.Addr, data []byte, reason string) {
		rejectDatagram(pc, addr, data, reason, server, log)
	}}
	if st != nil {
		c.take, c.flush = st.take, st.flush
		if uc, ok := pc.(*net.UDPConn); ok {
			c.batch = newBatchReader(uc)
		}
	}
	return c
}

// Conn is a UDP socket as sipgo's UDP server (ServeUDP) reads it: it
// answers datagrams sipgo would drop silently but RFC 3261 answers with 400
// (Content-Length larger than the body), and hands REGISTERs to the
// stateless path before sipgo sees them.
type Conn struct {
	net.PacketConn
	reject func(pc net.PacketConn, addr net.Addr, data []byte, reason string)
	// take, when set, may consume a datagram (the stateless REGISTER path);
	// data is only valid during the call.
	take func(data []byte, from netip.AddrPort) bool
	// flush, when set, hands on what take took; ReadFrom calls it before
	// it waits for more datagrams or returns one to sipgo.
	flush func()
	// batch reads many datagrams per system call (Linux, with take set).
	batch *batchReader
}

func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	if c.batch != nil {
		return c.readBatched(b)
	}
	uc, _ := c.PacketConn.(*net.UDPConn)
	for {
		var n int
		var addr net.Addr
		var err error
		if uc != nil && c.take != nil {
			// No address allocation for the datagrams taken.
			var ap netip.AddrPort
			n, ap, err = uc.ReadFromUDPAddrPort(b)
			if err != nil || n == 0 {
				return n, nil, err
			}
			// Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; the
			// rest of the server (Source, bindings) uses a.b.c.d.
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			if c.take(b[:n], ap) {
				c.flushTaken()
				continue
			}
			addr = net.UDPAddrFromAddrPort(ap)
		} else {
			n, addr, err = c.PacketConn.ReadFrom(b)
			if err != nil || n == 0 {
				return n, addr, err
			}
			if c.take != nil {
				if ua, ok := addr.(*net.UDPAddr); ok && c.take(b[:n], netip.AddrPortFrom(ua.AddrPort().Addr().Unmap(), ua.AddrPort().Port())) {
					c.flushTaken()
					continue
				}
			}
		}
		if reason := sipmsg.RawContentLengthProblem(b[:n]); reason != "" {
			c.reject(c.PacketConn, addr, append([]byte(nil), b[:n]...), reason)
			continue
		}
		return n, addr, err
	}
}

func (c *Conn) flushTaken() {
	if c.flush != nil {
		c.flush()
	}
}

// readBatched is ReadFrom through the batch reader: the REGISTERs of a
// batch go to take, and are handed on together; the other datagrams are
// returned to sipgo one by one.
func (c *Conn) readBatched(b []byte) (int, net.Addr, error) {
	for {
		for c.batch.next < c.batch.n {
			i := c.batch.next
			c.batch.next++
			data, ap, err := c.batch.datagram(i)
			if err != nil || len(data) == 0 {
				continue // truncated (larger than any UDP datagram), or empty
			}
			if c.take(data, ap) {
				continue
			}
			addr := net.UDPAddrFromAddrPort(ap)
			if reason := sipmsg.RawContentLengthProblem(data); reason != "" {
				c.reject(c.PacketConn, addr, append([]byte(nil), data...), reason)
				continue
			}
			c.flushTaken()
			return copy(b, data), addr, nil
		}
		c.flushTaken()
		if err := c.batch.read(); err != nil {
			return 0, nil, err
		}
	}
}

// rejectDatagram answers a UDP request sipgo cannot parse to completion.
func rejectDatagram(pc net.PacketConn, addr net.Addr, data []byte, reason, server string, log *slog.Logger) {
	// Parse the head only, without its Content-Length: the body is what is wrong.
	end := strings.Index(string(data), "\r\n\r\n")
	if end < 0 {
		return
	}
	var head strings.Builder
	for i, line := range strings.Split(string(data[:end]), "\r\n") {
		name, _, _ := strings.Cut(line, ":")
		if n := strings.ToLower(strings.TrimSpace(name)); i > 0 && (n == "content-length" || n == "l") {
			continue
		}
		head.WriteString(line)
		head.WriteString("\r\n")
	}
	head.WriteString("Content-Length: 0\r\n\r\n")
	msg, err := sip.ParseMessage([]byte(head.String()))
	if err != nil {
		return
	}
	req, ok := msg.(*sip.Request)
	if !ok || req.IsAck() || req.Via() == nil || req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
		return
	}
	req.SetSource(addr.String())
	res := sipmsg.Response(req, 400, reason, server)
	res.RemoveHeader("Content-Length")
	cl := sip.ContentLengthHeader(0)
	res.AppendHeader(&cl)
	if _, err := pc.WriteTo([]byte(res.String()), addr); err != nil {
		log.Debug("sip reject datagram", "error", err)
	}
}
