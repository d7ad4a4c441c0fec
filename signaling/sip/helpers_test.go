package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/presence/accesstoken"
	"github.com/parleyhq/parley/store"
)

const (
	testDomain   = "pbx.test" // never resolved: every request carries an explicit loopback destination
	testPassword = "correct-horse-battery"
)

// clock is a settable clock shared by the server and the registry.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

type env struct {
	t       testing.TB
	dbPath  string
	st      *store.Store
	reg     *presence.Memory
	srv     *Server
	clk     *clock
	acc     store.Account
	key     store.APIKey
	cancel  context.CancelFunc
	stopped chan struct{}
	// recordings is where a call env keeps <Record> WAV files.
	recordings string
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("PARLEY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(discard{}, nil))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func loopbackConfig() Config {
	cfg := DefaultConfig()
	cfg.UDP, cfg.TCP, cfg.TLS, cfg.WS, cfg.WSS = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Hostname = "127.0.0.1"
	return cfg
}

// newEnv opens a store in dbPath (a fresh temp file when ""), seeds an account
// with domain pbx.test and users alice, bob and carol, and starts a registry
// and a server on loopback.
func newEnv(t testing.TB, dbPath string, mutate func(*Config)) *env {
	t.Helper()
	return newEnvWith(t, dbPath, mutate, nil, nil)
}

// newEnvWith is newEnv with deps completing the server's Deps before it is
// created, and built called once it is, before it listens.
func newEnvWith(t testing.TB, dbPath string, mutate func(*Config), deps func(*env, *Deps), built func(*env)) *env {
	t.Helper()
	ctx := context.Background()
	if dbPath == "" {
		dbPath = filepath.Join(t.TempDir(), "core.db")
	}
	st, err := store.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dbPath: dbPath, st: st, clk: &clock{}}
	accs, _, err := st.ListAccounts(ctx, store.AccountFilter{}, store.Page{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(accs) == 0 {
		e.seed(ctx)
	} else {
		e.acc = accs[0]
		keys, _, err := st.ListKeys(ctx, e.acc.Sid, store.Page{Size: 1})
		if err != nil || len(keys) == 0 {
			t.Fatalf("keys: %v", err)
		}
		e.key, _ = st.Key(ctx, keys[0].Sid)
	}
	e.reg, err = presence.NewMemory(ctx, presence.MemoryConfig{Persister: st, FlushInterval: 20 * time.Millisecond, Now: e.clk.Now, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := loopbackConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	d := Deps{
		Credentials: st,
		Tokens:      &accesstoken.Verifier{Keys: st, Now: e.clk.Now},
		Registry:    e.reg,
		Logger:      testLogger(t),
		Now:         e.clk.Now,
	}
	if deps != nil {
		deps(e, &d)
	}
	e.srv, err = New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	if built != nil {
		built(e)
	}
	if err := e.srv.Listen(); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	e.cancel = cancel
	e.stopped = make(chan struct{})
	go func() {
		defer close(e.stopped)
		regDone := make(chan struct{})
		go func() { e.reg.Run(rctx); close(regDone) }()
		if err := e.srv.Run(rctx); err != nil {
			t.Errorf("server run: %v", err)
		}
		<-regDone
	}()
	t.Cleanup(e.stop)
	return e
}

func (e *env) seed(ctx context.Context) {
	t := e.t
	var err error
	if e.acc, err = e.st.CreateAccount(ctx, store.NewAccount{FriendlyName: "test"}); err != nil {
		t.Fatal(err)
	}
	if e.key, err = e.st.CreateKey(ctx, e.acc.Sid, "k"); err != nil {
		t.Fatal(err)
	}
	dom, err := e.st.CreateSIPDomain(ctx, e.acc.Sid, store.NewSIPDomain{DomainName: testDomain, RegistrationEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	list, err := e.st.CreateSIPCredentialList(ctx, e.acc.Sid, "users")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		if _, err := e.st.CreateSIPCredential(ctx, e.acc.Sid, list.Sid, u, testPassword, "parley"); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.st.MapSIPCredentialList(ctx, e.acc.Sid, dom.Sid, list.Sid); err != nil {
		t.Fatal(err)
	}
}

// stop shuts the server and registry down (flushing bindings) and closes the store.
func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	select {
	case <-e.stopped:
	case <-time.After(10 * time.Second):
		e.t.Error("server did not stop")
	}
	e.cancel = nil
	e.st.Close()
}

func (e *env) addr(transport string) string { return e.srv.Addr(transport).String() }

// client is a sipgo user agent that talks to the env over one transport and
// answers requests sent back to it.
type client struct {
	t         testing.TB
	e         *env
	transport string
	ua        *sipgo.UserAgent
	c         *sipgo.Client
	srv       *sipgo.Server
	callID    string
	cseq      uint32
	mu        sync.Mutex
	received  []*sip.Request
	notify    chan *sip.Request
}

func (e *env) newClient(transport string) *client {
	t := e.t
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-ua"),
		sipgo.WithUserAgenTLSConfig(&tls.Config{InsecureSkipVerify: true}),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(testLogger(t))),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(testLogger(t))))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	cl := &client{t: t, e: e, transport: transport, ua: ua, c: c, srv: srv, callID: sip.GenerateTagN(20), cseq: 1, notify: make(chan *sip.Request, 16)}
	record := func(req *sip.Request, tx sip.ServerTransaction) {
		cl.mu.Lock()
		cl.received = append(cl.received, req)
		cl.mu.Unlock()
		if req.Method == sip.NOTIFY {
			select {
			case cl.notify <- req:
			default:
			}
		}
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	}
	srv.OnOptions(record)
	srv.OnNotify(record)
	t.Cleanup(func() { ua.Close() })
	return cl
}

// request builds a request to the env over the client's transport.
func (c *client) request(method sip.RequestMethod, user string, recipient sip.Uri) *sip.Request {
	req := sip.NewRequest(method, recipient)
	req.SetTransport(strings.ToUpper(c.transport))
	req.SetDestination(c.e.addr(c.transport))
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: testDomain}, Params: sip.NewParams()}
	from.Params.Add("tag", "ft"+c.callID[:6])
	req.AppendHeader(from)
	if method == sip.REGISTER {
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: testDomain}})
	}
	cid := sip.CallIDHeader(c.callID)
	req.AppendHeader(&cid)
	c.cseq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: c.cseq, MethodName: method})
	return req
}

// register sends a REGISTER for user with the given Contact values and
// headers, answering a Digest challenge with password.
func (c *client) register(user, password string, contacts []string, headers ...sip.Header) *sip.Response {
	c.t.Helper()
	req := c.request(sip.REGISTER, user, sip.Uri{Scheme: "sip", Host: testDomain})
	for _, v := range contacts {
		req.AppendHeader(sip.NewHeader("Contact", v))
	}
	for _, h := range headers {
		req.AppendHeader(h)
	}
	return c.do(req, user, password)
}

func (c *client) do(req *sip.Request, user, password string) *sip.Response {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.c.Do(ctx, req)
	if err != nil {
		c.t.Fatalf("%s: %v", req.Method, err)
	}
	if res.StatusCode == 401 && password != "" && req.GetHeader("Authorization") == nil {
		res, err = c.c.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: password})
		if err != nil {
			c.t.Fatalf("%s with digest: %v", req.Method, err)
		}
		c.cseq = req.CSeq().SeqNo
	}
	return res
}

// raw sends a prepared request once without digest handling.
func (c *client) raw(req *sip.Request) *sip.Response {
	c.t.Helper()
	return c.do(req, "", "")
}

func contactsOf(res *sip.Response) []string {
	var out []string
	for _, h := range res.GetHeaders("Contact") {
		out = append(out, h.Value())
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func (e *env) bindings(identity string) []presence.Binding {
	bs, err := e.reg.Bindings(context.Background(), e.acc.Sid, identity)
	if err != nil {
		e.t.Fatal(err)
	}
	return bs
}

func (e *env) token(identity string, incoming bool, ttl time.Duration) string {
	tok, err := accesstoken.Mint(accesstoken.MintParams{AccountSid: e.acc.Sid, KeySid: e.key.Sid, Secret: e.key.Secret,
		Identity: identity, Incoming: incoming, TTL: ttl, Now: e.clk.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

var errTimeout = errors.New("timeout")

func (c *client) nextNotify(d time.Duration) (*sip.Request, error) {
	select {
	case r := <-c.notify:
		return r, nil
	case <-time.After(d):
		return nil, errTimeout
	}
}
