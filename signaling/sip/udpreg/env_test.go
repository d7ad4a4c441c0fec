package udpreg

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/presence/accesstoken"
	"github.com/parleyhq/parley/signaling/sip/internal/reqctx"
	"github.com/parleyhq/parley/signaling/sip/internal/sipmsg"
	"github.com/parleyhq/parley/signaling/sip/registrar"
	"github.com/parleyhq/parley/signaling/sip/sipauth"
	"github.com/parleyhq/parley/store"
)

const (
	testDomain   = "pbx.test" // never resolved: every request goes to an explicit loopback address
	testPassword = "correct-horse-battery"
	testServer   = "Parley" // the Server header
)

// clock is a settable clock shared by the path, the registrar and the registry.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

func testLogger() *slog.Logger {
	if os.Getenv("PARLEY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// env is the stateless path as the SIP server runs it, on a UDP socket on
// loopback: a real SQLite store seeded with an account, a key and the users
// alice, bob and carol of pbx.test, the in-memory registry writing behind
// to it, the authenticator and the registrar. What the path leaves to sipgo
// is served as the server serves it (checks, then the registrar); datagrams
// that are not REGISTERs, which sipgo would have, are read and dropped.
type env struct {
	t         testing.TB
	st        *store.Store
	reg       *presence.Memory
	auth      *sipauth.Authenticator
	registrar *registrar.Registrar
	deps      Deps
	udp       *Stateless
	pc        net.PacketConn
	clk       *clock
	acc       store.Account
	key       store.APIKey
}

// newEnv starts the path on listen ("" for 127.0.0.1:0).
func newEnv(t testing.TB, listen string) *env {
	t.Helper()
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, clk: &clock{}}
	e.seed(ctx)
	log := testLogger()
	e.reg, err = presence.NewMemory(ctx, presence.MemoryConfig{Persister: st, FlushInterval: 20 * time.Millisecond, Now: e.clk.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.auth, err = sipauth.New(sipauth.Config{Realm: "parley", DigestAlgorithms: []string{sipauth.AlgMD5}, NonceTTL: 5 * time.Minute,
		AuthFailures: 20, AuthFailureWindow: time.Minute,
		CredentialCacheTTL: 30 * time.Second, CredentialCacheSize: 200000, CredentialIndexSize: 1000000},
		sipauth.Deps{Credentials: st, Tokens: &accesstoken.Verifier{Keys: st, Now: e.clk.Now}, Logger: log, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.pc, err = net.ListenPacket("udp", listen)
	if err != nil {
		t.Fatal(err)
	}
	if uc, ok := e.pc.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(4 << 20) // sip.Config's default
	}
	e.registrar, err = registrar.New(registrar.Config{MinExpires: 60, MaxExpires: 3600, DefaultExpires: 3600},
		registrar.Deps{Auth: e.auth, Registry: e.reg, Logger: log, Now: e.clk.Now,
			// As the server's: the listener's address, written per request.
			Local: func(string) string { return e.pc.LocalAddr().String() }, FlowAlive: func(string) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	e.deps = Deps{Registrar: e.registrar, Serve: e.serve, Logger: log, Now: e.clk.Now}
	if e.udp, err = New(e.pc, testServer, e.deps); err != nil {
		t.Fatal(err)
	}
	conn := NewConn(e.pc, e.udp, testServer, log)

	regDone, readDone, sweepDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() { e.reg.Run(ctx); close(regDone) }()
	go e.auth.Preload(ctx)
	go func() {
		defer close(readDone)
		buf := make([]byte, 65535)
		for {
			if _, _, err := conn.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	go func() {
		defer close(sweepDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				now := e.clk.Now()
				e.auth.Sweep(now)
				e.udp.Sweep(now)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		e.udp.Close()
		e.pc.Close()
		for _, done := range []chan struct{}{regDone, readDone, sweepDone} {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("the environment did not stop")
			}
		}
		st.Close()
	})
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

// serve is Deps.Serve as the SIP server's (sip.Server.serveUDPRegister):
// the request checks, then the registrar, answering on tx.
func (e *env) serve(req *sip.Request, tx Responder) {
	if p := sipmsg.Validate(req); p != nil {
		respond(tx, req, p.Code, p.Reason)
		return
	}
	r := registrar.RequestOf(req, "udp", "")
	ctx := reqctx.New()
	defer ctx.Cancel()
	e.registrar.Register(ctx, &r, func(code int, reason string, extra ...sip.Header) {
		respond(tx, req, code, reason, extra...)
	})
}

// respond is the SIP server's respond: the path renders its responses to
// REGISTERs itself.
func respond(tx Responder, req *sip.Request, code int, reason string, extra ...sip.Header) {
	if r, ok := tx.(interface {
		Reply(req *sip.Request, code int, reason string, extra []sip.Header) error
	}); ok {
		_ = r.Reply(req, code, reason, extra)
		return
	}
	_ = tx.Respond(sipmsg.Response(req, code, reason, testServer, extra...))
}

func (e *env) addr() string { return e.pc.LocalAddr().String() }

func (e *env) token(identity string, incoming bool, ttl time.Duration) string {
	tok, err := accesstoken.Mint(accesstoken.MintParams{AccountSid: e.acc.Sid, KeySid: e.key.Sid, Secret: e.key.Secret,
		Identity: identity, Incoming: incoming, TTL: ttl, Now: e.clk.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}
