package partners

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
)

// assertionClaims is a partner assertion's payload.
type assertionClaims struct {
	jwt.RegisteredClaims
	Features *[]string `json:"features,omitempty"`
}

type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// parseHeader decodes a compact JWS's header without trusting it.
func parseHeader(token string) (header, error) {
	if len(token) > maxAssertionLen {
		return header{}, fmt.Errorf("assertion longer than %d bytes", maxAssertionLen)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return header{}, errors.New("not a compact JWS (three dot-separated parts)")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return header{}, fmt.Errorf("header is not base64url: %w", err)
	}
	var h header
	if err := json.Unmarshal(raw, &h); err != nil {
		return header{}, fmt.Errorf("header is not a JSON object: %w", err)
	}
	return h, nil
}

// parseKey turns stored key material into the verification key for its type.
func parseKey(typ string, material []byte) (any, error) {
	switch typ {
	case partnersv1.KeyHMAC:
		if len(material) < minHMACSecretBytes {
			return nil, fmt.Errorf("an HMAC secret needs at least %d bytes", minHMACSecretBytes)
		}
		return material, nil
	case partnersv1.KeyEd25519:
		k, err := jwt.ParseEdPublicKeyFromPEM(material)
		if err != nil {
			return nil, fmt.Errorf("ed25519 key: want a PEM PUBLIC KEY: %w", err)
		}
		if _, ok := k.(ed25519.PublicKey); !ok {
			return nil, errors.New("ed25519 key: not an Ed25519 public key")
		}
		return k, nil
	case partnersv1.KeyRSA:
		k, err := jwt.ParseRSAPublicKeyFromPEM(material)
		if err != nil {
			return nil, fmt.Errorf("rsa key: want a PEM public key: %w", err)
		}
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("rsa key: %d bits; at least 2048 needed", k.N.BitLen())
		}
		return k, nil
	}
	return nil, fmt.Errorf("key type %q must be hmac, ed25519 or rsa", typ)
}

func refuse(reason, format string, args ...any) *partnersv1.VerifyAssertionResponse {
	return &partnersv1.VerifyAssertionResponse{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

func sameURL(a, b string) bool { return strings.TrimRight(a, "/") == strings.TrimRight(b, "/") }

// VerifyAssertion implements partnersv1.PartnersServer. The checks run in a
// fixed order and the first failure is the answer; the jti is recorded only
// when everything else passed, so a refused assertion does not burn it.
func (s *Server) VerifyAssertion(ctx context.Context, req *partnersv1.VerifyAssertionRequest) (*partnersv1.VerifyAssertionResponse, error) {
	h, err := parseHeader(req.Assertion)
	if err != nil {
		return refuse(partnersv1.ReasonMalformed, "%v", err), nil
	}
	if !slices.Contains([]string{"HS256", "EdDSA", "RS256"}, h.Alg) {
		return refuse(partnersv1.ReasonAlgNotAllowed, "alg %q is not allowed (HS256, EdDSA or RS256, as the key's type says)", h.Alg), nil
	}
	p, err := s.partner(ctx, req.PartnerSid)
	if err != nil {
		return refuse(partnersv1.ReasonUnknownPartner, "no partner %s", req.PartnerSid), nil
	}
	if p.Status != partnersv1.StatusActive {
		return refuse(partnersv1.ReasonPartnerSuspended, "partner %s is %s", p.Sid, p.Status), nil
	}
	if h.Kid == "" {
		return refuse(partnersv1.ReasonUnknownKid, "the header has no kid"), nil
	}
	var typ string
	var material []byte
	var revoked int64
	err = s.db.R.QueryRowContext(ctx, `SELECT type, material, revoked_ms FROM partner_keys WHERE partner_sid = ? AND kid = ?`, p.Sid, h.Kid).Scan(&typ, &material, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return refuse(partnersv1.ReasonUnknownKid, "partner %s has no key %q", p.Sid, h.Kid), nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify: key: %w", err)
	}
	if revoked != 0 {
		return refuse(partnersv1.ReasonKeyRevoked, "key %q was revoked", h.Kid), nil
	}
	// The key's type decides the one algorithm: an RSA public key is never an HMAC secret.
	if want := keyAlg[typ]; h.Alg != want {
		return refuse(partnersv1.ReasonAlgNotAllowed, "key %q is %s: alg must be %s, not %s", h.Kid, typ, want, h.Alg), nil
	}
	key, err := parseKey(typ, material)
	if err != nil {
		return nil, fmt.Errorf("verify: stored key %q: %w", h.Kid, err)
	}
	var c assertionClaims
	parser := jwt.NewParser(jwt.WithValidMethods([]string{keyAlg[typ]}), jwt.WithoutClaimsValidation())
	_, err = parser.ParseWithClaims(req.Assertion, &c, func(*jwt.Token) (any, error) { return key, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return refuse(partnersv1.ReasonBadSignature, "the signature does not verify with key %q", h.Kid), nil
	case err != nil:
		return refuse(partnersv1.ReasonMalformed, "%v", err), nil
	}
	switch {
	case c.Issuer == "" || c.Subject == "" || len(c.Audience) == 0 || c.ExpiresAt == nil || c.IssuedAt == nil || c.ID == "":
		return refuse(partnersv1.ReasonMissingClaim, "iss, sub, aud, exp, iat and jti are required"), nil
	case c.Issuer != p.Sid:
		return refuse(partnersv1.ReasonWrongIssuer, "iss %q is not partner %s", c.Issuer, p.Sid), nil
	}
	now := s.now()
	exp, iat := c.ExpiresAt.Time, c.IssuedAt.Time
	switch {
	case now.After(exp.Add(s.skew)):
		return refuse(partnersv1.ReasonExpired, "expired at %s", exp.UTC().Format(time.RFC3339)), nil
	case iat.After(now.Add(s.skew)):
		return refuse(partnersv1.ReasonIssuedInFuture, "iat %s is in the future", iat.UTC().Format(time.RFC3339)), nil
	case exp.Sub(iat) > MaxAssertionLife:
		return refuse(partnersv1.ReasonLifetimeTooLong, "exp - iat is %s; at most %s", exp.Sub(iat), MaxAssertionLife), nil
	}
	if !slices.ContainsFunc(c.Audience, func(a string) bool { return sameURL(a, req.Audience) }) {
		return refuse(partnersv1.ReasonWrongAudience, "aud %q is not %q", []string(c.Audience), req.Audience), nil
	}
	features := p.Features
	if c.Features != nil {
		for _, f := range *c.Features {
			if !slices.Contains(partnersv1.Features(), f) {
				return refuse(partnersv1.ReasonBadFeatures, "feature %q is not one of %s", f, strings.Join(partnersv1.Features(), ", ")), nil
			}
		}
		features = slices.DeleteFunc(slices.Clone(p.Features), func(f string) bool { return !slices.Contains(*c.Features, f) })
	}
	a := req.Account
	switch {
	case a == nil || a.Sid != c.Subject || !a.Exists:
		return refuse(partnersv1.ReasonUnknownAccount, "no account %s", c.Subject), nil
	case a.OwnerPartnerSid != p.Sid:
		return refuse(partnersv1.ReasonAccountNotOwned, "account %s does not belong to partner %s", c.Subject, p.Sid), nil
	case a.Status != "active":
		return refuse(partnersv1.ReasonAccountInactive, "account %s is %s", c.Subject, a.Status), nil
	}
	res, err := s.db.W.ExecContext(ctx, `INSERT INTO seen_jtis (partner_sid, jti, expires_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		p.Sid, c.ID, exp.Add(s.skew).UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("verify: jti: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return refuse(partnersv1.ReasonReplayed, "jti %q was already used", c.ID), nil
	}
	return &partnersv1.VerifyAssertionResponse{Valid: true, PartnerSid: p.Sid, AccountSid: c.Subject,
		ExpiresUnixMs: exp.UnixMilli(), Features: features}, nil
}
