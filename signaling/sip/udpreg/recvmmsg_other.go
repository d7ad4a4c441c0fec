//go:build !linux

package udpreg

import (
	"net"
	"net/netip"
)

// batchReader reads datagrams in batches where the system can (Linux); here
// there is none, and the UDP reader reads one datagram at a time.
type batchReader struct{ n, next int }

func newBatchReader(*net.UDPConn) *batchReader { return nil }

func (*batchReader) read() error { return nil }

func (*batchReader) datagram(int) ([]byte, netip.AddrPort, error) { return nil, netip.AddrPort{}, nil }
