package udpreg

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/parleyhq/parley/signaling/sip/internal/sipmsg"
)

func udpExchange(t *testing.T, conn net.Conn, msg string) string {
	t.Helper()
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 8192)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	return string(buf[:n])
}

func registerMsg(branch string, cseq int, auth string) string {
	if auth != "" {
		auth = "Authorization: " + auth + "\r\n"
	}
	return fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK%s\r\n"+
		"From: <sip:alice@%s>;tag=st1\r\nTo: <sip:alice@%s>\r\nCall-ID: stateless-1\r\nCSeq: %d REGISTER\r\n"+
		"Contact: <sip:alice@127.0.0.1:5999>\r\nMax-Forwards: 70\r\n%sContent-Length: 0\r\n\r\n",
		testDomain, branch, testDomain, testDomain, cseq, auth)
}

func TestStatelessUDPRegisterRetransmissions(t *testing.T) {
	e := newEnv(t, "")
	conn, err := net.Dial("udp", e.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A retransmitted request without credentials is challenged again (a
	// stateless answer, RFC 3261 §8.2.7), and nothing is kept for it.
	first := udpExchange(t, conn, registerMsg("b1", 1, ""))
	again := udpExchange(t, conn, registerMsg("b1", 1, ""))
	if !strings.HasPrefix(first, "SIP/2.0 401") || !strings.HasPrefix(again, "SIP/2.0 401") {
		t.Fatalf("unauthenticated retransmission:\n%s\n---\n%s", first, again)
	}
	e.udp.mu.Lock()
	kept := len(e.udp.seen)
	e.udp.mu.Unlock()
	if kept != 0 {
		t.Fatalf("%d responses kept for challenges", kept)
	}
	res, err := sip.ParseMessage([]byte(first))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := digest.ParseChallenge(res.(*sip.Response).GetHeader("WWW-Authenticate").Value())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(ch, digest.Options{Method: "REGISTER", URI: "sip:" + testDomain, Username: "alice", Password: testPassword, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The authorized request and its retransmission are both 200: the
	// retransmission is not taken for a nonce replay.
	ok1 := udpExchange(t, conn, registerMsg("b2", 2, cred.String()))
	ok2 := udpExchange(t, conn, registerMsg("b2", 2, cred.String()))
	if !strings.HasPrefix(ok1, "SIP/2.0 200") || ok1 != ok2 {
		t.Fatalf("authorized retransmission:\n%s\n---\n%s", ok1, ok2)
	}
	// A copy is matched by its branch and source before it is parsed: one
	// whose CSeq no longer parses (it would get a 400) gets the same 200.
	mangled := strings.Replace(registerMsg("b2", 2, cred.String()), "CSeq: 2 REGISTER", "CSeq: two REGISTER", 1)
	if got := udpExchange(t, conn, mangled); got != ok1 {
		t.Fatalf("retransmission matched before parsing:\n%s\n---\n%s", got, ok1)
	}
	// The same credentials in a new transaction are a replay.
	if got := udpExchange(t, conn, registerMsg("b3", 3, cred.String())); !strings.HasPrefix(got, "SIP/2.0 403 Nonce Replayed") {
		t.Fatalf("replay in a new transaction:\n%s", got)
	}
	// After Timer J the cache forgets the transaction.
	e.clk.Advance(sip.Timer_J + time.Second)
	e.udp.Sweep(e.clk.Now())
	e.udp.mu.Lock()
	n := len(e.udp.seen)
	e.udp.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d responses kept after Timer J", n)
	}
}

// TestStatelessUDPRegisterCopiesWhileQueued: a copy of a request that is
// still waiting for a worker is dropped by the reader, not queued again; once
// the request is answered, a copy is answered from the cache (credentials)
// or taken anew (none: its challenge is not kept).
func TestStatelessUDPRegisterCopiesWhileQueued(t *testing.T) {
	e := newEnv(t, "")
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	from := client.LocalAddr().(*net.UDPAddr).AddrPort()
	// A registrar with no workers: what take queues stays queued.
	u := newStateless(pc, testServer, e.deps)
	w := newRegWorker()
	read := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := client.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	for _, tc := range []struct {
		name, msg, status string
		kept              bool
	}{
		{"with credentials", registerMsg("q1", 1, "Bearer not-a-token"), "SIP/2.0 401", true},
		{"without", registerMsg("q2", 1, ""), "SIP/2.0 401", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u.taken = nil
			for range 3 {
				if !u.take([]byte(tc.msg), from) {
					t.Fatal("REGISTER not taken")
				}
			}
			if len(u.taken) != 1 {
				t.Fatalf("%d copies queued, want 1", len(u.taken))
			}
			u.process(w, u.taken[0])
			if got := read(); !strings.HasPrefix(got, tc.status) {
				t.Fatalf("response:\n%s", got)
			}
			u.taken = nil
			if !u.take([]byte(tc.msg), from) {
				t.Fatal("REGISTER not taken")
			}
			if queued := len(u.taken) == 1; queued == tc.kept {
				t.Fatalf("copy after the answer queued: %v, want %v", queued, !tc.kept)
			}
			if tc.kept {
				if got := read(); !strings.HasPrefix(got, tc.status) {
					t.Fatalf("cached response:\n%s", got)
				}
			}
		})
	}
}

// TestStatelessUDPSendFamilies: the batched sender answers on an IPv6 socket,
// and on a dual-stack one to an IPv4 client (through a v4-mapped address).
func TestStatelessUDPSendFamilies(t *testing.T) {
	probe, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	probe.Close()
	for _, tt := range []struct{ listen, dial string }{
		{"[::1]:0", "[::1]"},
		{"[::]:0", "127.0.0.1"},
	} {
		t.Run(tt.listen+" from "+tt.dial, func(t *testing.T) {
			e := newEnv(t, tt.listen)
			_, port, _ := net.SplitHostPort(e.addr())
			conn, err := net.Dial("udp", net.JoinHostPort(strings.Trim(tt.dial, "[]"), port))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if got := udpExchange(t, conn, registerMsg("fam1", 1, "")); !strings.HasPrefix(got, "SIP/2.0 401") {
				t.Fatalf("response:\n%s", got)
			}
		})
	}
}

// TestStatelessUDPBurst: a burst of REGISTERs far larger than one sendmmsg
// batch is answered in full, each transaction once.
func TestStatelessUDPBurst(t *testing.T) {
	e := newEnv(t, "")
	conn, err := net.Dial("udp", e.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.UDPConn).SetReadBuffer(4 << 20)
	const n = 500
	for i := range n {
		if _, err := conn.Write([]byte(registerMsg(fmt.Sprintf("burst%d", i), 1, ""))); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	buf := make([]byte, 8192)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(seen) < n {
		k, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("%d of %d answered: %v", len(seen), n, err)
		}
		res, err := sip.ParseMessage(buf[:k])
		if err != nil {
			t.Fatal(err)
		}
		branch, _ := res.(*sip.Response).Via().Params.Get("branch")
		if seen[branch] {
			t.Fatalf("%s answered twice", branch)
		}
		seen[branch] = true
	}
}

// FuzzLowerHeaderNames checks that lower-casing header names in place
// changes nothing sipgo parses but the case of those names.
func FuzzLowerHeaderNames(f *testing.F) {
	f.Add(registerMsg("b1", 1, "Bearer abc.def.ghi"))
	f.Add("REGISTER sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nSubject: A\r\n Folded: Value\r\nX-Y:Z\r\n\r\nBODY: X")
	f.Add("REGISTER sip:a SIP/2.0\nI: x\nL: 0\n\nHeader: body")
	f.Fuzz(func(t *testing.T, msg string) {
		orig, origErr := sip.NewParser().ParseSIP([]byte(msg))
		b := []byte(msg)
		lowerHeaderNames(b)
		lowered, lowErr := sip.NewParser().ParseSIP(b)
		if (origErr == nil) != (lowErr == nil) {
			t.Fatalf("parse errors differ: %v / %v", origErr, lowErr)
		}
		if origErr != nil {
			return
		}
		type parsed interface {
			StartLine() string
			Headers() []sip.Header
		}
		o, l := orig.(parsed), lowered.(parsed)
		if o.StartLine() != l.StartLine() || string(orig.Body()) != string(lowered.Body()) {
			t.Fatalf("start line or body changed:\n%q\n%q", orig, lowered)
		}
		oh, lh := o.Headers(), l.Headers()
		if len(oh) != len(lh) {
			t.Fatalf("%d headers became %d", len(oh), len(lh))
		}
		for i := range oh {
			if !strings.EqualFold(oh[i].Name(), lh[i].Name()) || oh[i].Value() != lh[i].Value() {
				t.Fatalf("header %d: %q: %q became %q: %q", i, oh[i].Name(), oh[i].Value(), lh[i].Name(), lh[i].Value())
			}
		}
	})
}

// FuzzRawBranch holds rawBranch to sipgo's parser: when it finds a branch,
// it is the branch of the message's first Via.
func FuzzRawBranch(f *testing.F) {
	f.Add(registerMsg("b1", 1, "Bearer abc.def.ghi"))
	f.Add("REGISTER sip:a SIP/2.0\r\nv: SIP/2.0/UDP h ; BRANCH = z9hG4bK1 ;rport, SIP/2.0/UDP g;branch=z9hG4bK2\r\nVia: SIP/2.0/UDP k;branch=z9hG4bK3\r\n\r\n")
	f.Add("REGISTER sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;rport\r\n ;branch=z9hG4bK1\r\n\r\n")
	f.Fuzz(func(t *testing.T, msg string) {
		raw := rawBranch([]byte(msg))
		if raw == nil {
			return
		}
		m, err := sip.NewParser().ParseSIP([]byte(msg))
		if err != nil {
			return
		}
		req, ok := m.(*sip.Request)
		if !ok || req.Via() == nil {
			return
		}
		parsed, _ := req.Via().Params.Get("branch")
		if string(raw) != parsed {
			t.Fatalf("raw branch %q, sipgo's %q", raw, parsed)
		}
	})
}

func TestRawBranch(t *testing.T) {
	for _, tc := range []struct{ msg, want string }{
		{registerMsg("b1", 1, ""), "z9hG4bKb1"},
		{"REGISTER sip:a SIP/2.0\r\nv: SIP/2.0/UDP h;rport;branch=z9hG4bK1, SIP/2.0/UDP g;branch=z9hG4bK2\r\n\r\n", "z9hG4bK1"},
		{"REGISTER sip:a SIP/2.0\r\nv: SIP/2.0/UDP h ; BRANCH = z9hG4bK1 ;rport\r\n\r\n", ""},
		{"REGISTER sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;rport\r\n ;branch=z9hG4bK1\r\n\r\n", ""},
		{"REGISTER sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;rport\r\n\r\n", ""},
		{"REGISTER sip:a SIP/2.0\r\nFrom: <sip:a>;branch=z9hG4bKx\r\n\r\n", ""},
	} {
		if got := string(rawBranch([]byte(tc.msg))); got != tc.want {
			t.Errorf("rawBranch(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}

// FuzzRenderResponse holds renderResponse to the response sipmsg.Response
// builds with sipgo: the same start line and headers in the same order,
// but for the To tag's (random) value.
func FuzzRenderResponse(f *testing.F) {
	f.Add(registerMsg("b1", 1, "Bearer abc.def.ghi"), 200, "127.0.0.1:5999")
	f.Add(registerMsg("b2", 2, ""), 401, "10.0.0.1:5060")
	f.Add("REGISTER sip:a SIP/2.0\r\nv: SIP/2.0/UDP h:5;rport;received=1.2.3.4, SIP/2.0/TCP g\r\nVia: SIP/2.0/UDP [::1]:7;branch=z9hG4bK3\r\n"+
		"f: <sip:a@b>;tag=1\r\nt: \"A\" <sip:a@b>;tag=x\r\ni: c\r\nCSeq: 3 REGISTER\r\n\r\n", 423, "[::1]:7")
	f.Fuzz(func(t *testing.T, msg string, code int, source string) {
		code = 200 + (code%500+500)%500
		parse := func() *sip.Request {
			m, err := sip.NewParser().ParseSIP([]byte(msg))
			if err != nil {
				return nil
			}
			req, ok := m.(*sip.Request)
			if !ok || req.Method != sip.REGISTER {
				return nil
			}
			req.SetSource(source)
			return req
		}
		req1, req2 := parse(), parse()
		if req1 == nil {
			return
		}
		extra := []sip.Header{sip.NewHeader("Contact", "<sip:a@127.0.0.1:5999>;expires=60"), sip.NewHeader("Date", "Sun, 22 Nov 2026 13:08:19 GMT")}
		res := sipmsg.Response(req1, code, "Some Reason", testServer)
		for _, h := range extra {
			res.AppendHeader(h)
		}
		var buf bytes.Buffer
		renderResponse(&buf, req2, code, "Some Reason", testServer, extra)
		want, err := sip.NewParser().ParseSIP([]byte(res.String()))
		if err != nil {
			return // sipgo cannot read back what it rendered: nothing to compare
		}
		got, err := sip.NewParser().ParseSIP(buf.Bytes())
		if err != nil {
			t.Fatalf("rendered response does not parse: %v\n%s", err, buf.String())
		}
		w, g := want.(*sip.Response), got.(*sip.Response)
		if w.StartLine() != g.StartLine() {
			t.Fatalf("start line %q, want %q", g.StartLine(), w.StartLine())
		}
		wh, gh := w.Headers(), g.Headers()
		if len(wh) != len(gh) {
			t.Fatalf("headers:\n%s\nwant:\n%s", buf.String(), res.String())
		}
		for i := range wh {
			wv, gv := wh[i].Value(), gh[i].Value()
			if to, ok := wh[i].(*sip.ToHeader); ok && !req1.To().Params.Has("tag") {
				gto, ok := gh[i].(*sip.ToHeader)
				if !ok {
					t.Fatalf("header %d: %q, want To", i, gh[i].Name())
				}
				to.Params.Remove("tag")
				gto.Params.Remove("tag")
				wv, gv = to.Value(), gto.Value()
			}
			if wh[i].Name() != gh[i].Name() || wv != gv {
				t.Fatalf("header %d: %s: %s, want %s: %s", i, gh[i].Name(), gv, wh[i].Name(), wv)
			}
		}
	})
}
