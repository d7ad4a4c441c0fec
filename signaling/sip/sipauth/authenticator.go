package sipauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/presence/accesstoken"
	"github.com/parleyhq/parley/signaling/sip/internal/sipmsg"
)

// Credentials finds the Digest credential of a user of a SIP domain
// (server/store implements it). Errors wrap presence.ErrUnknownDomain,
// presence.ErrRegistrationDisabled or presence.ErrUnknownUser when the user
// cannot register.
type Credentials interface {
	DigestCredential(ctx context.Context, domain, username string) (presence.DigestCredential, error)
}

// TokenVerifier checks access tokens (*accesstoken.Verifier implements it).
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (accesstoken.Claims, error)
}

// Config is what authentication needs of the SIP server's configuration,
// with its defaults filled in and checked (sip.Config does that): zero
// values here are not defaults.
type Config struct {
	// Realm is the Digest realm.
	Realm string
	// DigestAlgorithms lists the challenges sent, in order of preference
	// (AlgMD5, AlgSHA256).
	DigestAlgorithms []string
	// NonceTTL is how long a nonce may be used; then the client is told
	// stale=true.
	NonceTTL time.Duration
	// AuthFailures failed authentications per source IP are allowed per
	// AuthFailureWindow; then the source gets 403 until its bucket refills.
	// Zero or negative disables the limit.
	AuthFailures      int
	AuthFailureWindow time.Duration
	// CredentialCacheTTL is how long a Digest credential lookup (or a
	// definite miss) is reused, and how old the credential index may grow;
	// zero or negative disables both.
	CredentialCacheTTL time.Duration
	// CredentialCacheSize bounds the cache (entries).
	CredentialCacheSize int
	// CredentialIndexSize bounds the credential index (credentials); zero
	// or negative disables it.
	CredentialIndexSize int
}

// Deps are the authenticator's collaborators.
type Deps struct {
	Credentials Credentials // a DomainCredentialSource too: the credential index is used
	Tokens      TokenVerifier
	Logger      *slog.Logger     // default slog.Default()
	Now         func() time.Time // default time.Now
	// OurAddress reports whether host:port (an IP literal) is one of the
	// server's listeners: a Digest uri may name it instead of the
	// Request-URI. Nil: none is.
	OurAddress func(host string, port int) bool
}

// Authenticator checks the credentials of SIP requests: Digest (MD5 and
// SHA-256, RFC 7616/8760) with per-challenge nonces and nonce-count replay
// tracking, against credentials found through a short-lived cache and an
// in-memory index of whole domains; or a Bearer access token (RFC 8898)
// through the token verifier. Failed attempts are limited per source IP.
type Authenticator struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	now     func() time.Time
	nonces  *nonces
	limiter *failLimiter
	creds   *credCache
	credIdx *credIndex // nil when Credentials cannot list domains or the cache is off
}

// New creates an authenticator. Credentials and Tokens are required.
func New(cfg Config, deps Deps) (*Authenticator, error) {
	if deps.Credentials == nil || deps.Tokens == nil {
		return nil, errors.New("sipauth: Credentials and Tokens are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	a := &Authenticator{cfg: cfg, deps: deps, log: deps.Logger, now: deps.Now,
		nonces:  newNonces(cfg.NonceTTL),
		limiter: newFailLimiter(cfg.AuthFailures, cfg.AuthFailureWindow),
	}
	gen := new(atomic.Uint64)
	a.creds = newCredCache(cfg.CredentialCacheTTL, cfg.CredentialCacheSize, gen)
	if src, ok := deps.Credentials.(DomainCredentialSource); ok && cfg.CredentialCacheTTL > 0 && cfg.CredentialIndexSize > 0 {
		a.credIdx = newCredIndex(src, cfg.CredentialCacheTTL, cfg.CredentialIndexSize, gen, a.now, a.log.Warn)
	}
	return a, nil
}

// Preload loads the credential index with every domain that accepts
// registrations, one after the other, until done or ctx ends; without an
// index it returns at once. The server runs it in the background at start.
func (a *Authenticator) Preload(ctx context.Context) {
	if a.credIdx != nil {
		a.credIdx.preload(ctx)
	}
}

// Sweep forgets nonces and failure counts that no longer matter, and keeps
// the credential index fresh; the server calls it every second.
func (a *Authenticator) Sweep(now time.Time) {
	a.nonces.sweep(now)
	a.limiter.sweep(now)
	if a.credIdx != nil {
		a.credIdx.sweep(now)
	}
}

// ForgetCredentials drops cached and indexed Digest credentials; call it
// after SIP credentials, credential lists or domains change so the change
// applies at once instead of after Config.CredentialCacheTTL. Domains in the
// credential index are reloaded in the background; until then their
// lookups go to the database.
func (a *Authenticator) ForgetCredentials() { a.creds.forget() }

// Principal is an authenticated user.
type Principal struct {
	AccountSid string
	Identity   string // "sip:<user>@<domain>" or "client:<identity>"
	Domain     string // Digest users
	Username   string // Digest users
	Bearer     bool
	// OutgoingApp is a token user's voice.outgoing.application_sid.
	OutgoingApp string
}

func validIdentity(id string) bool {
	if id == "" || len(id) > 256 {
		return false
	}
	for _, c := range id {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// Request is what authentication reads of a request.
type Request struct {
	Method        string
	Source        string // ip:port
	Authorization []string
	// The Request-URI, as sipgo writes it, and its host and port: the
	// Digest uri must name it.
	Recipient     string
	RecipientHost string
	RecipientPort int
}

// RequestOf reads a request sipgo parsed.
func RequestOf(req *sip.Request) Request {
	hdrs := req.GetHeaders("authorization")
	authz := make([]string, len(hdrs))
	for i, h := range hdrs {
		authz[i] = h.Value()
	}
	return Request{Method: string(req.Method), Source: req.Source(), Authorization: authz,
		Recipient: req.Recipient.String(), RecipientHost: req.Recipient.Host, RecipientPort: req.Recipient.Port}
}

// ReplyFunc answers the request being authenticated.
type ReplyFunc func(code int, reason string, extra ...sip.Header)

// Authenticate checks req's Authorization against domain (Digest) or an
// access token (Bearer). When it returns false it has answered through
// reply: a challenge (401), a refusal (400, 403) or 500.
func (a *Authenticator) Authenticate(ctx context.Context, req Request, domain string, reply ReplyFunc) (Principal, bool) {
	now := a.now()
	ip := req.Source
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	if a.limiter.blocked(ip, now) {
		reply(403, "Too Many Failed Authentications",
			sip.NewHeader("Retry-After", strconv.Itoa(int(a.cfg.AuthFailureWindow.Seconds()))))
		return Principal{}, false
	}
	fail := func(code int, reason string, extra ...sip.Header) (Principal, bool) {
		a.limiter.fail(ip, now)
		a.log.Info("sip authentication failed", "method", req.Method, "source", req.Source, "reason", reason)
		reply(code, reason, extra...)
		return Principal{}, false
	}
	if len(req.Authorization) == 0 {
		a.challenge(reply, false)
		return Principal{}, false
	}
	var digest map[string]string
	var bearer string
	for _, v := range req.Authorization {
		auth, err := parseAuthorization(v)
		if err != nil {
			return fail(400, "Malformed Authorization")
		}
		switch auth.Scheme {
		case "bearer":
			bearer = auth.Token
		case "digest":
			if auth.Params["realm"] == a.cfg.Realm || digest == nil {
				digest = auth.Params
			}
		}
	}
	if bearer != "" {
		claims, err := a.deps.Tokens.Verify(ctx, bearer)
		if err != nil {
			reason := accesstoken.Reason(err)
			if reason == "key_lookup" || reason == "" {
				a.log.Error("sip token verification failed", "error", err)
				reply(500, "Server Internal Error")
				return Principal{}, false
			}
			return fail(401, "Invalid Token ("+reason+")",
				sip.NewHeader("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%s, error="invalid_token"`, sipmsg.Quote(a.cfg.Realm))))
		}
		if req.Method == string(sip.MESSAGE) {
			// A client may message with either grant: it is reachable, or it may call out.
			if !claims.Grants.IncomingAllowed() && claims.Grants.OutgoingApplication() == "" {
				return fail(403, "Token Grants Neither Incoming Nor Outgoing",
					sip.NewHeader("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%s, error="insufficient_scope"`, sipmsg.Quote(a.cfg.Realm))))
			}
		} else if req.Method == string(sip.INVITE) {
			// Placing a call needs the outgoing grant; being reachable needs incoming.
			if claims.Grants.OutgoingApplication() == "" {
				return fail(403, "Token Does Not Allow Outgoing Calls",
					sip.NewHeader("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%s, error="insufficient_scope"`, sipmsg.Quote(a.cfg.Realm))))
			}
		} else if !claims.Grants.IncomingAllowed() {
			return fail(403, "Token Does Not Allow Incoming Calls",
				sip.NewHeader("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%s, error="insufficient_scope"`, sipmsg.Quote(a.cfg.Realm))))
		}
		if !validIdentity(claims.Grants.Identity) {
			return fail(403, "Token Has No Valid Identity")
		}
		return Principal{AccountSid: claims.AccountSid, Identity: presence.ClientIdentity(claims.Grants.Identity), Bearer: true,
			OutgoingApp: claims.Grants.OutgoingApplication()}, true
	}
	if digest == nil {
		a.challenge(reply, false)
		return Principal{}, false
	}
	if digest["realm"] != a.cfg.Realm {
		a.challenge(reply, false)
		return Principal{}, false
	}
	if u := digest["uri"]; !strings.EqualFold(strings.TrimSpace(u), req.Recipient) {
		var parsed sip.Uri
		// Some clients (SIPp) put the address they sent to in the digest uri.
		perr := sip.ParseUri(u, &parsed)
		sameURI := strings.EqualFold(parsed.Host, req.RecipientHost) && parsed.Port == req.RecipientPort
		if perr != nil || !sameURI && !a.ourAddress(parsed.Host, parsed.Port) {
			a.log.Info("sip digest uri mismatch", "uri", u, "request_uri", req.Recipient)
			return fail(400, "Digest URI Does Not Match Request-URI")
		}
	}
	username := digest["username"]
	cred, err := a.credential(ctx, domain, username, now)
	switch {
	case errors.Is(err, presence.ErrUnknownDomain):
		return fail(403, "Domain Not Served")
	case errors.Is(err, presence.ErrRegistrationDisabled):
		return fail(403, "Registration Disabled")
	case errors.Is(err, presence.ErrUnknownUser):
		return fail(403, "Forbidden")
	case err != nil:
		a.log.Error("sip credential lookup failed", "domain", domain, "error", err)
		reply(500, "Server Internal Error")
		return Principal{}, false
	}
	err = a.nonces.verifyDigest(digest, cred, digestRequest{Method: req.Method, Realm: a.cfg.Realm, Now: now})
	switch {
	case err == nil:
	case errors.Is(err, errDigestStale), errors.Is(err, errDigestNonce):
		// Right password with an old nonce, or a nonce from before a restart:
		// let the client retry without asking its user.
		a.challenge(reply, true)
		return Principal{}, false
	case errors.Is(err, errDigestReplay):
		return fail(403, "Nonce Replayed")
	case errors.Is(err, errDigestParams), errors.Is(err, errDigestAlgorithm):
		return fail(400, "Bad Digest Credentials")
	default:
		return fail(403, "Forbidden")
	}
	return Principal{AccountSid: cred.AccountSid, Identity: presence.SIPIdentity(username, domain), Domain: strings.ToLower(domain), Username: username}, true
}

func (a *Authenticator) ourAddress(host string, port int) bool {
	return a.deps.OurAddress != nil && a.deps.OurAddress(host, port)
}

// challenge answers 401 with one Digest challenge per configured algorithm.
func (a *Authenticator) challenge(reply ReplyFunc, stale bool) {
	nonce := a.nonces.issue(a.now())
	hdrs := make([]sip.Header, 0, len(a.cfg.DigestAlgorithms))
	for _, alg := range a.cfg.DigestAlgorithms {
		hdrs = append(hdrs, sip.NewHeader("WWW-Authenticate", challenge(a.cfg.Realm, nonce, alg, stale)))
	}
	reply(401, "Unauthorized", hdrs...)
}

// credential finds the Digest credential of user in domain: from the
// credential index when the domain is loaded, else from the database
// through credCache.
func (a *Authenticator) credential(ctx context.Context, domain, user string, now time.Time) (presence.DigestCredential, error) {
	if a.credIdx != nil {
		if cred, err, ok := a.credIdx.lookup(domain, user, now); ok {
			return cred, err
		}
	}
	return a.creds.lookup(ctx, a.deps.Credentials, domain, user, now)
}
