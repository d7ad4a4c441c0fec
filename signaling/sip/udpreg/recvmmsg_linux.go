//go:build linux

package udpreg

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"
)

// batchReader reads up to recvBatch datagrams per recvmmsg(2): under load
// the UDP reader makes one system call, and the registrar one hand-off to a
// worker, for many datagrams instead of one each.
type batchReader struct {
	rc    syscall.RawConn
	hdrs  [recvBatch]mmsghdr
	iovs  [recvBatch]syscall.Iovec
	names [recvBatch]syscall.RawSockaddrAny
	bufs  [recvBatch][]byte

	n    int // datagrams read by the last recvmmsg
	next int // the next one next returns
}

const (
	recvBatch   = 32
	maxDatagram = 65535
)

// mmsghdr is struct mmsghdr of <sys/socket.h>.
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
	_   [4]byte
}

// newBatchReader returns a reader of uc's datagrams, or nil when uc cannot
// be read that way.
func newBatchReader(uc *net.UDPConn) *batchReader {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &batchReader{rc: rc}
	for i := range r.bufs {
		r.bufs[i] = make([]byte, maxDatagram)
	}
	return r
}

// read waits for datagrams and reads as many as are queued, up to recvBatch.
func (r *batchReader) read() error {
	for i := range r.hdrs {
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(len(r.bufs[i]))
		r.hdrs[i] = mmsghdr{}
		r.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		r.hdrs[i].hdr.Namelen = uint32(unsafe.Sizeof(r.names[i]))
		r.hdrs[i].hdr.Iov = &r.iovs[i]
		r.hdrs[i].hdr.Iovlen = 1
	}
	var n int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		// The socket is non-blocking: this reads what is queued (at least
		// one) or fails with EAGAIN, and then the poller waits.
		var got uintptr
		got, _, errno = syscall.Syscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), recvBatch, 0, 0, 0)
		if errno == syscall.EAGAIN || errno == syscall.EINTR {
			return false
		}
		n = int(got)
		return true
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	r.n, r.next = n, 0
	return nil
}

// errTruncated marks a datagram larger than the reader's buffer.
var errTruncated = errors.New("datagram truncated")

// datagram returns the i-th datagram of the last read and its sender.
func (r *batchReader) datagram(i int) ([]byte, netip.AddrPort, error) {
	h := &r.hdrs[i]
	if h.hdr.Flags&syscall.MSG_TRUNC != 0 {
		return nil, netip.AddrPort{}, errTruncated
	}
	data := r.bufs[i][:h.len]
	var ap netip.AddrPort
	switch r.names[i].Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&r.names[i]))
		ap = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), portFromNetwork(sa.Port))
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&r.names[i]))
		a := netip.AddrFrom16(sa.Addr).Unmap()
		if sa.Scope_id != 0 && a.Is6() {
			a = a.WithZone(strconv.Itoa(int(sa.Scope_id))) // the net package takes a numeric zone
		}
		ap = netip.AddrPortFrom(a, portFromNetwork(sa.Port))
	}
	return data, ap, nil
}

// portFromNetwork reads a sockaddr's port, which is in network byte order.
func portFromNetwork(p uint16) uint16 {
	var b [2]byte
	*(*uint16)(unsafe.Pointer(&b[0])) = p
	return binary.BigEndian.Uint16(b[:])
}
