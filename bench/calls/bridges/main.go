// Command bridges measures concurrent bridged calls through a running
// Parley with SIP signalling and real RTP: it registers a callee ("alice",
// Digest) that answers every call, places N calls from a caller ("bob",
// Digest) to the domain (whose webhook answers <Dial><Client>alice</Client>),
// and streams 20 ms PCMU both ways on every call for the hold time. It
// prints packets sent and received in each direction (loss), the calls that
// failed to set up, and Parley's CPU (from /proc/PID/stat) and RSS while all
// calls are up.
//
// Usage (bench/calls/bridges.sh sets Parley up and runs it):
//
//	bridges -parley 127.0.0.1:5090 -pid PID -domain bench.test -calls 500 -hold 20s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/signaling/media"
)

var lo = netip.MustParseAddr("127.0.0.1")

// legs collects the generator's endpoints of one side.
type legs struct {
	mu  sync.Mutex
	eps []*media.Endpoint
}

func (l *legs) add(ep *media.Endpoint) {
	l.mu.Lock()
	l.eps = append(l.eps, ep)
	l.mu.Unlock()
}

// totals sums packets sent and received over the side's endpoints.
func (l *legs) totals() (out, in uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ep := range l.eps {
		out += ep.Stats().PacketsOut.Load()
		in += ep.Stats().PacketsIn.Load()
	}
	return out, in
}

func main() {
	parley := flag.String("parley", "127.0.0.1:5090", "Parley's SIP UDP address")
	pid := flag.Int("pid", 0, "Parley's process id (CPU and RSS)")
	domain := flag.String("domain", "bench.test", "SIP domain")
	calls := flag.Int("calls", 500, "concurrent calls")
	rate := flag.Int("rate", 50, "call attempts per second while ramping up")
	hold := flag.Duration("hold", 20*time.Second, "how long every call streams once all are up")
	portMin := flag.Int("rtp-min", 30000, "lowest RTP port of the load generator")
	flag.Parse()

	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx := context.Background()
	ports, err := media.NewPortRange(*portMin, *portMin+4*(*calls)+100)
	if err != nil {
		log.Fatal(err)
	}
	var callers, callees legs

	// The callee: one UA registered as alice that answers every call.
	callee := newUA("alice")
	var answered sync.Map // Call-ID → *sipgo.DialogServerSession
	dua := &sipgo.DialogUA{Client: callee.c, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1"}}}
	stop := make(chan struct{})
	callee.srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		offer, err := media.ParseSDP(req.Body())
		if err != nil {
			tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
			return
		}
		dtx, err := dua.ReadInvite(req, tx)
		if err != nil {
			return
		}
		answered.Store(req.CallID().Value(), dtx)
		ep, err := ports.Listen(lo)
		if err != nil {
			dtx.Respond(503, "No Ports", nil)
			return
		}
		defer ep.Close()
		ep.SetRemote(offer.RTP())
		ep.SetSink(func([]byte) {})
		callees.add(ep)
		sess := media.Session{Addr: lo, Port: int(ep.Local().Port()), Codecs: media.Negotiate(offer.Codecs, "PCMU")}
		if err := dtx.RespondSDP(sess.Marshal(1, 1)); err != nil {
			return
		}
		go stream(dtx.Context(), ep, stop)
		<-dtx.Context().Done()
	})
	callee.srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		if d, ok := answered.Load(req.CallID().Value()); ok {
			d.(*sipgo.DialogServerSession).ReadAck(req, tx)
		}
	})
	callee.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if d, ok := answered.Load(req.CallID().Value()); ok {
			d.(*sipgo.DialogServerSession).ReadBye(req, tx)
			return
		}
		tx.Respond(sip.NewResponseFromRequest(req, 481, "No Such Call", nil))
	})
	if err := callee.register(ctx, *parley, *domain); err != nil {
		log.Fatalf("register alice: %v", err)
	}

	// The caller: N calls, paced at rate, each streaming until stop.
	caller := newUA("bob")
	cua := &sipgo.DialogUA{Client: caller.c, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1"}}, RewriteContact: true}
	var up, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	var dialogs []*sipgo.DialogClientSession
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	start := time.Now()
	for i := 0; i < *calls; i++ {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			dc, err := placeCall(ctx, cua, ports, *parley, *domain, stop, &callers)
			if err != nil {
				failed.Add(1)
				mu.Lock()
				failures = append(failures, err.Error())
				mu.Unlock()
				return
			}
			up.Add(1)
			mu.Lock()
			dialogs = append(dialogs, dc)
			mu.Unlock()
		}()
	}
	tick.Stop()
	wg.Wait()
	setup := time.Since(start)
	fmt.Printf("calls up: %d of %d in %v (%d failed)\n", up.Load(), *calls, setup.Round(time.Millisecond), failed.Load())
	for i, f := range failures {
		if i == 5 {
			break
		}
		fmt.Println("  failure:", f)
	}

	// Steady state: every call streams both ways; measure Parley.
	time.Sleep(2 * time.Second)
	cpu0, _ := cpuTicks(*pid)
	t0 := time.Now()
	time.Sleep(*hold)
	cpu1, _ := cpuTicks(*pid)
	elapsed := time.Since(t0)
	rss := rssMB(*pid)
	close(stop)
	time.Sleep(500 * time.Millisecond) // in-flight packets land
	callerOut, callerIn := callers.totals()
	calleeOut, calleeIn := callees.totals()
	// Hang up.
	var hw sync.WaitGroup
	for _, dc := range dialogs {
		hw.Add(1)
		go func() {
			defer hw.Done()
			bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			dc.Bye(bctx)
			dc.Close()
		}()
	}
	hw.Wait()

	cores := float64(cpu1-cpu0) / 100 / elapsed.Seconds() // USER_HZ = 100
	n := up.Load()
	loss := func(sent, received uint64) float64 {
		if sent == 0 {
			return 0
		}
		return 100 * (1 - float64(received)/float64(sent))
	}
	// Every packet either side sent, and every one the other side received,
	// over whole calls: the few a side sends before Parley has bridged the
	// call (between its 200 OK and the bridge) count as lost.
	fmt.Printf("caller→callee: sent %d received %d (loss %.3f %%)\n", callerOut, calleeIn, loss(callerOut, calleeIn))
	fmt.Printf("callee→caller: sent %d received %d (loss %.3f %%)\n", calleeOut, callerIn, loss(calleeOut, callerIn))
	if *pid > 0 && n > 0 {
		fmt.Printf("parley over %v with %d calls up: %.2f cores = %.2f %% of a core per call; RSS %d MB (%.0f KB per call)\n",
			elapsed.Round(time.Millisecond), n, cores, 100*cores/float64(n), rss, float64(rss)*1024/float64(n))
	}
}

// stream sends 20 ms PCMU packets until stop or the dialog ends.
func stream(ctx context.Context, ep *media.Endpoint, stop <-chan struct{}) {
	s := media.NewSender(ep, media.PCMU, 101)
	second := media.PCMU.Encode(nil, media.Tone(440, 8000, 8000))
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-stop:
		case <-sctx.Done():
		}
		cancel()
	}()
	for sctx.Err() == nil {
		if err := s.PlayULaw(sctx, second); err != nil {
			return
		}
	}
}

func placeCall(ctx context.Context, cua *sipgo.DialogUA, ports *media.PortRange, parley, domain string,
	stop <-chan struct{}, callers *legs) (*sipgo.DialogClientSession, error) {
	ep, err := ports.Listen(lo)
	if err != nil {
		return nil, err
	}
	offer := media.Session{Addr: lo, Port: int(ep.Local().Port()), Codecs: []media.RTPCodec{{PT: 0, Name: "PCMU", Rate: 8000, Channels: 1}}}
	inv := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "alice", Host: domain})
	inv.SetDestination(parley)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(12))
	inv.AppendHeader(from)
	inv.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: domain}, Params: sip.NewParams()})
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody(offer.Marshal(2, 2))
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	dc, err := cua.WriteInvite(cctx, inv)
	if err != nil {
		ep.Close()
		return nil, err
	}
	if err := dc.WaitAnswer(cctx, sipgo.AnswerOptions{Username: "bob", Password: "bob-password"}); err != nil {
		ep.Close()
		dc.Close()
		return nil, err
	}
	if err := dc.Ack(cctx); err != nil {
		ep.Close()
		dc.Close()
		return nil, err
	}
	answer, err := media.ParseSDP(dc.InviteResponse.Body())
	if err != nil {
		ep.Close()
		dc.Close()
		return nil, err
	}
	ep.SetRemote(answer.RTP())
	ep.SetSink(func([]byte) {})
	callers.add(ep)
	go func() {
		stream(dc.Context(), ep, stop)
		<-dc.Context().Done()
		ep.Close()
	}()
	return dc, nil
}

type ua struct {
	user string
	c    *sipgo.Client
	srv  *sipgo.Server
}

func newUA(user string) *ua {
	u, err := sipgo.NewUA(sipgo.WithUserAgent("parley-bench-" + user))
	if err != nil {
		log.Fatal(err)
	}
	c, err := sipgo.NewClient(u, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		log.Fatal(err)
	}
	srv, err := sipgo.NewServer(u)
	if err != nil {
		log.Fatal(err)
	}
	return &ua{user: user, c: c, srv: srv}
}

func (u *ua) register(ctx context.Context, parley, domain string) error {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: domain})
	req.SetDestination(parley)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: u.user, Host: domain}})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: u.user, Host: domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(sip.NewHeader("Contact", "<sip:"+u.user+"@127.0.0.1>"))
	req.AppendHeader(sip.NewHeader("Expires", "3600"))
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := u.c.Do(rctx, req)
	if err != nil {
		return err
	}
	if res.StatusCode == 401 {
		res, err = u.c.DoDigestAuth(rctx, req, res, sipgo.DigestAuth{Username: u.user, Password: u.user + "-password"})
		if err != nil {
			return err
		}
	}
	if res.StatusCode != 200 {
		return errors.New(res.StartLine())
	}
	return nil
}

// cpuTicks is utime+stime of pid in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s, nil
}

func rssMB(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return kb / 1024
		}
	}
	return 0
}
