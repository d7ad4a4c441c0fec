package udpreg

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The stateless REGISTER path sends its responses through one goroutine that
// writes whatever has queued up with a single sendmmsg(2): at tens of
// thousands of responses a second a system call per datagram was the largest
// single cost of a registration (measured on loopback: ≈ 9.7 µs of CPU per
// datagram sent one by one, ≈ 4.4 µs in batches of 8). When little is queued
// a batch is one datagram, as before.

// maxSendBatch is the most datagrams one sendmmsg carries.
const maxSendBatch = 64

type outDatagram struct {
	data []byte
	to   netip.AddrPort
}

// batchWriter is the WriteBatch of ipv4.PacketConn or ipv6.PacketConn
// (their Message types are the same type).
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// newBatchWriter returns a sendmmsg writer for uc, matching its family, and
// whether that family is IPv4.
func newBatchWriter(uc *net.UDPConn) (w batchWriter, v4 bool) {
	if la, ok := uc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
		return ipv4.NewPacketConn(uc), true
	}
	return ipv6.NewPacketConn(uc), false
}

// send queues a datagram for the sender.
func (u *Stateless) send(data []byte, to netip.AddrPort) {
	if u.out == nil {
		u.write(data, to)
		return
	}
	u.sendBatch([]outDatagram{{data, to}})
}

// sendBatch queues datagrams for the sender (u.out set); the sender owns ds.
func (u *Stateless) sendBatch(ds []outDatagram) {
	select {
	case u.out <- ds:
	case <-u.closed:
	}
}

// sender writes queued datagrams, a batch per system call.
func (u *Stateless) sender(w batchWriter, v4 bool) {
	msgs := make([]ipv4.Message, maxSendBatch)
	addrs := make([]net.UDPAddr, maxSendBatch)
	bufs := make([][1][]byte, maxSendBatch)
	ips := make([][16]byte, maxSendBatch)
	fill := func(i int, d outDatagram) {
		a := d.to.Addr()
		if v4 {
			a = a.Unmap()
		} else if a.Is4() {
			a = netip.AddrFrom16(a.As16()) // v4-mapped, for a dual-stack socket
		}
		ips[i] = a.As16()
		if a.Is4() {
			addrs[i].IP = ips[i][12:16]
		} else {
			addrs[i].IP = ips[i][:]
		}
		addrs[i].Port, addrs[i].Zone = int(d.to.Port()), a.Zone()
		bufs[i][0] = d.data
		msgs[i] = ipv4.Message{Buffers: bufs[i][:], Addr: &addrs[i]}
	}
	var queue []outDatagram
	for {
		if len(queue) == 0 {
			select {
			case queue = <-u.out:
			case <-u.closed:
				return
			}
		}
	more:
		for len(queue) < maxSendBatch {
			select {
			case ds := <-u.out:
				queue = append(queue, ds...)
			default:
				break more
			}
		}
		n := min(len(queue), maxSendBatch)
		for i, d := range queue[:n] {
			fill(i, d)
		}
		clear(queue[:n])
		queue = queue[n:]
		for sent := 0; sent < n; {
			k, err := w.WriteBatch(msgs[sent:n], 0)
			if err != nil {
				// Skip the datagram that failed (an unreachable address, say),
				// as a failed sendto would have.
				u.log.Debug("sip udp send failed", "to", msgs[sent].Addr, "error", err)
				k++
			}
			sent += k
		}
		for i := range n {
			bufs[i][0], msgs[i].Buffers = nil, nil // let the responses go
		}
	}
}
