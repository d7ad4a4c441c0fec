package sipauth

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/presence"
)

// DomainCredentialSource is implemented by Credentials that can read a whole
// SIP domain at once (server/store's SIPCredentials does). With it the
// Authenticator keeps an in-memory credential index per domain (credIndex), so
// that a first REGISTER of a user costs no database query.
type DomainCredentialSource interface {
	// DomainDigestCredentials calls each once per username of domain and
	// returns the domain's account. Errors wrap presence.ErrUnknownDomain
	// or presence.ErrRegistrationDisabled like DigestCredential's, and
	// presence.ErrTooManyCredentials when the domain has more than max.
	DomainDigestCredentials(ctx context.Context, domain string, max int, each func(presence.DigestCredential)) (accountSid string, err error)
	// RegistrationDomains lists the domains to load at start.
	RegistrationDomains(ctx context.Context) ([]string, error)
}

// credIndex answers Digest credential lookups from memory: one snapshot per
// SIP domain, loaded in the background (at start for every domain that
// accepts registrations, otherwise at the first REGISTER to it) and
// replaced:
//
//   - at once after forget (Authenticator.ForgetCredentials, through sip's
//     Server.ForgetCredentials, which the REST API and the CLI, through the
//     control socket, call after every change to domains, credential
//     lists, mappings or credentials): every snapshot
//     taken before is unusable from that moment, and lookups go to the
//     database (through credCache) until the domain is reloaded;
//   - when older than maxAge (Config.CredentialCacheTTL): changes nobody
//     announces (an account suspended) take effect within maxAge, as with
//     credCache. The reload starts at 3/4 of maxAge, so a domain normally
//     never leaves the index.
//
// Memory is bounded by max credentials over all domains (about 250 bytes
// each, ≈ 24 MB for 100 000 users: the HA1 values are kept as bytes, not
// hex); a domain that does not fit, and
// any domain while it is not loaded, is served by the database lookup and
// credCache as before. At most maxDomains domains (including unknown names,
// which are remembered as such) are held.
type credIndex struct {
	src        DomainCredentialSource
	maxAge     time.Duration
	max        int
	maxDomains int
	log        func(msg string, args ...any)
	now        func() time.Time
	gen        *atomic.Uint64 // bumped by forget; shared with credCache

	mu      sync.RWMutex
	domains map[string]*domainCreds
	total   int // credentials held
	loading map[string]bool
}

// domainCreds is one domain's snapshot.
type domainCreds struct {
	gen     uint64    // the generation it was read in
	loaded  time.Time // when the read started
	err     error     // ErrUnknownDomain or ErrRegistrationDisabled: no users (remembered so that it is not reloaded at every REGISTER)
	tooBig  bool      // not indexed: lookups use the database
	account string
	domain  string
	users   map[string]userCred
	used    atomic.Bool // looked up since loaded: sweep keeps it fresh
}

type userCred struct {
	realm  string // shared between the users of a realm
	md5    [16]byte
	sha256 [32]byte
	has    uint8 // hasMD5 | hasSHA256
}

const (
	hasMD5 = 1 << iota
	hasSHA256
)

func newCredIndex(src DomainCredentialSource, maxAge time.Duration, max int, gen *atomic.Uint64, now func() time.Time, log func(string, ...any)) *credIndex {
	return &credIndex{src: src, maxAge: maxAge, max: max, maxDomains: 10000, gen: gen, now: now, log: log,
		domains: map[string]*domainCreds{}, loading: map[string]bool{}}
}

// lookup answers from the index; ok is false when the caller must ask the
// database (the domain is not loaded, stale or too big, or the user is not
// in it).
func (x *credIndex) lookup(domain, user string, now time.Time) (cred presence.DigestCredential, err error, ok bool) {
	domain = strings.ToLower(domain)
	x.mu.RLock()
	d := x.domains[domain]
	var u userCred
	var found bool
	if d != nil && d.users != nil {
		u, found = d.users[user]
	}
	x.mu.RUnlock()
	gen := x.gen.Load()
	if d == nil || d.gen != gen {
		x.refresh(domain)
		return cred, nil, false
	}
	if !d.used.Load() {
		d.used.Store(true)
	}
	age := now.Sub(d.loaded)
	if age >= x.maxAge*3/4 {
		x.refresh(domain)
	}
	// Only hits are answered here. A miss (unknown user or domain,
	// registration disabled) goes to the database through credCache, as
	// before the index: a user added without ForgetCredentials being
	// called can still register, and floods of wrong names are what the
	// failed-authentication limit is for.
	if age >= x.maxAge || d.tooBig || d.err != nil || !found {
		return cred, nil, false
	}
	cred = presence.DigestCredential{AccountSid: d.account, Domain: d.domain, Username: user, Realm: u.realm}
	if u.has&hasMD5 != 0 {
		cred.HA1MD5 = hex.EncodeToString(u.md5[:])
	}
	if u.has&hasSHA256 != 0 {
		cred.HA1SHA256 = hex.EncodeToString(u.sha256[:])
	}
	return cred, nil, true
}

// refresh starts loading domain in the background unless it is already
// being loaded. Loads run one at a time: a burst of REGISTERs to many
// unknown domains costs one query at a time, the rest use the database path.
func (x *credIndex) refresh(domain string) {
	x.mu.Lock()
	if len(x.loading) > 0 {
		x.mu.Unlock()
		return
	}
	if _, held := x.domains[domain]; !held && len(x.domains) >= x.maxDomains {
		x.mu.Unlock()
		return
	}
	x.loading[domain] = true
	x.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		x.load(ctx, domain)
	}()
}

// load reads domain and installs its snapshot (x.loading[domain] set).
func (x *credIndex) load(ctx context.Context, domain string) {
	defer func() {
		x.mu.Lock()
		delete(x.loading, domain)
		x.mu.Unlock()
	}()
	// Read the generation first: a forget during the read makes this
	// snapshot stale at once.
	d := &domainCreds{gen: x.gen.Load(), loaded: x.now(), domain: domain}
	x.mu.RLock()
	budget := x.max - x.total
	if old := x.domains[domain]; old != nil {
		budget += len(old.users)
	}
	x.mu.RUnlock()
	realms := map[string]string{}
	users := map[string]userCred{}
	account, err := x.src.DomainDigestCredentials(ctx, domain, max(budget, 0), func(c presence.DigestCredential) {
		realm, ok := realms[c.Realm]
		if !ok {
			realm = strings.Clone(c.Realm)
			realms[realm] = realm
		}
		u := userCred{realm: realm}
		if n, err := hex.Decode(u.md5[:], []byte(c.HA1MD5)); err == nil && n == len(u.md5) && len(c.HA1MD5) == 2*n {
			u.has |= hasMD5
		}
		if n, err := hex.Decode(u.sha256[:], []byte(c.HA1SHA256)); err == nil && n == len(u.sha256) && len(c.HA1SHA256) == 2*n {
			u.has |= hasSHA256
		}
		users[c.Username] = u
	})
	switch {
	case err == nil:
		d.account, d.users = account, users
	case errors.Is(err, presence.ErrUnknownDomain), errors.Is(err, presence.ErrRegistrationDisabled):
		d.err = err
	case errors.Is(err, presence.ErrTooManyCredentials):
		d.tooBig = true
		x.log("sip credential index: domain left to database lookups", "domain", domain, "error", err)
	default:
		x.log("sip credential index: loading a domain failed; using database lookups", "domain", domain, "error", err)
		return
	}
	x.mu.Lock()
	if old := x.domains[domain]; old != nil {
		x.total -= len(old.users)
	}
	x.domains[domain] = d
	x.total += len(d.users)
	x.mu.Unlock()
}

// preload loads every domain src lists, one after the other.
func (x *credIndex) preload(ctx context.Context) {
	domains, err := x.src.RegistrationDomains(ctx)
	if err != nil {
		x.log("sip credential index: listing domains failed", "error", err)
		return
	}
	for _, d := range domains {
		d = strings.ToLower(d)
		x.mu.Lock()
		busy := x.loading[d]
		if !busy {
			x.loading[d] = true
		}
		x.mu.Unlock()
		if !busy {
			x.load(ctx, d)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// sweep (every second) reloads a domain that was looked up since it was
// loaded and is stale or nearly so, so that a domain in use never drops out
// of the index between REGISTERs; and it drops snapshots that can no longer
// answer (stale generation or too old), so that domains nobody registers to
// any more do not hold memory.
func (x *credIndex) sweep(now time.Time) {
	gen := x.gen.Load()
	var reload string
	x.mu.Lock()
	for name, d := range x.domains {
		age := now.Sub(d.loaded)
		if d.gen != gen && age >= x.maxAge || age >= 2*x.maxAge {
			x.total -= len(d.users)
			delete(x.domains, name)
			continue
		}
		if reload == "" && d.used.Load() && (d.gen != gen || age >= x.maxAge*3/4) {
			reload = name
		}
	}
	x.mu.Unlock()
	if reload != "" {
		x.refresh(reload) // one at a time; the next sweep takes the next
	}
}

// size returns the domains and credentials held.
func (x *credIndex) size() (domains, credentials int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.domains), x.total
}
