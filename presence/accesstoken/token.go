package accesstoken

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// ContentType is the JWT "cty" header of access tokens.
const ContentType = "twilio-fpa;v=1"

// MaxTTL is the longest lifetime a token may have (exp − nbf).
const MaxTTL = 24 * time.Hour

// Grants are the permissions a token carries.
type Grants struct {
	Identity string      `json:"identity,omitempty"`
	Voice    *VoiceGrant `json:"voice,omitempty"`
}

// VoiceGrant allows a client to receive and/or place calls.
type VoiceGrant struct {
	Incoming *IncomingGrant `json:"incoming,omitempty"`
	Outgoing *OutgoingGrant `json:"outgoing,omitempty"`
}

// IncomingGrant allows a client to be reachable as client:<identity>.
type IncomingGrant struct {
	Allow bool `json:"allow"`
}

// OutgoingGrant allows a client to place calls through an application.
type OutgoingGrant struct {
	ApplicationSid string         `json:"application_sid"`
	Params         map[string]any `json:"params,omitempty"`
}

// UnmarshalJSON keeps the numbers of Params as sent (json.Number), as
// tokens were always decoded.
func (g *OutgoingGrant) UnmarshalJSON(b []byte) error {
	type plain OutgoingGrant
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode((*plain)(g))
}

// IncomingAllowed reports whether the grants make the identity reachable.
func (g Grants) IncomingAllowed() bool {
	return g.Voice != nil && g.Voice.Incoming != nil && g.Voice.Incoming.Allow
}

// OutgoingApplication returns the application sid for outgoing calls, or "".
func (g Grants) OutgoingApplication() string {
	if g.Voice == nil || g.Voice.Outgoing == nil {
		return ""
	}
	return g.Voice.Outgoing.ApplicationSid
}

// Claims is a verified token's content.
type Claims struct {
	ID         string // jti
	KeySid     string // iss
	AccountSid string // sub
	NotBefore  time.Time
	Expires    time.Time
	Grants     Grants
}

// MintParams describes a token to mint.
type MintParams struct {
	AccountSid     string
	KeySid         string
	Secret         string
	Identity       string
	Incoming       bool
	OutgoingApp    string
	OutgoingParams map[string]any
	TTL            time.Duration // default one hour
	Now            time.Time     // default time.Now()
}

// Mint signs a token. Its bytes equal those of the well-known helper libraries
// for the same inputs and second: header {alg, cty, typ} and claims {exp,
// grants, iss, jti, nbf, sub}, all keys sorted, times as whole seconds.
func Mint(p MintParams) (string, error) {
	if p.Secret == "" || p.KeySid == "" || p.AccountSid == "" {
		return "", errors.New("mint token: account sid, key sid and secret are required")
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	ttl := p.TTL
	if ttl == 0 {
		ttl = time.Hour
	}
	if ttl < 0 || ttl > MaxTTL {
		return "", fmt.Errorf("mint token: ttl %s outside (0, %s]", ttl, MaxTTL)
	}
	unix := now.Unix()
	grants := map[string]any{}
	if p.Identity != "" {
		grants["identity"] = p.Identity
	}
	voice := map[string]any{}
	if p.Incoming {
		voice["incoming"] = map[string]any{"allow": true}
	}
	if p.OutgoingApp != "" {
		out := map[string]any{"application_sid": p.OutgoingApp}
		if len(p.OutgoingParams) > 0 {
			out["params"] = p.OutgoingParams
		}
		voice["outgoing"] = out
	}
	if p.Incoming || p.OutgoingApp != "" {
		grants["voice"] = voice
	}
	claims := jwt.MapClaims{
		"jti":    p.KeySid + "-" + strconv.FormatInt(unix, 10),
		"grants": grants,
		"iss":    p.KeySid,
		"sub":    p.AccountSid,
		"nbf":    float64(unix),
		"exp":    float64(unix) + ttl.Seconds(),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	t.Header["cty"] = ContentType
	s, err := t.SignedString([]byte(p.Secret))
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return s, nil
}

// Reasons a token is rejected. Every error Verify returns wraps exactly one.
var (
	ErrMalformed       = errors.New("token malformed")
	ErrAlgorithm       = errors.New("token algorithm not allowed")
	ErrContentType     = errors.New("token content type is not " + ContentType)
	ErrUnknownKey      = errors.New("token signing key unknown")
	ErrSignature       = errors.New("token signature invalid")
	ErrKeyRevoked      = errors.New("token signing key revoked")
	ErrAccountMismatch = errors.New("token account does not own the signing key")
	ErrAccountInactive = errors.New("token account not active")
	ErrExpired         = errors.New("token expired")
	ErrNotYetValid     = errors.New("token not yet valid")
	ErrLifetimeTooLong = errors.New("token lifetime longer than 24h")
	errKeyLookup       = errors.New("token signing key lookup failed")
	reasons            = []error{ErrMalformed, ErrAlgorithm, ErrContentType, ErrUnknownKey, ErrSignature, ErrKeyRevoked, ErrAccountMismatch, ErrAccountInactive, ErrExpired, ErrNotYetValid, ErrLifetimeTooLong, errKeyLookup}
	reasonCodes        = []string{"malformed", "algorithm", "content_type", "unknown_key", "signature", "key_revoked", "account_mismatch", "account_inactive", "expired", "not_yet_valid", "lifetime_too_long", "key_lookup"}
)

// Reason returns a short, stable code for a Verify error ("expired",
// "signature", …), for metrics and machine-readable responses; "" when err is
// not a verification error.
func Reason(err error) string {
	for i, r := range reasons {
		if errors.Is(err, r) {
			return reasonCodes[i]
		}
	}
	return ""
}

// SigningKey is what Verify needs to know about a token's key.
type SigningKey struct {
	Sid           string
	AccountSid    string
	Secret        string
	Revoked       bool
	AccountActive bool
}

// Keys finds signing keys by sid. It returns an error wrapping ErrUnknownKey
// when there is no such key.
type Keys interface {
	SigningKey(ctx context.Context, keySid string) (SigningKey, error)
}

// Verifier checks tokens against the keys of this server. Use it by pointer.
type Verifier struct {
	Keys   Keys
	Now    func() time.Time // default time.Now
	Leeway time.Duration    // tolerated clock skew for exp and nbf

	macs  sync.Map // secret → *sync.Pool of HMAC-SHA256 keyed with it
	nmacs atomic.Int32
}

// maxPooledSecrets bounds the HMAC pools (one per signing secret in use).
const maxPooledSecrets = 1024

// signatureValid compares sig with HMAC-SHA256(secret, signed), with an HMAC
// from the secret's pool: a new one per token was a third of Verify's
// allocations.
func (v *Verifier) signatureValid(secret, signed string, sig []byte) bool {
	var pool *sync.Pool
	if p, ok := v.macs.Load(secret); ok {
		pool = p.(*sync.Pool)
	} else if v.nmacs.Load() < maxPooledSecrets {
		p, loaded := v.macs.LoadOrStore(secret, &sync.Pool{New: func() any { return hmac.New(sha256.New, []byte(secret)) }})
		if !loaded {
			v.nmacs.Add(1)
		}
		pool = p.(*sync.Pool)
	}
	var mac hash.Hash
	if pool != nil {
		mac = pool.Get().(hash.Hash)
		defer pool.Put(mac)
		mac.Reset()
	} else {
		mac = hmac.New(sha256.New, []byte(secret))
	}
	mac.Write(readOnlyBytes(signed))
	var sum [sha256.Size]byte
	return hmac.Equal(mac.Sum(sum[:0]), sig)
}

// segmentBufs holds decoding buffers for claims segments.
var segmentBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// readOnlyBytes views s as bytes without copying; the callers (base64
// decoding, hashing) only read them.
func readOnlyBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// MaxTokenBytes bounds the tokens Verify will parse.
const MaxTokenBytes = 8 << 10

// canonicalHeader is the encoded header that Mint and the well-known helper
// libraries write ({"alg":"HS256","cty":"twilio-fpa;v=1","typ":"JWT"}, keys
// sorted): Verify recognises it without decoding it.
var canonicalHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","cty":"` + ContentType + `","typ":"JWT"}`))

// wireClaims is the claims segment as sent.
type wireClaims struct {
	Issuer    string       `json:"iss"`
	Subject   string       `json:"sub"`
	ID        string       `json:"jti"`
	ExpiresAt *numericDate `json:"exp"`
	NotBefore *numericDate `json:"nbf"`
	IssuedAt  *numericDate `json:"iat"`
	Grants    Grants       `json:"grants"`
}

// numericDate is a JWT time (RFC 7519 §2): seconds since the epoch, possibly
// fractional, truncated to whole seconds.
type numericDate struct{ time.Time }

func (d *numericDate) UnmarshalJSON(b []byte) error {
	n := json.Number(b) // a JSON number: the decoder has checked its syntax
	if len(b) > 0 && b[0] == '"' {
		// A string holding a number, as the JWT library accepts.
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("numeric date %s: %w", b, err)
		}
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return fmt.Errorf("numeric date %s: %w", b, err)
	}
	d.Time = dateFromSeconds(f)
	return nil
}

// dateFromSeconds is the time of a NumericDate, truncated to seconds as the
// JWT library does.
func dateFromSeconds(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).Truncate(time.Second)
}

// decodeClaims decodes the claims segment with encoding/json, for what
// parseClaims leaves to it.
func decodeClaims(raw []byte) (wireClaims, error) {
	var tc wireClaims
	if err := json.Unmarshal(raw, &tc); err == nil {
		return tc, nil
	}
	// The library reads the first JSON value and ignores what follows it:
	// so does Verify, on this slower path.
	tc = wireClaims{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	err := dec.Decode(&tc)
	return tc, err
}

// Verify checks a token's format, signature, key, account and validity window.
//
// It parses the JWT itself (HS256 is the only algorithm tokens may use): on
// the registrar's Bearer path the general-purpose library, which decodes the
// header into a map and every time claim twice, was most of the cost of a
// registration. Its verdicts are the library's (see verify_test.go).
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	if len(token) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenBytes)
	}
	head, rest, ok1 := strings.Cut(token, ".")
	body, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return Claims{}, fmt.Errorf("%w: not three segments", ErrMalformed)
	}
	var alg, cty any = "HS256", ContentType
	if head != canonicalHeader {
		raw, err := base64.RawURLEncoding.DecodeString(head)
		if err != nil {
			return Claims{}, fmt.Errorf("%w: header: %w", ErrMalformed, err)
		}
		var h map[string]any
		if err := json.Unmarshal(raw, &h); err != nil {
			return Claims{}, fmt.Errorf("%w: header: %w", ErrMalformed, err)
		}
		alg, cty = h["alg"], h["cty"]
	}
	bp := segmentBufs.Get().(*[]byte)
	defer segmentBufs.Put(bp)
	raw, err := base64.RawURLEncoding.AppendDecode((*bp)[:0], readOnlyBytes(body))
	*bp = raw[:0]
	if err != nil {
		return Claims{}, fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	tc, fast := parseClaims(raw)
	if !fast {
		tc, err = decodeClaims(raw)
	}
	if err != nil {
		return Claims{}, fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	var sum [sha256.Size]byte
	got, err := base64.RawURLEncoding.AppendDecode(sum[:0], readOnlyBytes(sig))
	if err != nil {
		return Claims{}, fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	if s, _ := alg.(string); s != "HS256" {
		return Claims{}, fmt.Errorf("%w: %q (want HS256)", ErrAlgorithm, alg)
	}
	if s, _ := cty.(string); s != ContentType {
		return Claims{}, fmt.Errorf("%w: got %q", ErrContentType, cty)
	}
	if tc.Issuer == "" {
		return Claims{}, fmt.Errorf("%w: no iss claim", ErrMalformed)
	}
	key, err := v.Keys.SigningKey(ctx, tc.Issuer)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return Claims{}, err
		}
		return Claims{}, fmt.Errorf("%w: %w", errKeyLookup, err)
	}
	if !v.signatureValid(key.Secret, token[:len(head)+1+len(body)], got) {
		return Claims{}, fmt.Errorf("%w", ErrSignature)
	}
	if key.Revoked {
		return Claims{}, fmt.Errorf("%w: %s", ErrKeyRevoked, key.Sid)
	}
	if tc.Subject != key.AccountSid {
		return Claims{}, fmt.Errorf("%w: sub %q, key belongs to %s", ErrAccountMismatch, tc.Subject, key.AccountSid)
	}
	if !key.AccountActive {
		return Claims{}, fmt.Errorf("%w: %s", ErrAccountInactive, key.AccountSid)
	}
	if tc.ExpiresAt == nil {
		return Claims{}, fmt.Errorf("%w: no exp claim", ErrMalformed)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	c := Claims{ID: tc.ID, KeySid: tc.Issuer, AccountSid: tc.Subject, Expires: tc.ExpiresAt.Time, Grants: tc.Grants}
	start := now
	if tc.NotBefore != nil {
		c.NotBefore = tc.NotBefore.Time
		start = c.NotBefore
	} else if tc.IssuedAt != nil {
		start = tc.IssuedAt.Time
	}
	if !now.Before(c.Expires.Add(v.Leeway)) {
		return Claims{}, fmt.Errorf("%w: at %s", ErrExpired, c.Expires.UTC().Format(time.RFC3339))
	}
	if !c.NotBefore.IsZero() && now.Add(v.Leeway).Before(c.NotBefore) {
		return Claims{}, fmt.Errorf("%w: until %s", ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if c.Expires.Sub(start) > MaxTTL {
		return Claims{}, fmt.Errorf("%w: %s", ErrLifetimeTooLong, c.Expires.Sub(start).Round(time.Second))
	}
	return c, nil
}
