package sipauth

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/signaling/sip/internal/sipmsg"
)

// Digest algorithms (RFC 7616 / RFC 8760).
const (
	AlgMD5        = "MD5"
	AlgSHA256     = "SHA-256"
	algMD5Sess    = "MD5-sess"
	algSHA256Sess = "SHA-256-sess"
)

// Digest verification outcomes.
var (
	errDigestStale     = errors.New("nonce expired")
	errDigestNonce     = errors.New("nonce not issued by this server")
	errDigestReplay    = errors.New("nonce count replayed")
	errDigestMismatch  = errors.New("wrong digest response")
	errDigestParams    = errors.New("incomplete digest credentials")
	errDigestAlgorithm = errors.New("unsupported digest algorithm")
	errDigestRealm     = errors.New("wrong realm")
)

// nonces issues and checks per-challenge nonces. A nonce is
// base64url(issued-unix-nanos | 8 random bytes | HMAC-SHA256 tag): it needs no
// state until first used; after that its highest nonce-count is remembered
// until it expires, so a response cannot be replayed.
type nonces struct {
	key  [32]byte
	ttl  time.Duration
	macs sync.Pool // HMAC-SHA256 keyed with key: one per call was a large share of a REGISTER's allocations

	mu   sync.Mutex
	used map[string]usedNonce
}

type usedNonce struct {
	nc      uint64
	expires time.Time
}

func newNonces(ttl time.Duration) *nonces {
	n := &nonces{ttl: ttl, used: map[string]usedNonce{}}
	if _, err := rand.Read(n.key[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return n
}

const nonceRaw = 8 + 8 + 16

func (n *nonces) tag(b []byte) []byte {
	m, _ := n.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, n.key[:])
	}
	m.Reset()
	m.Write(b)
	sum := m.Sum(make([]byte, 0, sha256.Size))[:16]
	n.macs.Put(m)
	return sum
}

func (n *nonces) issue(now time.Time) string {
	var b [nonceRaw]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	if _, err := rand.Read(b[8:16]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	copy(b[16:], n.tag(b[:16]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// check reports whether nonce is ours and whether it is still fresh.
func (n *nonces) check(nonce string, now time.Time) (issued time.Time, err error) {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != nonceRaw {
		return time.Time{}, errDigestNonce
	}
	if !hmac.Equal(b[16:], n.tag(b[:16])) {
		return time.Time{}, errDigestNonce
	}
	issued = time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	if now.Sub(issued) > n.ttl || issued.After(now.Add(time.Minute)) {
		return issued, errDigestStale
	}
	return issued, nil
}

// use records nc for nonce; it fails when nc is not above every count seen.
func (n *nonces) use(nonce string, nc uint64, issued time.Time) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	u, seen := n.used[nonce]
	if seen && nc <= u.nc {
		return errDigestReplay
	}
	n.used[nonce] = usedNonce{nc: nc, expires: issued.Add(n.ttl)}
	return nil
}

// sweep forgets nonces that can no longer be accepted anyway.
func (n *nonces) sweep(now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, u := range n.used {
		if now.After(u.expires) {
			delete(n.used, k)
		}
	}
}

// challenge renders a WWW-Authenticate value.
func challenge(realm, nonce, algorithm string, stale bool) string {
	var b strings.Builder
	b.WriteString("Digest realm=")
	b.WriteString(sipmsg.Quote(realm))
	b.WriteString(", nonce=")
	b.WriteString(sipmsg.Quote(nonce))
	b.WriteString(", algorithm=")
	b.WriteString(algorithm)
	b.WriteString(`, qop="auth"`)
	if stale {
		b.WriteString(", stale=true")
	}
	return b.String()
}

func hasher(alg string) (func() hash.Hash, bool) {
	switch strings.ToUpper(alg) {
	case "", "MD5", "MD5-SESS":
		return md5.New, true
	case "SHA-256", "SHA-256-SESS":
		return sha256.New, true
	}
	return nil, false
}

func hexHash(h func() hash.Hash, parts ...string) string {
	x := h()
	for i, p := range parts {
		if i > 0 {
			x.Write([]byte{':'})
		}
		x.Write([]byte(p))
	}
	return hex.EncodeToString(x.Sum(nil))
}

// digestRequest is what verifyDigest needs from a request.
type digestRequest struct {
	Method string
	Realm  string
	Now    time.Time
}

// verifyDigest checks Digest credentials against cred (RFC 7616 §3.4 with
// the SIP method). It returns errDigestStale only when the response itself
// is right but its nonce expired.
func (n *nonces) verifyDigest(p map[string]string, cred presence.DigestCredential, r digestRequest) error {
	for _, k := range []string{"username", "realm", "nonce", "uri", "response"} {
		if p[k] == "" {
			return fmt.Errorf("%w: %s missing", errDigestParams, k)
		}
	}
	if p["realm"] != r.Realm || cred.Realm != r.Realm {
		return errDigestRealm
	}
	alg := p["algorithm"]
	h, ok := hasher(alg)
	if !ok {
		return fmt.Errorf("%w: %q", errDigestAlgorithm, alg)
	}
	ha1 := cred.HA1MD5
	if strings.HasPrefix(strings.ToUpper(alg), "SHA-256") {
		ha1 = cred.HA1SHA256
	}
	if ha1 == "" {
		return fmt.Errorf("%w: no %s credential stored", errDigestAlgorithm, alg)
	}
	issued, nerr := n.check(p["nonce"], r.Now)
	if errors.Is(nerr, errDigestNonce) {
		return nerr
	}
	qop := p["qop"]
	var nc uint64 = 1
	if strings.HasSuffix(strings.ToLower(alg), "-sess") {
		if p["cnonce"] == "" {
			return fmt.Errorf("%w: cnonce missing", errDigestParams)
		}
		ha1 = hexHash(h, ha1, p["nonce"], p["cnonce"])
	}
	ha2 := hexHash(h, r.Method, p["uri"])
	var want string
	switch qop {
	case "auth":
		if p["cnonce"] == "" || p["nc"] == "" {
			return fmt.Errorf("%w: cnonce or nc missing", errDigestParams)
		}
		v, err := strconv.ParseUint(p["nc"], 16, 32)
		if err != nil || len(p["nc"]) != 8 {
			return fmt.Errorf("%w: nc %q", errDigestParams, p["nc"])
		}
		nc = v
		want = hexHash(h, ha1, p["nonce"], p["nc"], p["cnonce"], qop, ha2)
	case "":
		want = hexHash(h, ha1, p["nonce"], ha2)
	default:
		return fmt.Errorf("%w: qop %q", errDigestParams, qop)
	}
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(p["response"])), []byte(want)) != 1 {
		return errDigestMismatch
	}
	if nerr != nil {
		return nerr // stale: right password, old nonce
	}
	return n.use(p["nonce"], nc, issued)
}
