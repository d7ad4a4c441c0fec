package sip

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/parleyhq/parley/presence"
)

var transports = []string{"udp", "tcp", "tls", "ws", "wss"}

func TestRegisterDigestEveryTransport(t *testing.T) {
	e := newEnv(t, "", nil)
	for _, tp := range transports {
		t.Run(tp, func(t *testing.T) {
			c := e.newClient(tp)
			user := "alice"
			contact := fmt.Sprintf("<sip:alice-%s@127.0.0.1:5999;transport=%s>", tp, tp)
			res := c.register(user, testPassword, []string{contact}, sip.NewHeader("Expires", "300"))
			if res.StatusCode != 200 {
				t.Fatalf("status %d %s", res.StatusCode, res.Reason)
			}
			found := false
			for _, v := range contactsOf(res) {
				if strings.Contains(v, "alice-"+tp+"@") && strings.Contains(v, "expires=") {
					found = true
				}
			}
			if !found {
				t.Fatalf("200 OK does not list the new binding: %v", contactsOf(res))
			}
			var b presence.Binding
			for _, x := range e.bindings("sip:alice@" + testDomain) {
				if strings.Contains(x.Contact, "alice-"+tp) {
					b = x
				}
			}
			if b.Transport != tp {
				t.Fatalf("binding transport %q, want %q (%+v)", b.Transport, tp, b)
			}
			if presence.Reliable(tp) != (b.FlowID != "") {
				t.Fatalf("flow id %q for %s", b.FlowID, tp)
			}
			if r := b.Remaining(e.clk.Now()); r < 290*time.Second || r > 300*time.Second {
				t.Fatalf("remaining %s", r)
			}
		})
	}
	p, _ := e.reg.Get(context.Background(), e.acc.Sid, "sip:alice@"+testDomain)
	if p.Status != presence.Available || len(p.Bindings) != len(transports) {
		t.Fatalf("presence %s with %d bindings", p.Status, len(p.Bindings))
	}
}

// challengeFor sends req without credentials and returns the challenge for alg.
func challengeFor(t *testing.T, c *client, req *sip.Request, alg string) *digest.Challenge {
	t.Helper()
	res := c.raw(req.Clone())
	if res.StatusCode != 401 {
		t.Fatalf("want 401, got %d", res.StatusCode)
	}
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		ch, err := digest.ParseChallenge(h.Value())
		if err != nil {
			t.Fatalf("challenge %q: %v", h.Value(), err)
		}
		if ch.Algorithm == alg {
			if len(ch.QOP) != 1 || ch.QOP[0] != "auth" || ch.Realm != "parley" {
				t.Fatalf("challenge %q", h.Value())
			}
			return ch
		}
	}
	t.Fatalf("no %s challenge in %v", alg, res.GetHeaders("WWW-Authenticate"))
	return nil
}

func authorize(t *testing.T, req *sip.Request, ch *digest.Challenge, user, password string, count int) string {
	t.Helper()
	cred, err := digest.Digest(ch, digest.Options{Method: string(req.Method), URI: req.Recipient.Addr(), Username: user, Password: password, Count: count})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

// resend sends a copy of req with a new branch and CSeq and the given Authorization.
func resend(c *client, req *sip.Request, auth string) *sip.Response {
	r := req.Clone()
	r.RemoveHeader("Via")
	r.RemoveHeader("Authorization")
	c.cseq++
	r.CSeq().SeqNo = c.cseq
	if auth != "" {
		r.AppendHeader(sip.NewHeader("Authorization", auth))
	}
	return c.raw(r)
}

func TestDigestAlgorithmsReplayAndStale(t *testing.T) {
	e := newEnv(t, "", func(c *Config) { c.DigestAlgorithms = []string{AlgMD5, AlgSHA256} })
	for _, alg := range []string{AlgMD5, AlgSHA256} {
		t.Run(alg, func(t *testing.T) {
			c := e.newClient("tcp")
			req := c.request(sip.REGISTER, "bob", sip.Uri{Scheme: "sip", Host: testDomain})
			req.AppendHeader(sip.NewHeader("Contact", "<sip:bob@127.0.0.1:5998;transport=tcp>"))
			ch := challengeFor(t, c, req, alg)

			auth := authorize(t, req, ch, "bob", testPassword, 1)
			if res := resend(c, req, auth); res.StatusCode != 200 {
				t.Fatalf("%s: status %d %s", alg, res.StatusCode, res.Reason)
			}
			// The same credentials again (nc=1 on a used nonce) are a replay.
			if res := resend(c, req, auth); res.StatusCode != 403 || res.Reason != "Nonce Replayed" {
				t.Fatalf("replay: %d %s", res.StatusCode, res.Reason)
			}
			// A higher nonce count on the same nonce is fine (RFC 7616 §3.4).
			if res := resend(c, req, authorize(t, req, ch, "bob", testPassword, 2)); res.StatusCode != 200 {
				t.Fatalf("nc=2: %d %s", res.StatusCode, res.Reason)
			}
			// A wrong password is refused.
			if res := resend(c, req, authorize(t, req, ch, "bob", "wrong password", 3)); res.StatusCode != 403 {
				t.Fatalf("wrong password: %d %s", res.StatusCode, res.Reason)
			}
			// A forged nonce gets a fresh challenge.
			forged := *ch
			forged.Nonce = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
			if res := resend(c, req, authorize(t, req, &forged, "bob", testPassword, 1)); res.StatusCode != 401 {
				t.Fatalf("forged nonce: %d %s", res.StatusCode, res.Reason)
			}
			// Right password, expired nonce: 401 with stale=true.
			ch2 := challengeFor(t, c, req, alg)
			e.clk.Advance(e.srv.cfg.NonceTTL + time.Second)
			res := resend(c, req, authorize(t, req, ch2, "bob", testPassword, 1))
			if res.StatusCode != 401 {
				t.Fatalf("stale nonce: %d %s", res.StatusCode, res.Reason)
			}
			stale := false
			for _, h := range res.GetHeaders("WWW-Authenticate") {
				if strings.Contains(h.Value(), "stale=true") {
					stale = true
				}
			}
			if !stale {
				t.Fatalf("no stale=true in %v", res.GetHeaders("WWW-Authenticate"))
			}
		})
	}
}

func TestDigestSHA256PreferredByClient(t *testing.T) {
	// With SHA-256 offered first, a stock sipgo client (icholy/digest) answers it.
	e := newEnv(t, "", func(c *Config) { c.DigestAlgorithms = []string{"SHA-256", "MD5"} })
	c := e.newClient("udp")
	req := c.request(sip.REGISTER, "carol", sip.Uri{Scheme: "sip", Host: testDomain})
	req.AppendHeader(sip.NewHeader("Contact", "<sip:carol@127.0.0.1:5997>"))
	res := c.do(req, "carol", testPassword)
	if res.StatusCode != 200 {
		t.Fatalf("status %d %s", res.StatusCode, res.Reason)
	}
	if a := req.GetHeader("Authorization"); a == nil || !strings.Contains(a.Value(), "algorithm=SHA-256") {
		t.Fatalf("client did not use SHA-256: %v", a)
	}
}

func TestRegisterRejections(t *testing.T) {
	e := newEnv(t, "", nil)
	c := e.newClient("udp")
	tests := []struct {
		name      string
		user, pw  string
		domain    string
		toUser    string
		wantCode  int
		wantPhase string
	}{
		{"wrong password", "alice", "nope nope nope", testDomain, "alice", 403, "Forbidden"},
		{"unknown user", "mallory", testPassword, testDomain, "mallory", 403, "Forbidden"},
		{"unknown domain", "alice", testPassword, "other.test", "alice", 403, "Domain Not Served"},
		{"to mismatch", "alice", testPassword, testDomain, "bob", 403, "To Does Not Match Username"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: tt.domain})
			req.SetTransport("UDP")
			req.SetDestination(e.addr("udp"))
			from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: tt.toUser, Host: tt.domain}, Params: sip.NewParams()}
			from.Params.Add("tag", "x1")
			req.AppendHeader(from)
			req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: tt.toUser, Host: tt.domain}})
			req.AppendHeader(sip.NewHeader("Contact", "<sip:x@127.0.0.1:5990>"))
			res := c.do(req, tt.user, tt.pw)
			if res.StatusCode != tt.wantCode || res.Reason != tt.wantPhase {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, res.Reason, tt.wantCode, tt.wantPhase)
			}
		})
	}
}

func TestAuthFailureRateLimit(t *testing.T) {
	e := newEnv(t, "", func(c *Config) { c.AuthFailures = 3 })
	c := e.newClient("udp")
	for i := 0; i < 3; i++ {
		if res := c.register("alice", "bad password!", []string{"<sip:a@127.0.0.1:5990>"}); res.StatusCode != 403 || res.Reason != "Forbidden" {
			t.Fatalf("attempt %d: %d %s", i, res.StatusCode, res.Reason)
		}
	}
	// Even the right password is refused while the source is blocked.
	res := c.register("alice", testPassword, []string{"<sip:a@127.0.0.1:5990>"})
	if res.StatusCode != 403 || res.Reason != "Too Many Failed Authentications" || res.GetHeader("Retry-After") == nil {
		t.Fatalf("blocked source: %d %s", res.StatusCode, res.Reason)
	}
	e.clk.Advance(time.Minute)
	if res := c.register("alice", testPassword, []string{"<sip:a@127.0.0.1:5990>"}); res.StatusCode != 200 {
		t.Fatalf("after the window: %d %s", res.StatusCode, res.Reason)
	}
}

func TestBearer(t *testing.T) {
	e := newEnv(t, "", nil)
	ctx := context.Background()
	revoked, err := e.st.CreateKey(ctx, e.acc.Sid, "to revoke")
	if err != nil {
		t.Fatal(err)
	}
	revokedTok := func() string {
		tok := mintWith(t, e, revoked.Sid, revoked.Secret, "dave", true, time.Hour)
		if err := e.st.RevokeKey(ctx, revoked.Sid); err != nil {
			t.Fatal(err)
		}
		return tok
	}()
	tests := []struct {
		name     string
		token    string
		want     int
		identity string
	}{
		{"valid", e.token("browser-bob", true, time.Hour), 200, "client:browser-bob"},
		{"expired", e.token("browser-bob", true, time.Second), 401, ""}, // the clock is moved below
		{"no incoming grant", e.token("browser-bob", false, time.Hour), 403, ""},
		{"revoked key", revokedTok, 401, ""},
		{"bad signature", mintWith(t, e, e.key.Sid, "not-the-secret", "x", true, time.Hour), 401, ""},
		{"garbage", "abc.def.ghi", 401, ""},
	}
	e.clk.Advance(2 * time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.newClient("ws")
			res := c.register("ignored", "", []string{"<sip:x8fq2@df7jal23ls0d.invalid;transport=ws>"},
				sip.NewHeader("Authorization", "Bearer "+tt.token))
			if res.StatusCode != tt.want {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, tt.want)
			}
			if tt.identity != "" {
				bs := e.bindings(tt.identity)
				if len(bs) != 1 || bs[0].Transport != "ws" {
					t.Fatalf("bindings of %s: %+v", tt.identity, bs)
				}
			}
		})
	}
}

func TestContactsExpiryAndUnregister(t *testing.T) {
	e := newEnv(t, "", nil)
	c := e.newClient("udp")
	aor := "sip:alice@" + testDomain
	hdr := func(k, v string) sip.Header { return sip.NewHeader(k, v) }

	res := c.register("alice", testPassword, []string{"<sip:a1@127.0.0.1:6001>;q=0.9", "<sip:a2@127.0.0.1:6002>;expires=120;q=0.1"}, hdr("Expires", "600"))
	if res.StatusCode != 200 || len(contactsOf(res)) != 2 {
		t.Fatalf("two contacts: %d %v", res.StatusCode, contactsOf(res))
	}
	bs := e.bindings(aor)
	if len(bs) != 2 || !strings.Contains(bs[0].Contact, "a1@") || bs[0].Q != 0.9 {
		t.Fatalf("bindings sorted by q: %+v", bs)
	}
	if r := bs[1].Remaining(e.clk.Now()); r > 120*time.Second || r < 115*time.Second {
		t.Fatalf("contact expires param not honoured: %s", r)
	}
	// Too brief → 423 with Min-Expires.
	res = c.register("alice", testPassword, []string{"<sip:a3@127.0.0.1:6003>"}, hdr("Expires", "10"))
	if res.StatusCode != 423 || res.GetHeader("Min-Expires") == nil || res.GetHeader("Min-Expires").Value() != "60" {
		t.Fatalf("too brief: %d %v", res.StatusCode, res.GetHeader("Min-Expires"))
	}
	// Too long is shortened to max.
	res = c.register("alice", testPassword, []string{"<sip:a3@127.0.0.1:6003>"}, hdr("Expires", "99999"))
	if res.StatusCode != 200 || len(contactsOf(res)) != 3 {
		t.Fatalf("third contact: %d %v", res.StatusCode, contactsOf(res))
	}
	for _, v := range contactsOf(res) {
		if strings.Contains(v, "a3@") && !strings.Contains(v, "expires=3600") && !strings.Contains(v, "expires=3599") {
			t.Fatalf("not clamped to max: %s", v)
		}
	}
	// A query (no Contact) lists the bindings.
	if res = c.register("alice", testPassword, nil); res.StatusCode != 200 || len(contactsOf(res)) != 3 {
		t.Fatalf("query: %d %v", res.StatusCode, contactsOf(res))
	}
	// Removing one contact.
	if res = c.register("alice", testPassword, []string{"<sip:a3@127.0.0.1:6003>;expires=0"}); res.StatusCode != 200 || len(contactsOf(res)) != 2 {
		t.Fatalf("remove one: %d %v", res.StatusCode, contactsOf(res))
	}
	// Wildcard needs Expires: 0 and no other contact.
	if res = c.register("alice", testPassword, []string{"*"}, hdr("Expires", "60")); res.StatusCode != 400 {
		t.Fatalf("wildcard with expires 60: %d", res.StatusCode)
	}
	if res = c.register("alice", testPassword, []string{"*", "<sip:a4@127.0.0.1:6004>"}, hdr("Expires", "0")); res.StatusCode != 400 {
		t.Fatalf("wildcard with another contact: %d", res.StatusCode)
	}
	// Expiry: a2 (120 s) lapses, a1 (600 s) stays.
	e.clk.Advance(121 * time.Second)
	e.reg.Sweep()
	if bs := e.bindings(aor); len(bs) != 1 || !strings.Contains(bs[0].Contact, "a1@") {
		t.Fatalf("after expiry: %+v", bs)
	}
	events := e.reg.Events().Subscribe(8, nil)
	defer events.Close()
	if res = c.register("alice", testPassword, []string{"*"}, hdr("Expires", "0")); res.StatusCode != 200 || len(contactsOf(res)) != 0 {
		t.Fatalf("unregister all: %d %v", res.StatusCode, contactsOf(res))
	}
	select {
	case ev := <-events.C:
		if ev.Identity != aor || ev.Status != presence.Offline || ev.Previous != presence.Available {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no offline event")
	}
}

func TestCSeqOrdering(t *testing.T) {
	e := newEnv(t, "", nil)
	c := e.newClient("tcp")
	if res := c.register("alice", testPassword, []string{"<sip:o1@127.0.0.1:6001;transport=tcp>"}); res.StatusCode != 200 {
		t.Fatalf("register: %d", res.StatusCode)
	}
	// Same Call-ID, lower CSeq: refused, binding unchanged.
	c.cseq = 0
	res := c.register("alice", testPassword, []string{"<sip:o1@127.0.0.1:6001;transport=tcp>;expires=0"})
	if res.StatusCode != 500 || res.Reason != "Request Out Of Order" {
		t.Fatalf("out of order: %d %s", res.StatusCode, res.Reason)
	}
	if bs := e.bindings("sip:alice@" + testDomain); len(bs) != 1 {
		t.Fatalf("binding changed by an old request: %+v", bs)
	}
	// A different Call-ID may update it whatever its CSeq.
	c2 := e.newClient("tcp")
	c2.cseq = 1
	if res := c2.register("alice", testPassword, []string{"<sip:o1@127.0.0.1:6001;transport=tcp>;expires=0"}); res.StatusCode != 200 || len(contactsOf(res)) != 0 {
		t.Fatalf("other call-id: %d %v", res.StatusCode, contactsOf(res))
	}
}

func TestOutboundInstanceReplaces(t *testing.T) {
	e := newEnv(t, "", nil)
	inst := `+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1`
	c1 := e.newClient("tcp")
	if res := c1.register("alice", testPassword, []string{"<sip:old@127.0.0.1:6001;transport=tcp>;" + inst}); res.StatusCode != 200 {
		t.Fatalf("first: %d", res.StatusCode)
	}
	// The device reconnects (new connection, new Call-ID, new contact): it replaces its binding.
	c2 := e.newClient("tcp")
	res := c2.register("alice", testPassword, []string{"<sip:new@127.0.0.1:6002;transport=tcp>;" + inst})
	if res.StatusCode != 200 {
		t.Fatalf("second: %d", res.StatusCode)
	}
	bs := e.bindings("sip:alice@" + testDomain)
	if len(bs) != 1 || !strings.Contains(bs[0].Contact, "new@") || bs[0].RegID != 1 || bs[0].InstanceID == "" {
		t.Fatalf("bindings: %+v", bs)
	}
	if v := contactsOf(res); len(v) != 1 || !strings.Contains(v[0], "+sip.instance=") {
		t.Fatalf("200 contacts: %v", v)
	}
}

func TestConnectionCloseGoesOffline(t *testing.T) {
	e := newEnv(t, "", nil)
	for _, tp := range []string{"tcp", "tls", "ws", "wss"} {
		t.Run(tp, func(t *testing.T) {
			c := e.newClient(tp)
			aor := "sip:carol@" + testDomain
			if res := c.register("carol", testPassword, []string{"<sip:carol@kq3v.invalid;transport=" + tp + ">"}); res.StatusCode != 200 {
				t.Fatalf("register: %d", res.StatusCode)
			}
			events := e.reg.Events().Subscribe(8, func(ev presence.Event) bool { return ev.Identity == aor })
			defer events.Close()
			if len(e.bindings(aor)) != 1 {
				t.Fatal("no binding")
			}
			c.ua.Close()
			select {
			case ev := <-events.C:
				if ev.Status != presence.Offline {
					t.Fatalf("event %+v", ev)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no offline event after the connection closed")
			}
			if bs := e.bindings(aor); len(bs) != 0 {
				t.Fatalf("bindings left: %+v", bs)
			}
		})
	}
}

func TestRequestOverRegisteredFlow(t *testing.T) {
	e := newEnv(t, "", nil)
	for _, tp := range transports {
		t.Run(tp, func(t *testing.T) {
			c := e.newClient(tp)
			tok := e.token("flow-"+tp, true, time.Hour)
			// The contact host is never used: requests go over the flow
			// (or, for UDP, to the address the REGISTER came from).
			res := c.register("x", "", []string{"<sip:u1@a8d3k2.invalid;transport=" + tp + ">"}, sip.NewHeader("Authorization", "Bearer "+tok))
			if res.StatusCode != 200 {
				t.Fatalf("register: %d %s", res.StatusCode, res.Reason)
			}
			bs := e.bindings("client:flow-" + tp)
			if len(bs) != 1 {
				t.Fatalf("bindings: %+v", bs)
			}
			var u sip.Uri
			if err := sip.ParseUri(bs[0].Contact, &u); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			opt := sip.NewRequest(sip.OPTIONS, u)
			got, err := e.srv.Do(ctx, bs[0], opt)
			if err != nil {
				t.Fatalf("OPTIONS to binding: %v", err)
			}
			if got.StatusCode != 200 {
				t.Fatalf("OPTIONS status %d", got.StatusCode)
			}
			c.mu.Lock()
			n := len(c.received)
			c.mu.Unlock()
			if n != 1 {
				t.Fatalf("client received %d requests", n)
			}
		})
	}
}

func TestRestartRestoresBindings(t *testing.T) {
	e := newEnv(t, "", nil)
	c := e.newClient("udp")
	if res := c.register("bob", testPassword, []string{"<sip:bob@127.0.0.1:6100>"}, sip.NewHeader("Expires", "900")); res.StatusCode != 200 {
		t.Fatalf("register: %d", res.StatusCode)
	}
	before := e.bindings("sip:bob@" + testDomain)
	path := e.dbPath
	e.stop()

	e2 := newEnv(t, path, nil)
	after := e2.bindings("sip:bob@" + testDomain)
	if len(after) != 1 || after[0].Contact != before[0].Contact || !after[0].Expires.Equal(before[0].Expires.Truncate(time.Millisecond)) {
		t.Fatalf("restored %+v, want %+v", after, before)
	}
	p, _ := e2.reg.Get(context.Background(), e2.acc.Sid, "sip:bob@"+testDomain)
	if p.Status != presence.Available {
		t.Fatalf("status after restart: %s", p.Status)
	}
	// A restored binding still expires on time.
	e2.clk.Advance(901 * time.Second)
	e2.reg.Sweep()
	if bs := e2.bindings("sip:bob@" + testDomain); len(bs) != 0 {
		t.Fatalf("restored binding did not expire: %+v", bs)
	}
}
