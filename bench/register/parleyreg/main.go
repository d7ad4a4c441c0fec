// Command parleyreg runs Parley's registrar alone for the REGISTER benchmark
// (bench/register/run.sh): it seeds a SIP domain with numbered users in a
// fresh SQLite file and serves UDP until interrupted. It exists because the
// benchmark must not depend on the rest of `parley serve`. With -tokens it
// also creates an API key and writes one access token per user (identity
// u000001 …, voice incoming grant) to a SIPp injection file, for Bearer
// registrations.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/presence/accesstoken"
	sipserver "github.com/parleyhq/parley/signaling/sip"
	"github.com/parleyhq/parley/store"
)

func main() {
	addr := flag.String("udp", "127.0.0.1:5080", "UDP listen address")
	users := flag.Int("users", 100000, "users to create: u000001 … uNNNNNN")
	password := flag.String("password", "bench-password", "password of every user")
	domain := flag.String("domain", "bench.test", "SIP domain")
	dir := flag.String("dir", "", "data directory (default: a temp dir)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this loopback address")
	tokens := flag.String("tokens", "", "also write a SIPp injection file of access tokens (user;token;domain) here")
	flag.Parse()
	if *pprofAddr != "" {
		go func() { fmt.Fprintln(os.Stderr, http.ListenAndServe(*pprofAddr, nil)) }()
	}
	if err := run(*addr, *users, *password, *domain, *dir, *tokens); err != nil {
		fmt.Fprintln(os.Stderr, "parleyreg:", err)
		os.Exit(1)
	}
}

func run(addr string, users int, password, domain, dir, tokens string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dir == "" {
		d, err := os.MkdirTemp("", "parleyreg")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	st, err := store.Open(ctx, filepath.Join(dir, "core.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	start := time.Now()
	acc, err := seed(ctx, st, users, password, domain)
	if err != nil {
		return err
	}
	if tokens != "" {
		if err := writeTokens(ctx, st, acc, users, domain, tokens); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "parleyreg: seeded %d users in %s\n", users, time.Since(start).Round(time.Millisecond))
	reg, err := presence.NewMemory(ctx, presence.MemoryConfig{Persister: st, Logger: log})
	if err != nil {
		return err
	}
	cfg := sipserver.DefaultConfig()
	cfg.UDP, cfg.TCP, cfg.TLS, cfg.WS, cfg.WSS = addr, "", "", "", ""
	cfg.AuthFailures = -1 // SIPp sends everything from one address
	creds, err := st.SIPCredentials(ctx)
	if err != nil {
		return err
	}
	defer creds.Close()
	srv, err := sipserver.New(cfg, sipserver.Deps{Credentials: creds, Tokens: &accesstoken.Verifier{Keys: st}, Registry: reg, Logger: log})
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	regDone := make(chan error, 1)
	go func() { regDone <- reg.Run(ctx) }()
	fmt.Println("ready")
	err = srv.Run(ctx)
	<-regDone
	fmt.Fprintf(os.Stderr, "parleyreg: %d bindings at exit\n", reg.Len())
	return err
}

// seed creates the account, its SIP domain and one Digest user per number.
func seed(ctx context.Context, st *store.Store, users int, password, domain string) (string, error) {
	acc, err := st.CreateAccount(ctx, store.NewAccount{FriendlyName: "bench"})
	if err != nil {
		return "", err
	}
	dom, err := st.CreateSIPDomain(ctx, acc.Sid, store.NewSIPDomain{DomainName: domain, RegistrationEnabled: true})
	if err != nil {
		return "", err
	}
	list, err := st.CreateSIPCredentialList(ctx, acc.Sid, "bench")
	if err != nil {
		return "", err
	}
	if err := st.MapSIPCredentialList(ctx, acc.Sid, dom.Sid, list.Sid); err != nil {
		return "", err
	}
	if _, err := st.W.ExecContext(ctx, "BEGIN"); err != nil {
		return "", err
	}
	for i := 1; i <= users; i++ {
		if _, err := st.CreateSIPCredential(ctx, acc.Sid, list.Sid, fmt.Sprintf("u%06d", i), password, "parley"); err != nil {
			st.W.ExecContext(ctx, "ROLLBACK")
			return "", err
		}
	}
	_, err = st.W.ExecContext(ctx, "COMMIT")
	return acc.Sid, err
}

// writeTokens mints one 24-hour token per user with a new API key of the
// account and writes them as SIPp injection lines "u000001;<token>;domain".
func writeTokens(ctx context.Context, st *store.Store, accountSid string, users int, domain, file string) error {
	key, err := st.CreateKey(ctx, accountSid, "bench")
	if err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "SEQUENTIAL")
	now := time.Now()
	for i := 1; i <= users; i++ {
		user := fmt.Sprintf("u%06d", i)
		tok, err := accesstoken.Mint(accesstoken.MintParams{AccountSid: accountSid, KeySid: key.Sid, Secret: key.Secret,
			Identity: user, Incoming: true, TTL: accesstoken.MaxTTL, Now: now})
		if err != nil {
			f.Close()
			return err
		}
		fmt.Fprintf(w, "%s;%s;%s\n", user, tok, domain)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
