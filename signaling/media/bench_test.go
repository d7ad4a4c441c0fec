package media

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkConcurrentBridges relays PCMU both ways through CALLS bridged
// calls (default 500) for SECONDS (default 10): each call is two anchored
// endpoints bridged like a B2BUA's legs, with a "phone" socket on each side
// sending 20 ms packets (50/s) and counting what arrives. It reports packet
// loss and CPU per call; the phones run in the same process, so the CPU
// figure includes the load generator.
func BenchmarkConcurrentBridges(b *testing.B) {
	calls, secs := 500, 10
	if v, err := strconv.Atoi(os.Getenv("CALLS")); err == nil {
		calls = v
	}
	if v, err := strconv.Atoi(os.Getenv("SECONDS")); err == nil {
		secs = v
	}
	for i := 0; i < b.N; i++ {
		ports, err := NewPortRange(20000, 20000+4*calls+10) // below the ephemeral range the phones bind in
		if err != nil {
			b.Fatal(err)
		}
		type phone struct {
			c        *net.UDPConn
			to       *net.UDPAddr
			received atomic.Int64
		}
		var phones []*phone
		var eps []*Endpoint
		for c := 0; c < calls; c++ {
			a, err := ports.Listen(lo)
			if err != nil {
				b.Fatal(err)
			}
			z, err := ports.Listen(lo)
			if err != nil {
				b.Fatal(err)
			}
			eps = append(eps, a, z)
			for _, ep := range []*Endpoint{a, z} {
				conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					b.Fatal(err)
				}
				conn.SetReadBuffer(1 << 20)
				ep.SetRemote(conn.LocalAddr().(*net.UDPAddr).AddrPort())
				phones = append(phones, &phone{c: conn, to: net.UDPAddrFromAddrPort(ep.Local())})
			}
			Bridge(a, z, nil, nil, nil)
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for _, p := range phones {
			wg.Add(1)
			go func() { // receiver
				defer wg.Done()
				buf := make([]byte, 1500)
				for {
					if _, _, err := p.c.ReadFromUDP(buf); err != nil {
						return
					}
					p.received.Add(1)
				}
			}()
		}
		var sent atomic.Int64
		cpu0, start := cpuTime(), time.Now()
		for n, p := range phones {
			wg.Add(1)
			go func() { // sender: 160-byte PCMU every 20 ms
				defer wg.Done()
				pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: uint32(n)}, Payload: make([]byte, 160)}
				t := time.NewTicker(Frame)
				defer t.Stop()
				for seq := 0; ; seq++ {
					select {
					case <-stop:
						return
					case <-t.C:
					}
					pkt.SequenceNumber, pkt.Timestamp = uint16(seq), uint32(seq*160)
					raw, _ := pkt.Marshal()
					if _, err := p.c.WriteToUDP(raw, p.to); err == nil {
						sent.Add(1)
					}
				}
			}()
		}
		time.Sleep(time.Duration(secs) * time.Second)
		close(stop)
		cpu, elapsed := cpuTime()-cpu0, time.Since(start)
		time.Sleep(200 * time.Millisecond) // let the last packets land
		var got int64
		for _, p := range phones {
			got += p.received.Load()
			p.c.Close()
		}
		for _, ep := range eps {
			ep.Close()
		}
		wg.Wait()
		loss := 100 * float64(sent.Load()-got) / float64(sent.Load())
		cpuPerCall := float64(cpu) / float64(elapsed) / float64(calls) * 100 // % of one core
		b.ReportMetric(float64(calls), "calls")
		b.ReportMetric(loss, "loss-%")
		b.ReportMetric(cpuPerCall, "cpu-%core/call")
		b.ReportMetric(float64(sent.Load())/elapsed.Seconds(), "pkts/s-sent")
		fmt.Printf("%d bridged PCMU calls for %s: %d packets sent, %d received, loss %.3f%%, CPU %.2f cores in all (%.3f%% of a core per call, load generator included)\n",
			calls, elapsed.Round(time.Second), sent.Load(), got, loss, float64(cpu)/float64(elapsed), cpuPerCall)
	}
}
