package accesstoken

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

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

// Verifier checks tokens against the keys of this server.
type Verifier struct {
	Keys   Keys
	Now    func() time.Time // default time.Now
	Leeway time.Duration    // tolerated clock skew for exp and nbf
}

type tokenClaims struct {
	jwt.RegisteredClaims
	Grants Grants `json:"grants"`
}

// MaxTokenBytes bounds the tokens Verify will parse.
const MaxTokenBytes = 8 << 10

// Verify checks a token's format, signature, key, account and validity window.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	if len(token) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenBytes)
	}
	var key SigningKey
	var tc tokenClaims
	parser := jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithJSONNumber())
	_, err := parser.ParseWithClaims(token, &tc, func(t *jwt.Token) (any, error) {
		if alg, _ := t.Header["alg"].(string); alg != "HS256" {
			return nil, fmt.Errorf("%w: %q (want HS256)", ErrAlgorithm, t.Header["alg"])
		}
		if cty, _ := t.Header["cty"].(string); cty != ContentType {
			return nil, fmt.Errorf("%w: got %q", ErrContentType, t.Header["cty"])
		}
		if tc.Issuer == "" {
			return nil, fmt.Errorf("%w: no iss claim", ErrMalformed)
		}
		k, err := v.Keys.SigningKey(ctx, tc.Issuer)
		if err != nil {
			if errors.Is(err, ErrUnknownKey) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", errKeyLookup, err)
		}
		key = k
		return []byte(k.Secret), nil
	})
	if err != nil {
		for _, r := range reasons {
			if errors.Is(err, r) {
				return Claims{}, err
			}
		}
		if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			return Claims{}, fmt.Errorf("%w", ErrSignature)
		}
		return Claims{}, fmt.Errorf("%w: %w", ErrMalformed, err)
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
