package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	twclient "github.com/twilio/twilio-go/client"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/presence/accesstoken"
	"github.com/parleyhq/parley/server/config"
	"github.com/parleyhq/parley/signaling/messaging"
	"github.com/parleyhq/parley/store"
)

const (
	msgDomain   = "pbx.test"
	msgPassword = "correct-horse-battery"
)

// msgServer is a whole Parley server for messaging tests, with an account
// that has SIP domain pbx.test and users alice, bob and carol.
type msgServer struct {
	s    *Server
	base string
	acct store.Account
	key  store.APIKey
	stop func()
}

// startMsgServer starts a server on cfg's data dir; seed creates the
// account (false when restarting on a seeded data dir).
func startMsgServer(t testing.TB, cfg config.Config, seed bool) *msgServer {
	t.Helper()
	s, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(l Listening) { addr <- l.HTTP }) }()
	m := &msgServer{s: s}
	select {
	case a := <-addr:
		m.base = "http://" + a
	case err := <-done:
		t.Fatalf("server stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("server did not start")
	}
	var once sync.Once
	m.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(m.stop)
	st := s.Store()
	bg := context.Background()
	if seed {
		if m.acct, err = st.CreateAccount(bg, store.NewAccount{FriendlyName: "messaging"}); err != nil {
			t.Fatal(err)
		}
		if m.key, err = st.CreateKey(bg, m.acct.Sid, "k"); err != nil {
			t.Fatal(err)
		}
		dom, err := st.CreateSIPDomain(bg, m.acct.Sid, store.NewSIPDomain{DomainName: msgDomain, RegistrationEnabled: true})
		if err != nil {
			t.Fatal(err)
		}
		list, err := st.CreateSIPCredentialList(bg, m.acct.Sid, "users")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{"alice", "bob", "carol"} {
			if _, err := st.CreateSIPCredential(bg, m.acct.Sid, list.Sid, u, msgPassword, s.sip.Realm()); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.MapSIPCredentialList(bg, m.acct.Sid, dom.Sid, list.Sid); err != nil {
			t.Fatal(err)
		}
	} else {
		accs, _, err := st.ListAccounts(bg, store.AccountFilter{}, store.Page{Size: 1})
		if err != nil || len(accs) != 1 {
			t.Fatalf("accounts after restart: %v %v", accs, err)
		}
		m.acct = accs[0]
	}
	return m
}

// msgConfig is testConfig with fast messaging sweeps.
func msgConfig(t *testing.T) config.Config {
	cfg := testConfig(t)
	cfg.Messaging.SweepInterval = 100 * time.Millisecond
	cfg.Messaging.DeliveryTimeout = 3 * time.Second
	return cfg
}

// sipPhone is a sipgo user agent that registers with Parley over one
// transport and answers the MESSAGEs sent to it with status.
type sipPhone struct {
	t         testing.TB
	transport string
	server    string // Parley's address for the transport
	c         *sipgo.Client
	status    int
	got       chan *sip.Request
	cseq      uint32
	callID    string
}

func newSIPPhone(t testing.TB, m *msgServer, transport string) *sipPhone {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("msg-phone"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	p := &sipPhone{t: t, transport: transport, server: m.s.sip.Addr(transport).String(), c: c, status: 200,
		got: make(chan *sip.Request, 16), callID: sip.GenerateTagN(16), cseq: 1}
	srv.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
		p.got <- req
		tx.Respond(sip.NewResponseFromRequest(req, p.status, "Status", nil))
	})
	return p
}

func (p *sipPhone) request(method sip.RequestMethod, user string, ruri sip.Uri) *sip.Request {
	req := sip.NewRequest(method, ruri)
	req.SetTransport(strings.ToUpper(p.transport))
	req.SetDestination(p.server)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: msgDomain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	to := sip.Uri{Scheme: "sip", User: ruri.User, Host: ruri.Host}
	if method == sip.REGISTER {
		to.User = user
	}
	req.AppendHeader(&sip.ToHeader{Address: to})
	cid := sip.CallIDHeader(p.callID)
	req.AppendHeader(&cid)
	p.cseq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: p.cseq, MethodName: method})
	return req
}

// do sends req, answering a Digest challenge for user.
func (p *sipPhone) do(req *sip.Request, user string) *sip.Response {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.c.Do(ctx, req)
	if err != nil {
		p.t.Fatalf("%s: %v", req.Method, err)
	}
	if res.StatusCode == 401 && user != "" {
		res, err = p.c.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: msgPassword})
		if err != nil {
			p.t.Fatalf("%s with digest: %v", req.Method, err)
		}
		p.cseq = req.CSeq().SeqNo
	}
	return res
}

// register binds user@pbx.test (Digest) to this phone.
func (p *sipPhone) register(user string) {
	p.t.Helper()
	req := p.request(sip.REGISTER, user, sip.Uri{Scheme: "sip", Host: msgDomain})
	req.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<sip:%s@127.0.0.1:5999;transport=%s>", user, p.transport)))
	req.AppendHeader(sip.NewHeader("Expires", "600"))
	if res := p.do(req, user); res.StatusCode != 200 {
		p.t.Fatalf("register %s: %d %s", user, res.StatusCode, res.Reason)
	}
}

func (m *msgServer) token(t testing.TB, identity string) string {
	tok, err := accesstoken.Mint(accesstoken.MintParams{AccountSid: m.acct.Sid, KeySid: m.key.Sid, Secret: m.key.Secret,
		Identity: identity, Incoming: true, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// registerToken binds client:<identity> with an access token.
func (p *sipPhone) registerToken(m *msgServer, identity string) {
	p.t.Helper()
	tok := m.token(p.t, identity)
	req := p.request(sip.REGISTER, identity, sip.Uri{Scheme: "sip", Host: msgDomain})
	req.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<sip:%s@%s.invalid;transport=%s>", identity, "x", p.transport)))
	req.AppendHeader(sip.NewHeader("Authorization", "Bearer "+tok))
	if res := p.do(req, ""); res.StatusCode != 200 {
		p.t.Fatalf("register client:%s: %d %s", identity, res.StatusCode, res.Reason)
	}
}

// message sends a MESSAGE from user (Digest) to ruri.
func (p *sipPhone) message(user, ruri, contentType string, body []byte) *sip.Response {
	p.t.Helper()
	var u sip.Uri
	if err := sip.ParseUri(ruri, &u); err != nil {
		p.t.Fatal(err)
	}
	req := p.request(sip.MESSAGE, user, u)
	if contentType != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	}
	req.SetBody(body)
	return p.do(req, user)
}

// messageBearer sends a MESSAGE authenticated by an access token.
func (p *sipPhone) messageBearer(token, ruri string, body []byte) *sip.Response {
	p.t.Helper()
	var u sip.Uri
	if err := sip.ParseUri(ruri, &u); err != nil {
		p.t.Fatal(err)
	}
	req := p.request(sip.MESSAGE, "token-user", u)
	req.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
	req.AppendHeader(sip.NewHeader("Authorization", "Bearer "+token))
	req.SetBody(body)
	return p.do(req, "")
}

// next waits for a MESSAGE delivered to the phone.
func (p *sipPhone) next(d time.Duration) *sip.Request {
	p.t.Helper()
	select {
	case r := <-p.got:
		return r
	case <-time.After(d):
		p.t.Fatalf("no MESSAGE delivered within %s", d)
		return nil
	}
}

func (p *sipPhone) none(d time.Duration) {
	p.t.Helper()
	select {
	case r := <-p.got:
		p.t.Fatalf("unexpected MESSAGE: %s", r.Body())
	case <-time.After(d):
	}
}

func (m *msgServer) message(t *testing.T, msgSid string) map[string]any {
	t.Helper()
	code, body := m.rest(t, http.MethodGet, "/Messages/"+msgSid+".json", nil)
	if code != 200 {
		t.Fatalf("fetch message %s: %d %s", msgSid, code, body)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func (m *msgServer) waitStatus(t *testing.T, msgSid, status string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := m.message(t, msgSid)
		if got["status"] == status {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s: status %v, want %s (%v)", msgSid, got["status"], status, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rest calls the account's REST API; form is POSTed when not nil.
func (m *msgServer) rest(t *testing.T, method, path string, form url.Values) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, m.base+"/2010-04-01/Accounts/"+m.acct.Sid+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(m.acct.Sid, m.acct.AuthToken)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func sidOf(res *sip.Response) string {
	if h := res.GetHeader("X-Parley-Message-Sid"); h != nil {
		return h.Value()
	}
	return ""
}

// TestSIPMessageClientToClient: a MESSAGE from a Digest user reaches every
// binding of the recipient over their flows, with its content type.
func TestSIPMessageClientToClient(t *testing.T) {
	m := startMsgServer(t, msgConfig(t), true)
	alice := newSIPPhone(t, m, "udp")
	bobUDP, bobTCP := newSIPPhone(t, m, "udp"), newSIPPhone(t, m, "tcp")
	bobUDP.register("bob")
	bobTCP.register("bob")
	carol := newSIPPhone(t, m, "tcp")
	carol.registerToken(m, "carol")
	erin := newSIPPhone(t, m, "ws") // a SIP-over-WebSocket client (JsSIP-style .invalid contact)
	erin.registerToken(m, "erin")

	for _, tc := range []struct {
		name, ruri, ct, body string
		to                   []*sipPhone
		wantTo               string
	}{
		{"sip user, two bindings", "sip:bob@" + msgDomain, "text/plain;charset=UTF-8", "hello bob", []*sipPhone{bobUDP, bobTCP}, "sip:bob@pbx.test"},
		{"content type passed through", "sip:bob@" + msgDomain, "application/vnd.example+json", `{"x":1}`, []*sipPhone{bobUDP, bobTCP}, "sip:bob@pbx.test"},
		{"token client through this server", "sip:carol@" + m.s.sip.AdvertisedHost(), "text/plain", "hello carol", []*sipPhone{carol}, "client:carol"},
		{"token client over websocket", "sip:erin@" + m.s.sip.AdvertisedHost(), "text/plain", "hello erin", []*sipPhone{erin}, "client:erin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := alice.message("alice", tc.ruri, tc.ct, []byte(tc.body))
			if res.StatusCode != 200 {
				t.Fatalf("MESSAGE: %d %s", res.StatusCode, res.Reason)
			}
			for _, p := range tc.to {
				got := p.next(5 * time.Second)
				if string(got.Body()) != tc.body || got.ContentType().Value() != tc.ct {
					t.Fatalf("delivered %q (%s), want %q (%s)", got.Body(), got.ContentType().Value(), tc.body, tc.ct)
				}
				if got.From().Address.User != "alice" {
					t.Fatalf("From %s", got.From().Address.String())
				}
			}
			rec := m.waitStatus(t, sidOf(res), "delivered")
			if rec["to"] != tc.wantTo || rec["from"] != "sip:alice@pbx.test" || rec["direction"] != "inbound" || rec["date_sent"] == nil {
				t.Fatalf("record %v", rec)
			}
		})
	}
}

// TestSIPMessageRejected: malformed, oversize, unknown and unauthenticated
// messages get the right status and store nothing.
func TestSIPMessageRejected(t *testing.T) {
	cfg := msgConfig(t)
	cfg.Messaging.MaxBodyBytes = 2000
	m := startMsgServer(t, cfg, true)
	for _, tc := range []struct {
		name, transport, ruri, ct string
		body                      []byte
		auth                      bool
		want                      int
	}{
		{"no body", "udp", "sip:bob@pbx.test", "text/plain", nil, true, 400},
		{"no content type", "udp", "sip:bob@pbx.test", "", []byte("hi"), true, 400},
		{"content type without subtype", "tcp", "sip:bob@pbx.test", "text", []byte("hi"), true, 400},
		{"no user in request uri", "udp", "sip:pbx.test", "text/plain", []byte("hi"), true, 400},
		{"over the limit, tcp", "tcp", "sip:bob@pbx.test", "text/plain", []byte(strings.Repeat("x", 2001)), true, 413},
		{"far over the limit, tcp", "tcp", "sip:bob@pbx.test", "text/plain", []byte(strings.Repeat("x", 40000)), true, 413},
		{"unknown user of the domain without messaging url", "udp", "sip:nobody@pbx.test", "text/plain", []byte("hi"), true, 404},
		{"not authenticated", "udp", "sip:bob@pbx.test", "text/plain", []byte("hi"), false, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newSIPPhone(t, m, tc.transport)
			user := ""
			if tc.auth {
				user = "alice"
			}
			var u sip.Uri
			if err := sip.ParseUri(tc.ruri, &u); err != nil {
				t.Fatal(err)
			}
			req := p.request(sip.MESSAGE, "alice", u)
			if tc.ct != "" {
				req.AppendHeader(sip.NewHeader("Content-Type", tc.ct))
			}
			req.SetBody(tc.body)
			if res := p.do(req, user); res.StatusCode != tc.want {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, tc.want)
			}
		})
	}
	if code, body := m.rest(t, http.MethodGet, "/Messages.json", nil); code != 200 || !strings.Contains(body, `"messages":[]`) {
		t.Fatalf("messages stored for rejected requests: %d %s", code, body)
	}
	// The server still serves.
	p := newSIPPhone(t, m, "udp")
	if res := p.message("alice", "sip:bob@pbx.test", "text/plain", []byte("still here")); res.StatusCode != 202 {
		t.Fatalf("after the rejections: %d", res.StatusCode)
	}
}

// TestStoreAndForward: a message to an offline user is answered 202,
// stored, and delivered when the user registers; with a short store time
// it becomes undelivered instead, and the REST status callbacks say so.
func TestStoreAndForward(t *testing.T) {
	t.Run("delivered on register", func(t *testing.T) {
		m := startMsgServer(t, msgConfig(t), true)
		alice := newSIPPhone(t, m, "udp")
		var sids []string
		for _, text := range []string{"first", "second"} {
			res := alice.message("alice", "sip:bob@pbx.test", "text/plain", []byte(text))
			if res.StatusCode != 202 {
				t.Fatalf("MESSAGE to offline bob: %d %s", res.StatusCode, res.Reason)
			}
			sids = append(sids, sidOf(res))
		}
		if rec := m.message(t, sids[0]); rec["status"] != "queued" {
			t.Fatalf("status %v", rec["status"])
		}
		bob := newSIPPhone(t, m, "tcp")
		bob.register("bob")
		for _, want := range []string{"first", "second"} { // in order
			if got := bob.next(5 * time.Second); string(got.Body()) != want {
				t.Fatalf("delivered %q, want %q", got.Body(), want)
			}
		}
		for _, s := range sids {
			m.waitStatus(t, s, "delivered")
		}
		bob.none(300 * time.Millisecond) // once
	})
	t.Run("expires undelivered", func(t *testing.T) {
		cfg := msgConfig(t)
		cfg.Messaging.StoreFor = 500 * time.Millisecond
		m := startMsgServer(t, cfg, true)
		cb := newStatusReceiver(t, m.acct.AuthToken)
		code, body := m.rest(t, http.MethodPost, "/Messages.json", url.Values{"To": {"client:dave"}, "From": {"client:ops"},
			"Body": {"are you there?"}, "StatusCallback": {cb.srv.URL + "/status"}})
		if code != 201 {
			t.Fatalf("send: %d %s", code, body)
		}
		var created map[string]any
		json.Unmarshal([]byte(body), &created)
		if created["status"] != "queued" || created["direction"] != "outbound-api" {
			t.Fatalf("created %v", created)
		}
		rec := m.waitStatus(t, created["sid"].(string), "undelivered")
		if rec["error_code"] != float64(messaging.ErrorUnreachable) {
			t.Fatalf("error_code %v", rec["error_code"])
		}
		cb.wait(t, "sending", "queued", "undelivered")
		// dave registers too late: nothing is delivered.
		dave := newSIPPhone(t, m, "tcp")
		dave.registerToken(m, "dave")
		dave.none(500 * time.Millisecond)
	})
	t.Run("no store: 480", func(t *testing.T) {
		cfg := msgConfig(t)
		cfg.Messaging.StoreFor = -1
		m := startMsgServer(t, cfg, true)
		alice := newSIPPhone(t, m, "udp")
		res := alice.message("alice", "sip:bob@pbx.test", "text/plain", []byte("hi"))
		if res.StatusCode != 480 {
			t.Fatalf("got %d, want 480", res.StatusCode)
		}
		m.waitStatus(t, sidOf(res), "undelivered")
	})
}

// TestQueuedMessagesSurviveRestart: messages queued for an offline client
// are delivered after the server restarts on the same data directory.
func TestQueuedMessagesSurviveRestart(t *testing.T) {
	cfg := msgConfig(t)
	m := startMsgServer(t, cfg, true)
	alice := newSIPPhone(t, m, "udp")
	res := alice.message("alice", "sip:carol@pbx.test", "text/plain", []byte("kept across a restart"))
	if res.StatusCode != 202 {
		t.Fatalf("MESSAGE: %d", res.StatusCode)
	}
	queued := sidOf(res)
	code, body := m.rest(t, http.MethodPost, "/Messages.json", url.Values{"To": {"sip:carol@pbx.test"}, "From": {"client:ops"}, "Body": {"and this one"}})
	if code != 201 {
		t.Fatalf("send: %d %s", code, body)
	}
	m.waitStatus(t, queued, "queued")
	m.stop()

	m2 := startMsgServer(t, cfg, false)
	if rec := m2.message(t, queued); rec["status"] != "queued" {
		t.Fatalf("after restart: %v", rec)
	}
	carol := newSIPPhone(t, m2, "tcp")
	carol.register("carol")
	for _, want := range []string{"kept across a restart", "and this one"} {
		if got := carol.next(5 * time.Second); string(got.Body()) != want {
			t.Fatalf("delivered %q, want %q", got.Body(), want)
		}
	}
	m2.waitStatus(t, queued, "delivered")
}

// statusReceiver is an httptest status-callback endpoint that checks the
// signature with twilio-go's validator (an independent implementation).
type statusReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []url.Values
}

func newStatusReceiver(t *testing.T, token string) *statusReceiver {
	r := &statusReceiver{}
	v := twclient.NewRequestValidator(token)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req.ParseForm()
		p := map[string]string{}
		for k := range req.PostForm {
			p[k] = req.PostForm.Get(k)
		}
		if !v.Validate("http://"+req.Host+req.URL.RequestURI(), p, req.Header.Get("X-Twilio-Signature")) {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		r.mu.Lock()
		r.got = append(r.got, req.PostForm)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// wait waits for callbacks with these MessageStatus values, in order.
func (r *statusReceiver) wait(t *testing.T, statuses ...string) []url.Values {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		var seen []string
		for _, v := range r.got {
			seen = append(seen, v.Get("MessageStatus"))
		}
		got := append([]url.Values(nil), r.got...)
		r.mu.Unlock()
		if strings.Join(seen, ",") == strings.Join(statuses, ",") {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("status callbacks %v, want %v", seen, statuses)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMessagesREST: send to an online client (callbacks sending,
// delivered), list with filters, fetch, and the errors.
func TestMessagesREST(t *testing.T) {
	m := startMsgServer(t, msgConfig(t), true)
	cb := newStatusReceiver(t, m.acct.AuthToken)
	bob := newSIPPhone(t, m, "udp")
	bob.register("bob")
	code, body := m.rest(t, http.MethodPost, "/Messages.json", url.Values{"To": {"sip:bob@pbx.test"}, "From": {"client:ops"},
		"Body": {"your code is 1234"}, "StatusCallback": {cb.srv.URL + "/status?x=1"}})
	if code != 201 {
		t.Fatalf("send: %d %s", code, body)
	}
	var sent map[string]any
	json.Unmarshal([]byte(body), &sent)
	for k, want := range map[string]any{"status": "queued", "to": "sip:bob@pbx.test", "from": "client:ops", "body": "your code is 1234",
		"direction": "outbound-api", "api_version": "2010-04-01", "num_segments": "1", "date_sent": nil, "error_code": nil} {
		if sent[k] != want {
			t.Fatalf("%s = %v, want %v (%v)", k, sent[k], want, sent)
		}
	}
	msgSid := sent["sid"].(string)
	if got := bob.next(5 * time.Second); string(got.Body()) != "your code is 1234" || got.From().Address.User != "ops" {
		t.Fatalf("delivered %q from %s", got.Body(), got.From().Address.String())
	}
	got := cb.wait(t, "sending", "delivered")
	if got[1].Get("MessageSid") != msgSid || got[1].Get("To") != "sip:bob@pbx.test" || got[1].Get("AccountSid") != m.acct.Sid {
		t.Fatalf("callback %v", got[1])
	}
	rec := m.waitStatus(t, msgSid, "delivered")
	if rec["date_sent"] == nil || rec["uri"] != "/2010-04-01/Accounts/"+m.acct.Sid+"/Messages/"+msgSid+".json" {
		t.Fatalf("fetched %v", rec)
	}
	// A second message to someone else, for the filters.
	if code, body := m.rest(t, http.MethodPost, "/Messages.json", url.Values{"To": {"client:zed"}, "From": {"client:other"}, "Body": {"x"}}); code != 201 {
		t.Fatalf("send: %d %s", code, body)
	}
	today := time.Now().UTC().Format("2006-01-02")
	yesterday := time.Now().UTC().Add(-24 * time.Hour).Format("2006-01-02")
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"", 2},
		{"To=sip:bob@pbx.test", 1},
		{"From=client:other", 1},
		{"To=client:nobody", 0},
		{"DateSent=" + today, 1}, // only the delivered one was sent
		{"DateSent=" + yesterday, 0},
		{url.Values{"DateSent>": {yesterday}}.Encode(), 1},
		{url.Values{"DateSent<": {yesterday}}.Encode(), 0},
		{"PageSize=1", 1},
	} {
		code, body := m.rest(t, http.MethodGet, "/Messages.json?"+tc.query, nil)
		var page struct {
			Messages []map[string]any `json:"messages"`
		}
		if err := json.Unmarshal([]byte(body), &page); code != 200 || err != nil || len(page.Messages) != tc.want {
			t.Fatalf("list ?%s: %d, %d messages, want %d: %s", tc.query, code, len(page.Messages), tc.want, body)
		}
	}
	for _, tc := range []struct {
		method, path string
		form         url.Values
		want         int
	}{
		{"POST", "/Messages.json", url.Values{"To": {"client:bob"}, "Body": {"x"}}, 400},                            // no From
		{"POST", "/Messages.json", url.Values{"To": {"tel:+1555"}, "From": {"a"}, "Body": {"x"}}, 400},              // not a client
		{"POST", "/Messages.json", url.Values{"To": {"sip:bob@elsewhere.test"}, "From": {"a"}, "Body": {"x"}}, 400}, // not our domain
		{"POST", "/Messages.json", url.Values{"To": {"client:bob"}, "From": {"a"}, "Body": {strings.Repeat("x", 40000)}}, 400},
		{"POST", "/Messages.json", url.Values{"To": {"client:bob"}, "From": {"a"}, "Body": {"x"}, "Bogus": {"1"}}, 400},
		{"POST", "/Messages.json", url.Values{"To": {"client:bob"}, "From": {"a\r\nX-Evil: 1"}, "Body": {"x"}}, 400},
		{"GET", "/Messages.json?DateSent=yesterday", nil, 400},
		{"GET", "/Messages/SM00000000000000000000000000000000.json", nil, 404},
		{"GET", "/Messages/" + msgSid, nil, 404}, // no .json
	} {
		if code, body := m.rest(t, tc.method, tc.path, tc.form); code != tc.want {
			t.Fatalf("%s %s %v: %d %s, want %d", tc.method, tc.path, tc.form, code, body, tc.want)
		}
	}
}

// TestMessageToApplication: a MESSAGE to an application (by its sid, or to
// a SIP domain's messaging URL) is POSTed, signed, to the messaging URL;
// the <Message> of the reply goes back to the sender.
func TestMessageToApplication(t *testing.T) {
	m := startMsgServer(t, msgConfig(t), true)
	var mu sync.Mutex
	posted := map[string][]url.Values{} // by path
	v := twclient.NewRequestValidator(m.acct.AuthToken)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		p := map[string]string{}
		for k := range r.PostForm {
			p[k] = r.PostForm.Get(k)
		}
		if !v.Validate("http://"+r.Host+r.URL.RequestURI(), p, r.Header.Get("X-Twilio-Signature")) {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		mu.Lock()
		posted[r.URL.Path] = append(posted[r.URL.Path], r.PostForm)
		mu.Unlock()
		if r.URL.Path == "/delivered" {
			return // a status callback of the reply
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<Response><Message action="/delivered">You said: %s</Message></Response>`, r.PostForm.Get("Body"))
	}))
	defer app.Close()
	ctx := context.Background()
	st := m.s.Store()
	a, err := st.CreateApplication(ctx, store.Application{AccountSid: m.acct.Sid, FriendlyName: "sms", MessagingURL: app.URL + "/sms"})
	if err != nil {
		t.Fatal(err)
	}
	dom, err := st.SIPDomainByName(ctx, msgDomain)
	if err != nil {
		t.Fatal(err)
	}
	// The domain's messaging URL is set through the REST API.
	if code, body := m.rest(t, http.MethodPost, "/SIP/Domains/"+dom.Sid+".json", url.Values{"MessagingUrl": {app.URL + "/domain-sms"}}); code != 200 ||
		!strings.Contains(body, `"messaging_url":"`+app.URL+`/domain-sms"`) || !strings.Contains(body, `"messaging_method":"POST"`) {
		t.Fatalf("set the domain's messaging URL: %d %s", code, body)
	}
	numApp, err := st.CreateApplication(ctx, store.Application{AccountSid: m.acct.Sid, FriendlyName: "number", MessagingURL: app.URL + "/number-sms"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateIncomingNumber(ctx, store.IncomingNumber{AccountSid: m.acct.Sid, PhoneNumber: "+15550107000", ApplicationSid: numApp.Sid}); err != nil {
		t.Fatal(err)
	}
	alice := newSIPPhone(t, m, "tcp")
	alice.register("alice")
	for i, tc := range []struct{ name, ruri, to, path string }{
		{"application sid", "sip:" + a.Sid + "@" + msgDomain, "sip:" + a.Sid + "@" + msgDomain, "/sms"},
		{"domain messaging url", "sip:support@" + msgDomain, "sip:support@" + msgDomain, "/domain-sms"},
		{"incoming number", "sip:+15550107000@" + msgDomain, "+15550107000", "/number-sms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := fmt.Sprintf("hello app %d", i)
			res := alice.message("alice", tc.ruri, "text/plain", []byte(text))
			if res.StatusCode != 202 {
				t.Fatalf("MESSAGE to the application: %d %s", res.StatusCode, res.Reason)
			}
			reply := alice.next(5 * time.Second)
			if string(reply.Body()) != "You said: "+text {
				t.Fatalf("reply %q", reply.Body())
			}
			mu.Lock()
			if len(posted[tc.path]) != 1 {
				t.Fatalf("%s got %d posts", tc.path, len(posted[tc.path]))
			}
			p := posted[tc.path][0]
			mu.Unlock()
			for k, want := range map[string]string{"MessageSid": sidOf(res), "AccountSid": m.acct.Sid, "From": "sip:alice@pbx.test",
				"To": tc.to, "Body": text} {
				if p.Get(k) != want {
					t.Fatalf("webhook %s = %q, want %q (%v)", k, p.Get(k), want, p)
				}
			}
			if rec := m.message(t, sidOf(res)); rec["status"] != "received" || rec["direction"] != "inbound" {
				t.Fatalf("inbound record %v", rec)
			}
			_, body := m.rest(t, http.MethodGet, "/Messages.json?"+url.Values{"To": {"sip:alice@pbx.test"}}.Encode(), nil)
			if !strings.Contains(body, `"direction":"outbound-reply"`) || !strings.Contains(body, "You said: "+text) {
				t.Fatalf("reply record: %s", body)
			}
			// The reply's action is its status callback (relative to the messaging URL).
			deadline := time.Now().Add(5 * time.Second)
			for {
				mu.Lock()
				var delivered int
				for _, cb := range posted["/delivered"] {
					if cb.Get("MessageStatus") == "delivered" && cb.Get("To") == "sip:alice@pbx.test" {
						delivered++
					}
				}
				mu.Unlock()
				if delivered == i+1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("reply status callbacks: %d delivered", delivered)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestMessageToBaresip: a MESSAGE reaches a baresip registered as dave over
// UDP; baresip answers 200 and its menu module prints the text.
func TestMessageToBaresip(t *testing.T) {
	baresip, err := exec.LookPath("baresip")
	if err != nil {
		if os.Getenv("PARLEY_REQUIRE_PEERS") == "1" {
			t.Fatal("baresip not found and PARLEY_REQUIRE_PEERS=1: run `make deps`")
		}
		t.Skip("baresip not installed")
	}
	m := startMsgServer(t, msgConfig(t), true)
	ctx := context.Background()
	st := m.s.Store()
	lists, _, err := st.ListSIPCredentialLists(ctx, m.acct.Sid, store.Page{Size: 1})
	if err != nil || len(lists) == 0 {
		t.Fatalf("lists: %v", err)
	}
	const pw = "baresip-secret-1" // no spaces: baresip's account syntax
	if _, err := st.CreateSIPCredential(ctx, m.acct.Sid, lists[0].Sid, "dave", pw, m.s.sip.Realm()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	config := fmt.Sprintf("poll_method\t\tepoll\nsip_listen\t\t127.0.0.1:%d\nmodule_path\t\t/usr/lib/baresip/modules\n"+
		"module\t\tstdio.so\nmodule_app\t\taccount.so\nmodule_app\t\tmenu.so\naudio_player\t\tnil\naudio_source\t\tnil\naudio_alert\t\tnil\n", listen)
	account := fmt.Sprintf("<sip:dave@%s;transport=udp>;auth_pass=%s;outbound=\"sip:%s;transport=udp\";regint=120\n",
		msgDomain, pw, m.s.sip.Addr("udp").String())
	for name, body := range map[string]string{"config": config, "accounts": account, "contacts": "", "uuid": "00000000-0000-4000-8000-000000000042\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	cmd := exec.CommandContext(cctx, baresip, "-f", dir, "-t", "35")
	var out strings.Builder
	var mu sync.Mutex
	cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &out}, lockedWriter{&mu, &out}
	// stdio (the UI the menu module prints messages to) needs a pollable stdin.
	stdin, keep, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		keep.Close()
		if t.Failed() {
			mu.Lock()
			t.Logf("baresip output:\n%s", out.String())
			mu.Unlock()
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		bs, _ := m.s.registry.Bindings(ctx, m.acct.Sid, "sip:dave@"+msgDomain)
		if len(bs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("baresip did not register")
		}
		time.Sleep(50 * time.Millisecond)
	}
	alice := newSIPPhone(t, m, "udp")
	res := alice.message("alice", "sip:dave@"+msgDomain, "text/plain", []byte("hello baresip"))
	if res.StatusCode != 200 {
		t.Fatalf("MESSAGE to baresip: %d %s", res.StatusCode, res.Reason)
	}
	m.waitStatus(t, sidOf(res), "delivered")
	deadline = time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		shown := strings.Contains(out.String(), "hello baresip")
		mu.Unlock()
		if shown {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("baresip did not show the message")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestMessagesAdmissionAndUsage: messages are counted in usage (messages,
// messages-inbound, messages-outbound), and over the account's "messages"
// limit SIP answers 503 and REST 429, both with Retry-After.
func TestMessagesAdmissionAndUsage(t *testing.T) {
	m := startMsgServer(t, msgConfig(t), true)
	alice := newSIPPhone(t, m, "udp")
	if res := alice.message("alice", "sip:bob@pbx.test", "text/plain", []byte("one")); res.StatusCode != 202 {
		t.Fatalf("MESSAGE: %d", res.StatusCode)
	}
	if code, body := m.rest(t, http.MethodPost, "/Messages.json", url.Values{"To": {"client:bob"}, "From": {"client:ops"}, "Body": {"two"}}); code != 201 {
		t.Fatalf("send: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := m.rest(t, http.MethodGet, "/Usage/Records/AllTime.json?PageSize=1000", nil)
		var recs struct {
			Records []struct{ Category, Count string } `json:"usage_records"`
		}
		json.Unmarshal([]byte(body), &recs)
		got := map[string]string{}
		for _, r := range recs.Records {
			got[r.Category] = r.Count
		}
		if got["messages"] == "2" && got["messages-inbound"] == "1" && got["messages-outbound"] == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage %v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}

	if _, err := m.s.admission.SetLimit(context.Background(), m.acct.Sid, admission.ResourceMessages, 0); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		res := alice.message("alice", "sip:bob@pbx.test", "text/plain", []byte("refused"))
		if res.StatusCode == 503 {
			if res.GetHeader("Retry-After") == nil {
				t.Fatal("503 without Retry-After")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("MESSAGE over the limit: %d", res.StatusCode)
		}
		time.Sleep(200 * time.Millisecond) // leases held by the host run out
	}
	req, _ := http.NewRequest(http.MethodPost, m.base+"/2010-04-01/Accounts/"+m.acct.Sid+"/Messages.json",
		strings.NewReader(url.Values{"To": {"client:bob"}, "From": {"client:ops"}, "Body": {"refused"}}.Encode()))
	req.SetBasicAuth(m.acct.Sid, m.acct.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("REST over the limit: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
}

// TestBrowserSinkPlugsIn: bindings of another transport (the WebRTC
// gateway's sessions) are delivered through the sink registered for it;
// with no sink they are skipped and the message waits.
func TestBrowserSinkPlugsIn(t *testing.T) {
	m := startMsgServer(t, msgConfig(t), true)
	ctx := context.Background()
	_, err := m.s.registry.Apply(ctx, presence.Update{AccountSid: m.acct.Sid, Identity: "client:web", CallID: "session-1", CSeq: 1, Now: time.Now(),
		Contacts: []presence.Binding{{Key: "session-1", Contact: "session-1", Transport: messaging.TransportWebRTC, Expires: time.Now().Add(time.Hour)}}})
	if err != nil {
		t.Fatal(err)
	}
	send := func(text string) string {
		code, body := m.rest(t, http.MethodPost, "/Messages.json", url.Values{"To": {"client:web"}, "From": {"client:ops"}, "Body": {text}})
		if code != 201 {
			t.Fatalf("send: %d %s", code, body)
		}
		var out map[string]any
		json.Unmarshal([]byte(body), &out)
		return out["sid"].(string)
	}
	waiting := send("before the gateway")
	m.waitStatus(t, waiting, "queued")
	got := make(chan messaging.Delivery, 4)
	m.s.Messages().SetSink(messaging.TransportWebRTC, messaging.SinkFunc(func(ctx context.Context, b presence.Binding, d messaging.Delivery) error {
		if b.Identity != "client:web" || b.Key != "session-1" {
			return fmt.Errorf("wrong binding %+v", b)
		}
		got <- d
		return nil
	}))
	// The next sweep retries the queued message; a new one goes at once.
	for _, want := range []string{"before the gateway", "after"} {
		if want == "after" {
			send(want)
		}
		select {
		case d := <-got:
			if string(d.Body) != want || d.From != "client:ops" || d.To != "client:web" {
				t.Fatalf("delivery %+v", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("sink did not get %q", want)
		}
	}
	m.waitStatus(t, waiting, "delivered")
}

// BenchmarkSIPMessage measures client-to-client MESSAGEs through a whole
// server: Digest (challenge + retry) on every MESSAGE from alice over TCP,
// stored in SQLite, delivered to bob's TCP binding, answered 200.
// WORKERS (default 8) senders run at once; it reports messages/s and the
// latency of each MESSAGE including its challenge.
func BenchmarkSIPMessage(b *testing.B) {
	workers := 8
	if v := os.Getenv("WORKERS"); v != "" {
		fmt.Sscan(v, &workers)
	}
	cfg := testConfig(b)
	cfg.Log.Level = "error"
	m := startMsgServer(b, cfg, true)
	bob := newSIPPhone(b, m, "tcp")
	bob.register("bob")
	go func() {
		for range bob.got {
		}
	}()
	senders := make([]*sipPhone, workers)
	for i := range senders {
		senders[i] = newSIPPhone(b, m, "tcp")
	}
	lat := make([]time.Duration, b.N)
	var next, failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, p := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				t0 := time.Now()
				res := p.message("alice", "sip:bob@pbx.test", "text/plain", []byte("benchmark message"))
				lat[i] = time.Since(t0)
				if res.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(failed.Load()), "failed")
}

// TestSIPMessageFromTokenClient: a client authenticated by an access token
// (Bearer, RFC 8898) sends; the recipient sees it as client:<identity>.
func TestSIPMessageFromTokenClient(t *testing.T) {
	m := startMsgServer(t, msgConfig(t), true)
	bob := newSIPPhone(t, m, "tcp")
	bob.register("bob")
	carol := newSIPPhone(t, m, "tcp")
	res := carol.messageBearer(m.token(t, "carol"), "sip:bob@pbx.test", []byte("from a token client"))
	if res.StatusCode != 200 {
		t.Fatalf("MESSAGE: %d %s", res.StatusCode, res.Reason)
	}
	got := bob.next(5 * time.Second)
	if string(got.Body()) != "from a token client" || got.From().Address.User != "carol" {
		t.Fatalf("delivered %q from %s", got.Body(), got.From().Address.String())
	}
	if rec := m.message(t, sidOf(res)); rec["from"] != "client:carol" {
		t.Fatalf("record %v", rec)
	}
	if res := carol.messageBearer("not-a-token", "sip:bob@pbx.test", []byte("x")); res.StatusCode != 401 {
		t.Fatalf("bad token: %d", res.StatusCode)
	}
}

// TestMessageVerbOnCall: a <Message> in a call's instructions is sent to
// the caller (from the address it called) and the call goes on.
func TestMessageVerbOnCall(t *testing.T) {
	m := startMsgServer(t, msgConfig(t), true)
	var mu sync.Mutex
	var statuses []string
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.URL.Path == "/msg-status" {
			mu.Lock()
			statuses = append(statuses, r.PostForm.Get("MessageStatus"))
			mu.Unlock()
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<Response><Message action="/msg-status">We are closed; call me later</Message><Reject reason="busy"/></Response>`)
	}))
	defer app.Close()
	dom, err := m.s.Store().SIPDomainByName(context.Background(), msgDomain)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := m.rest(t, http.MethodPost, "/SIP/Domains/"+dom.Sid+".json", url.Values{"VoiceUrl": {app.URL + "/voice"}}); code != 200 {
		t.Fatalf("voice url: %d %s", code, body)
	}
	alice := newSIPPhone(t, m, "udp")
	alice.register("alice")
	req := alice.request(sip.INVITE, "alice", sip.Uri{Scheme: "sip", User: "support", Host: msgDomain})
	req.AppendHeader(sip.NewHeader("Contact", "<sip:alice@127.0.0.1:5999>"))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"))
	if res := alice.do(req, "alice"); res.StatusCode != 486 {
		t.Fatalf("INVITE: %d %s, want 486 (Reject busy after the Message)", res.StatusCode, res.Reason)
	}
	got := alice.next(5 * time.Second)
	if string(got.Body()) != "We are closed; call me later" || got.From().Address.User != "support" {
		t.Fatalf("delivered %q from %s", got.Body(), got.From().Address.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		s := strings.Join(statuses, ",")
		mu.Unlock()
		if s == "sending,delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("action callbacks %q", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
