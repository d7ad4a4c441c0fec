// Command loadgen measures the WebRTC gateway of a running Parley: many
// registered WebSocket sessions, then many browser↔SIP bridged calls, with
// pion clients as browsers and sipgo callers with real RTP. It reads the
// server's CPU and RSS from /proc/<pid>. bench/webrtc/run.sh provisions a
// server and runs it; see bench/webrtc/README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/parleyhq/parley/presence/accesstoken"
	"github.com/parleyhq/parley/signaling/media"
	"github.com/parleyhq/parley/signaling/webrtc"
)

var (
	pid       = flag.Int("pid", 0, "the server's pid (CPU and RSS are read from /proc)")
	wsURL     = flag.String("ws", "ws://127.0.0.1:8080/v1/signal", "signalling endpoint")
	sipAddr   = flag.String("sip", "127.0.0.1:5060", "Parley's SIP UDP address")
	domain    = flag.String("domain", "bench.test", "SIP domain")
	account   = flag.String("account", "", "account sid")
	keySid    = flag.String("key", "", "API key sid")
	secret    = flag.String("secret", "", "API key secret")
	hookAddr  = flag.String("hook", "127.0.0.1:18097", "where to serve the voice webhook")
	sessions  = flag.Int("sessions", 1000, "registered sessions to hold (0 skips)")
	callsN    = flag.String("calls", "25,50,100", "concurrent bridged calls per step (empty skips)")
	hold      = flag.Duration("hold", 10*time.Second, "how long sessions and calls are held while measuring")
	sipUser   = flag.String("sip-user", "bob", "Digest user of the SIP callers")
	sipPass   = flag.String("sip-password", "bob-password", "its password")
	rtpBase   = flag.Int("rtp-base", 30000, "first RTP port of the callers")
	clientsIP = netip.MustParseAddr("127.0.0.1")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	go serveHook()
	fmt.Printf("| what | count | server CPU (cores) | per unit | server RSS growth | per unit | notes |\n|---|---|---|---|---|---|---|\n")
	if *sessions > 0 {
		benchSessions(*sessions)
	}
	for _, f := range strings.Split(*callsN, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			benchCalls(n)
		}
	}
}

// serveHook answers every call with <Dial><Client>USER</Client></Dial>, USER
// being the dialled SIP user.
func serveHook() {
	err := http.ListenAndServe(*hookAddr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		to := strings.TrimPrefix(r.PostForm.Get("To"), "sip:")
		user, _, _ := strings.Cut(to, "@")
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<Response><Dial timeout="20" answerOnBridge="true"><Client>%s</Client></Dial></Response>`, user)
	}))
	log.Fatal(err)
}

// proc reads the server's CPU time and RSS.
func proc() (cpu time.Duration, rssKB int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", *pid))
	if err != nil {
		log.Fatalf("server pid %d: %v", *pid, err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ
	s, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", *pid))
	for _, l := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			rssKB, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	return cpu, rssKB
}

func token(identity string) string {
	t, err := accesstoken.Mint(accesstoken.MintParams{AccountSid: *account, KeySid: *keySid, Secret: *secret, Identity: identity,
		Incoming: true, TTL: time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	return t
}

// client is one pion "browser" on the JSON protocol.
type client struct {
	c        *websocket.Conn
	wmu      sync.Mutex
	frames   chan webrtc.Frame
	pc       *pion.PeerConnection
	track    *pion.TrackLocalStaticRTP
	received atomic.Int64
	sent     atomic.Int64
}

func (c *client) send(f webrtc.Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.c.WriteJSON(f)
}

func register(identity string) (*client, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.Dial(*wsURL, nil)
	if err != nil {
		return nil, err
	}
	c := &client{c: conn, frames: make(chan webrtc.Frame, 16)}
	if err := c.send(webrtc.Frame{V: 1, Type: webrtc.TypeRegister, Token: token(identity)}); err != nil {
		return nil, err
	}
	go func() {
		defer close(c.frames)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var f webrtc.Frame
			if json.Unmarshal(b, &f) == nil {
				c.frames <- f
			}
		}
	}()
	select {
	case f, ok := <-c.frames:
		if !ok || f.Type != webrtc.TypeRegistered {
			return nil, fmt.Errorf("register %s: %+v", identity, f)
		}
	case <-time.After(15 * time.Second):
		return nil, fmt.Errorf("register %s: no answer", identity)
	}
	return c, nil
}

func benchSessions(n int) {
	cpu0, rss0 := proc()
	start := time.Now()
	var cs []*client
	for i := 0; i < n; i++ {
		c, err := register(fmt.Sprintf("s%d", i))
		if err != nil {
			log.Fatalf("after %d sessions: %v", i, err)
		}
		cs = append(cs, c)
	}
	setup := time.Since(start)
	time.Sleep(time.Second)
	cpu1, rss1 := proc()
	time.Sleep(*hold)
	cpu2, _ := proc()
	idle := float64(cpu2-cpu1) / float64(*hold)
	fmt.Printf("| registered WebSocket sessions (idle, held %s) | %d | %.3f | %.5f %% of a core | %.1f MB | %.1f KB | %d registrations in %.1fs (%.0f/s, %.2f ms CPU each) |\n",
		*hold, n, idle, 100*idle/float64(n), float64(rss1-rss0)/1024, float64(rss1-rss0)/float64(n), n, setup.Seconds(),
		float64(n)/setup.Seconds(), float64(cpu1-cpu0)/float64(time.Millisecond)/float64(n))
	for _, c := range cs {
		c.c.Close()
	}
	time.Sleep(2 * time.Second)
}

var pcmu = pion.RTPCodecParameters{RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypePCMU, ClockRate: 8000, Channels: 1}, PayloadType: 0}

func newAPI() *pion.API {
	me := &pion.MediaEngine{}
	if err := me.RegisterCodec(pcmu, pion.RTPCodecTypeAudio); err != nil {
		log.Fatal(err)
	}
	se := pion.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return pion.NewAPI(pion.WithMediaEngine(me), pion.WithSettingEngine(se))
}

// answer takes the incoming call on c.
func (c *client) answer(api *pion.API) error {
	var in webrtc.Frame
	select {
	case f, ok := <-c.frames:
		if !ok || f.Type != webrtc.TypeIncoming {
			return fmt.Errorf("want incoming, got %+v", f)
		}
		in = f
	case <-time.After(30 * time.Second):
		return fmt.Errorf("no incoming call")
	}
	pc, err := api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		return err
	}
	track, _ := pion.NewTrackLocalStaticRTP(pcmu.RTPCodecCapability, "audio", "load")
	pc.AddTrack(track)
	pc.OnTrack(func(tr *pion.TrackRemote, _ *pion.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			c.received.Add(1)
		}
	})
	c.pc, c.track = pc, track
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: in.SDP}); err != nil {
		return err
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	done := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return err
	}
	<-done
	return c.send(webrtc.Frame{Type: webrtc.TypeAnswer, CallSid: in.CallSid, SDP: pc.LocalDescription().SDP})
}

// caller is one SIP caller with its RTP endpoint.
type caller struct {
	ep     *media.Endpoint
	dc     *sipgo.DialogClientSession
	sender *media.Sender
}

func call(ctx context.Context, cl *sipgo.Client, ports *media.PortRange, user string) (*caller, error) {
	ep, err := ports.Listen(clientsIP)
	if err != nil {
		return nil, err
	}
	offer := media.Session{Addr: clientsIP, Port: int(ep.Local().Port()), Codecs: []media.RTPCodec{{PT: 0, Name: "PCMU", Rate: 8000, Channels: 1}}}
	to := sip.Uri{Scheme: "sip", User: user, Host: *domain}
	inv := sip.NewRequest(sip.INVITE, to)
	inv.SetTransport("UDP")
	inv.SetDestination(*sipAddr)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: *sipUser, Host: *domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	inv.AppendHeader(from)
	inv.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	inv.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: *sipUser, Host: "127.0.0.1"}})
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody(offer.Marshal(1, 1))
	ua := &sipgo.DialogUA{Client: cl, ContactHDR: *inv.Contact(), RewriteContact: true}
	dc, err := ua.WriteInvite(ctx, inv)
	if err != nil {
		ep.Close()
		return nil, err
	}
	if err := dc.WaitAnswer(ctx, sipgo.AnswerOptions{Username: *sipUser, Password: *sipPass}); err != nil {
		ep.Close()
		return nil, err
	}
	if err := dc.Ack(ctx); err != nil {
		ep.Close()
		return nil, err
	}
	ans, err := media.ParseSDP(dc.InviteResponse.Body())
	if err != nil {
		ep.Close()
		return nil, err
	}
	ep.SetRemote(ans.RTP())
	return &caller{ep: ep, dc: dc, sender: media.NewSender(ep, media.PCMU, 0)}, nil
}

func benchCalls(n int) {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("parley-webrtc-bench"))
	if err != nil {
		log.Fatal(err)
	}
	defer ua.Close()
	cl, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := sipgo.NewServer(ua); err != nil { // answers in-dialog requests (BYE)
		log.Fatal(err)
	}
	ports, err := media.NewPortRange(*rtpBase, *rtpBase+2*n+10)
	if err != nil {
		log.Fatal(err)
	}
	api := newAPI()
	cpu0, rss0 := proc()
	clients := make([]*client, n)
	callers := make([]*caller, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	sem := make(chan struct{}, 20) // setup concurrency
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			user := fmt.Sprintf("c%d", i)
			c, err := register(user)
			if err != nil {
				log.Print(err)
				failed.Add(1)
				return
			}
			clients[i] = c
			answered := make(chan error, 1)
			go func() { answered <- c.answer(api) }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			k, err := call(ctx, cl, ports, user)
			if aerr := <-answered; err == nil {
				err = aerr
			}
			if err != nil {
				log.Printf("call %d: %v", i, err)
				failed.Add(1)
				return
			}
			callers[i] = k
		}()
	}
	wg.Wait()
	setup := time.Since(start)
	// Both sides send 20 ms PCMU frames for the hold time.
	ctx, cancel := context.WithTimeout(context.Background(), *hold+2*time.Second)
	defer cancel()
	payload := media.PCMU.Encode(nil, media.Tone(440, 160, 6000))
	time.Sleep(time.Second) // ICE/DTLS settle
	cpu1, rss1 := proc()
	var senders sync.WaitGroup
	for i := range n {
		if callers[i] == nil {
			continue
		}
		senders.Add(2)
		go func() { defer senders.Done(); callers[i].sender.Silence(ctx, *hold) }()
		go func() {
			defer senders.Done()
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			var seq uint16
			var ts uint32
			for end := time.Now().Add(*hold); time.Now().Before(end); {
				<-t.C
				seq++
				ts += 160
				if clients[i].track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts}, Payload: payload}) == nil {
					clients[i].sent.Add(1)
				}
			}
		}()
	}
	senders.Wait()
	cpu2, _ := proc()
	time.Sleep(500 * time.Millisecond) // in flight
	var sentB, gotS, sentS, gotB int64
	for i := range n {
		if callers[i] == nil {
			continue
		}
		sentB += clients[i].sent.Load()
		gotB += clients[i].received.Load()
		st := callers[i].ep.Stats()
		sentS += int64(st.PacketsOut.Load())
		gotS += int64(st.PacketsIn.Load())
	}
	busy := float64(cpu2-cpu1) / float64(*hold)
	ok := n - int(failed.Load())
	nominal := float64(ok) * 50 * hold.Seconds() // packets per direction at 20 ms
	fmt.Printf("| browser↔SIP bridged calls (PCMU both ways, held %s) | %d (%d failed) | %.3f | %.2f %% of a core | %.1f MB | %.0f KB | setup %.1fs (%.1f ms server CPU per call); sent %.0f %% / %.0f %% of nominal 50 pps; loss browser→SIP %.2f %%, SIP→browser %.2f %% |\n",
		*hold, n, failed.Load(), busy, 100*busy/float64(max(ok, 1)), float64(rss1-rss0)/1024, float64(rss1-rss0)/float64(max(ok, 1)),
		setup.Seconds(), float64(cpu1-cpu0)/float64(time.Millisecond)/float64(max(ok, 1)),
		100*float64(sentB)/nominal, 100*float64(sentS)/nominal, loss(sentB, gotS), loss(sentS, gotB))
	for i := range n {
		if callers[i] != nil {
			bctx, c := context.WithTimeout(context.Background(), 5*time.Second)
			callers[i].dc.Bye(bctx)
			c()
			callers[i].ep.Close()
		}
		if clients[i] != nil {
			if clients[i].pc != nil {
				clients[i].pc.Close()
			}
			clients[i].c.Close()
		}
	}
	time.Sleep(2 * time.Second)
}

func loss(sent, got int64) float64 {
	if sent == 0 {
		return 100
	}
	l := 100 * float64(sent-got) / float64(sent)
	if l < 0 {
		l = 0
	}
	return l
}
