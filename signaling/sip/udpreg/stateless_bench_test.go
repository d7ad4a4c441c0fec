package udpreg

import (
	"bytes"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkStatelessRegisterBearer measures the UDP registrar path for one
// REGISTER with an access token, from the datagram leaving the socket reader
// (Stateless.take) to its 200 leaving the sender: parse, validation,
// token check, presence update, response. The write-behind to SQLite runs
// as in the server, on its own goroutine. Every response is read back from a
// real socket and must be a 200.
func BenchmarkStatelessRegisterBearer(b *testing.B) {
	const users = 2000
	e := newEnv(b, "")
	u := e.udp
	if u == nil {
		b.Fatal("no stateless UDP registrar")
	}
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	_ = pc.SetReadBuffer(8 << 20)
	from := pc.LocalAddr().(*net.UDPAddr).AddrPort()

	// One datagram per user; the digits of its branch and Call-ID are
	// rewritten per request (a new registration from a new Call-ID).
	const digits = "0000000000"
	msgs := make([][]byte, users)
	offs := make([][2]int, users)
	for i := range msgs {
		id := fmt.Sprintf("u%05d", i)
		msgs[i] = []byte("REGISTER sip:" + testDomain + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP " + from.String() + ";branch=z9hG4bK-bench-" + digits + ";rport\r\n" +
			"From: <sip:" + id + "@" + testDomain + ">;tag=bench" + id + "\r\n" +
			"To: <sip:" + id + "@" + testDomain + ">\r\n" +
			"Call-ID: " + digits + "-" + id + "@127.0.0.1\r\n" +
			"CSeq: 1 REGISTER\r\n" +
			"Contact: <sip:" + id + "@" + from.String() + ">\r\n" +
			"Authorization: Bearer " + e.token(id, true, time.Hour) + "\r\n" +
			"Max-Forwards: 70\r\n" +
			"Expires: 3600\r\n" +
			"Content-Length: 0\r\n\r\n")
		offs[i][0] = bytes.Index(msgs[i], []byte(digits))
		offs[i][1] = bytes.LastIndex(msgs[i], []byte(digits))
	}

	var got, bad atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := pc.Read(buf)
			if err != nil {
				return
			}
			if bytes.HasPrefix(buf[:n], []byte("SIP/2.0 200 ")) {
				got.Add(1)
			} else {
				bad.Add(1)
			}
		}
	}()

	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	for i := range b.N {
		m := msgs[i%users]
		for _, off := range offs[i%users] {
			d := m[off : off+len(digits)]
			for j, v := len(d)-1, i; j >= 0; j, v = j-1, v/10 {
				d[j] = byte('0' + v%10)
			}
		}
		if !u.take(m, from) {
			b.Fatal("REGISTER not taken by the stateless path")
		}
		if i%benchReadBatch == benchReadBatch-1 || i == b.N-1 {
			u.flush() // as the reader does after each read of several datagrams
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for got.Load()+bad.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	pc.Close()
	<-done
	if bad.Load() > 0 || got.Load() != int64(b.N) {
		b.Fatalf("%d requests: %d answered 200, %d otherwise", b.N, got.Load(), bad.Load())
	}
}

// processCPU is the CPU time (user and system) this process has used, in
// nanoseconds: on a machine with few cores, what a registration costs in CPU
// says more than its wall time.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchReadBatch is how many REGISTERs the benchmark hands on together: what
// the reader's recvmmsg typically returns at tens of thousands a second.
const benchReadBatch = 8
