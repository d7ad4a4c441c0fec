package partners

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/internal/sqlite"
	"github.com/parleyhq/parley/plugins/builtin/internal/runner"
	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the plugin's schema migrations.
func Migrations() fs.FS { return runner.Migrations(migrationFiles) }

// Name and Version identify the built-in partners plugin.
const (
	Name    = "partners"
	Version = "1.0.0"
)

var keyAlg = map[string]string{partnersv1.KeyHMAC: "HS256", partnersv1.KeyEd25519: "EdDSA", partnersv1.KeyRSA: "RS256"}

// Limits of what the plugin accepts.
const (
	MaxTokenTTL        = 60 * time.Second // a portal URL is valid at most this long
	MaxAssertionLife   = 5 * time.Minute  // exp - iat
	DefaultSkew        = 30 * time.Second
	DefaultSessionTTL  = time.Hour
	maxSessionTTL      = 12 * time.Hour
	maxAssertionLen    = 8 << 10
	maxOrigins         = 20
	maxNameLen         = 64
	maxKidLen          = 64
	minHMACSecretBytes = 32
)

// Server is the built-in partners plugin over its SQLite database. It keeps
// nothing in memory, so the CLI may change the same file while it runs.
type Server struct {
	partnersv1.UnimplementedPartnersServer

	db   *sqlite.DB
	now  func() time.Time
	skew time.Duration
}

// NewServer serves db. now may be nil (time.Now); skew is the clock skew
// tolerated on iat and exp (0: DefaultSkew).
func NewServer(db *sqlite.DB, now func() time.Time, skew time.Duration) *Server {
	if now == nil {
		now = time.Now
	}
	if skew <= 0 {
		skew = DefaultSkew
	}
	return &Server{db: db, now: now, skew: skew}
}

// Run prunes expired jtis, tokens and sessions every interval until ctx ends.
func (s *Server) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.Prune(ctx)
		}
	}
}

// Prune deletes what can no longer be used.
func (s *Server) Prune(ctx context.Context) error {
	now := s.now().UnixMilli()
	for _, q := range []string{
		`DELETE FROM seen_jtis WHERE expires_ms < ?`,
		`DELETE FROM portal_tokens WHERE expires_ms < ?`,
		`DELETE FROM portal_sessions WHERE expires_ms < ?`,
	} {
		if _, err := s.db.W.ExecContext(ctx, q, now); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
	}
	return nil
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// NormalizeOrigin checks that o is an origin (scheme://host[:port], http or
// https, nothing else) and returns it lower-cased.
func NormalizeOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(o, " ;,'\"*") {
		return "", fmt.Errorf("%q is not an origin like https://app.example.com", o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

func checkOrigins(in []string) ([]string, error) {
	if len(in) > maxOrigins {
		return nil, invalid("at most %d allowed origins", maxOrigins)
	}
	out := []string{}
	for _, o := range in {
		n, err := NormalizeOrigin(o)
		if err != nil {
			return nil, invalid("AllowedOrigins: %v", err)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func checkFeatures(in []string) ([]string, error) {
	if len(in) == 0 {
		return partnersv1.Features(), nil
	}
	var out []string
	for _, f := range in {
		if !slices.Contains(partnersv1.Features(), f) {
			return nil, invalid("Features: %q is not one of %s", f, strings.Join(partnersv1.Features(), ", "))
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

func checkName(n string) error {
	if n == "" || len(n) > maxNameLen {
		return invalid("FriendlyName is required, at most %d characters", maxNameLen)
	}
	return nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func notFound(what, id string) error {
	return status.Errorf(codes.NotFound, "%s %s not found", what, id)
}

// CreatePartner implements partnersv1.PartnersServer.
func (s *Server) CreatePartner(ctx context.Context, req *partnersv1.CreatePartnerRequest) (*partnersv1.CreatePartnerResponse, error) {
	if err := checkName(req.FriendlyName); err != nil {
		return nil, err
	}
	origins, err := checkOrigins(req.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	features, err := checkFeatures(req.Features)
	if err != nil {
		return nil, err
	}
	p := &partnersv1.Partner{Sid: sid.New(sid.Partner), FriendlyName: req.FriendlyName, Status: partnersv1.StatusActive,
		AllowedOrigins: origins, Features: features, Keys: []*partnersv1.PartnerKey{}}
	p.DateCreatedMs = s.now().UnixMilli()
	p.DateUpdatedMs = p.DateCreatedMs
	secret := sid.Secret(40)
	_, err = s.db.W.ExecContext(ctx, `INSERT INTO partners (sid, friendly_name, status, api_secret_hash, allowed_origins, features, date_created_ms, date_updated_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, p.Sid, p.FriendlyName, p.Status, hash(secret), mustJSON(origins), mustJSON(features), p.DateCreatedMs, p.DateUpdatedMs)
	if err != nil {
		return nil, fmt.Errorf("create partner: %w", err)
	}
	return &partnersv1.CreatePartnerResponse{Partner: p, ApiSecret: secret}, nil
}

const partnerCols = `sid, friendly_name, status, allowed_origins, features, date_created_ms, date_updated_ms`

type scanner interface{ Scan(...any) error }

func scanPartner(row scanner) (*partnersv1.Partner, error) {
	p := &partnersv1.Partner{}
	var origins, features string
	if err := row.Scan(&p.Sid, &p.FriendlyName, &p.Status, &origins, &features, &p.DateCreatedMs, &p.DateUpdatedMs); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(origins), &p.AllowedOrigins); err != nil {
		return nil, fmt.Errorf("partner %s origins: %w", p.Sid, err)
	}
	if err := json.Unmarshal([]byte(features), &p.Features); err != nil {
		return nil, fmt.Errorf("partner %s features: %w", p.Sid, err)
	}
	return p, nil
}

func (s *Server) partner(ctx context.Context, partnerSid string) (*partnersv1.Partner, error) {
	p, err := scanPartner(s.db.R.QueryRowContext(ctx, `SELECT `+partnerCols+` FROM partners WHERE sid = ?`, partnerSid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("partner", partnerSid)
	}
	if err != nil {
		return nil, fmt.Errorf("partner: %w", err)
	}
	rows, err := s.db.R.QueryContext(ctx, `SELECT kid, type, revoked_ms, date_created_ms FROM partner_keys WHERE partner_sid = ? ORDER BY date_created_ms, kid`, partnerSid)
	if err != nil {
		return nil, fmt.Errorf("partner keys: %w", err)
	}
	defer rows.Close()
	p.Keys = []*partnersv1.PartnerKey{}
	for rows.Next() {
		k := &partnersv1.PartnerKey{}
		if err := rows.Scan(&k.Kid, &k.Type, &k.RevokedMs, &k.DateCreatedMs); err != nil {
			return nil, fmt.Errorf("partner keys: %w", err)
		}
		p.Keys = append(p.Keys, k)
	}
	return p, rows.Err()
}

// GetPartner implements partnersv1.PartnersServer.
func (s *Server) GetPartner(ctx context.Context, req *partnersv1.GetPartnerRequest) (*partnersv1.Partner, error) {
	return s.partner(ctx, req.Sid)
}

// ListPartners implements partnersv1.PartnersServer.
func (s *Server) ListPartners(ctx context.Context, _ *partnersv1.ListPartnersRequest) (*partnersv1.ListPartnersResponse, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT sid FROM partners ORDER BY date_created_ms, sid`)
	if err != nil {
		return nil, fmt.Errorf("list partners: %w", err)
	}
	var sids []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list partners: %w", err)
		}
		sids = append(sids, s)
	}
	rows.Close()
	out := &partnersv1.ListPartnersResponse{}
	for _, ps := range sids {
		p, err := s.partner(ctx, ps)
		if err != nil {
			return nil, err
		}
		out.Partners = append(out.Partners, p)
	}
	return out, nil
}

// UpdatePartner implements partnersv1.PartnersServer.
func (s *Server) UpdatePartner(ctx context.Context, req *partnersv1.UpdatePartnerRequest) (*partnersv1.Partner, error) {
	p, err := s.partner(ctx, req.Sid)
	if err != nil {
		return nil, err
	}
	if req.FriendlyName != nil {
		if err := checkName(*req.FriendlyName); err != nil {
			return nil, err
		}
		p.FriendlyName = *req.FriendlyName
	}
	if req.Status != nil {
		if *req.Status != partnersv1.StatusActive && *req.Status != partnersv1.StatusSuspended {
			return nil, invalid("Status %q must be active or suspended", *req.Status)
		}
		p.Status = *req.Status
	}
	if req.SetAllowedOrigins {
		if p.AllowedOrigins, err = checkOrigins(req.AllowedOrigins); err != nil {
			return nil, err
		}
	}
	if req.SetFeatures {
		if p.Features, err = checkFeatures(req.Features); err != nil {
			return nil, err
		}
	}
	p.DateUpdatedMs = s.now().UnixMilli()
	_, err = s.db.W.ExecContext(ctx, `UPDATE partners SET friendly_name = ?, status = ?, allowed_origins = ?, features = ?, date_updated_ms = ? WHERE sid = ?`,
		p.FriendlyName, p.Status, mustJSON(p.AllowedOrigins), mustJSON(p.Features), p.DateUpdatedMs, p.Sid)
	if err != nil {
		return nil, fmt.Errorf("update partner: %w", err)
	}
	return p, nil
}

func validKid(k string) bool {
	if k == "" || len(k) > maxKidLen {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// AddKey implements partnersv1.PartnersServer.
func (s *Server) AddKey(ctx context.Context, req *partnersv1.AddKeyRequest) (*partnersv1.PartnerKey, error) {
	if _, err := s.partner(ctx, req.PartnerSid); err != nil {
		return nil, err
	}
	if !validKid(req.Kid) {
		return nil, invalid("Kid %q: 1 to %d characters of letters, digits, '-', '_' and '.'", req.Kid, maxKidLen)
	}
	if _, err := parseKey(req.Type, req.Material); err != nil {
		return nil, invalid("%v", err)
	}
	k := &partnersv1.PartnerKey{Kid: req.Kid, Type: req.Type, DateCreatedMs: s.now().UnixMilli()}
	res, err := s.db.W.ExecContext(ctx, `INSERT INTO partner_keys (partner_sid, kid, type, material, date_created_ms) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, req.PartnerSid, k.Kid, k.Type, req.Material, k.DateCreatedMs)
	if err != nil {
		return nil, fmt.Errorf("add key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, status.Errorf(codes.AlreadyExists, "partner %s already has a key %q (kids are never reused)", req.PartnerSid, req.Kid)
	}
	return k, nil
}

// RevokeKey implements partnersv1.PartnersServer.
func (s *Server) RevokeKey(ctx context.Context, req *partnersv1.RevokeKeyRequest) (*partnersv1.PartnerKey, error) {
	now := s.now().UnixMilli()
	if _, err := s.db.W.ExecContext(ctx, `UPDATE partner_keys SET revoked_ms = ? WHERE partner_sid = ? AND kid = ? AND revoked_ms = 0`, now, req.PartnerSid, req.Kid); err != nil {
		return nil, fmt.Errorf("revoke key: %w", err)
	}
	k := &partnersv1.PartnerKey{Kid: req.Kid}
	err := s.db.W.QueryRowContext(ctx, `SELECT type, revoked_ms, date_created_ms FROM partner_keys WHERE partner_sid = ? AND kid = ?`, req.PartnerSid, req.Kid).
		Scan(&k.Type, &k.RevokedMs, &k.DateCreatedMs)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("key", req.Kid)
	}
	if err != nil {
		return nil, fmt.Errorf("revoke key: %w", err)
	}
	return k, nil
}

// Authenticate implements partnersv1.PartnersServer.
func (s *Server) Authenticate(ctx context.Context, req *partnersv1.AuthenticateRequest) (*partnersv1.Partner, error) {
	var h []byte
	err := s.db.R.QueryRowContext(ctx, `SELECT api_secret_hash FROM partners WHERE sid = ?`, req.PartnerSid).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && subtle.ConstantTimeCompare(h, hash(req.Secret)) != 1) {
		return nil, status.Error(codes.Unauthenticated, "wrong partner credentials")
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	p, err := s.partner(ctx, req.PartnerSid)
	if err != nil {
		return nil, err
	}
	if p.Status != partnersv1.StatusActive {
		return nil, status.Errorf(codes.PermissionDenied, "partner %s is %s", p.Sid, p.Status)
	}
	return p, nil
}

// CreateSession implements partnersv1.PartnersServer.
func (s *Server) CreateSession(ctx context.Context, req *partnersv1.CreateSessionRequest) (*partnersv1.CreateSessionResponse, error) {
	ttl := time.Duration(req.TtlMs) * time.Millisecond
	if ttl <= 0 || ttl > MaxTokenTTL {
		ttl = MaxTokenTTL
	}
	if !sid.Valid(sid.Partner, req.PartnerSid) || !sid.Valid(sid.Account, req.AccountSid) {
		return nil, invalid("partner and account sids are required")
	}
	features, err := checkFeatures(req.Features)
	if err != nil {
		return nil, err
	}
	tok := randomToken()
	exp := s.now().Add(ttl).UnixMilli()
	_, err = s.db.W.ExecContext(ctx, `INSERT INTO portal_tokens (token_hash, partner_sid, account_sid, features, expires_ms) VALUES (?, ?, ?, ?, ?)`,
		hash(tok), req.PartnerSid, req.AccountSid, mustJSON(features), exp)
	if err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	return &partnersv1.CreateSessionResponse{Token: tok, ExpiresUnixMs: exp}, nil
}

// RedeemSession implements partnersv1.PartnersServer: the token is marked
// used in the same transaction that opens the session, so it works once.
func (s *Server) RedeemSession(ctx context.Context, req *partnersv1.RedeemSessionRequest) (*partnersv1.RedeemSessionResponse, error) {
	ttl := time.Duration(req.SessionTtlMs) * time.Millisecond
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	ttl = min(ttl, maxSessionTTL)
	now := s.now().UnixMilli()
	tx, err := s.db.W.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("redeem: %w", err)
	}
	defer tx.Rollback()
	var partnerSid, accountSid, features string
	var exp, redeemed int64
	err = tx.QueryRowContext(ctx, `SELECT partner_sid, account_sid, features, expires_ms, redeemed_ms FROM portal_tokens WHERE token_hash = ?`, hash(req.Token)).
		Scan(&partnerSid, &accountSid, &features, &exp, &redeemed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return &partnersv1.RedeemSessionResponse{Reason: "unknown"}, nil
	case err != nil:
		return nil, fmt.Errorf("redeem: %w", err)
	case redeemed != 0:
		return s.refusedToken(ctx, "used", partnerSid), nil
	case now >= exp:
		return s.refusedToken(ctx, "expired", partnerSid), nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE portal_tokens SET redeemed_ms = ? WHERE token_hash = ?`, now, hash(req.Token)); err != nil {
		return nil, fmt.Errorf("redeem: %w", err)
	}
	id := randomToken()
	sexp := now + ttl.Milliseconds()
	if _, err := tx.ExecContext(ctx, `INSERT INTO portal_sessions (session_hash, partner_sid, account_sid, features, expires_ms) VALUES (?, ?, ?, ?, ?)`,
		hash(id), partnerSid, accountSid, features, sexp); err != nil {
		return nil, fmt.Errorf("redeem: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("redeem: %w", err)
	}
	sess, err := s.GetSession(ctx, &partnersv1.GetSessionRequest{SessionId: id})
	if err != nil {
		return nil, err
	}
	return &partnersv1.RedeemSessionResponse{Valid: true, SessionId: id, Session: sess}, nil
}

// GetSession implements partnersv1.PartnersServer. A session whose partner
// was suspended since is not found.
func (s *Server) GetSession(ctx context.Context, req *partnersv1.GetSessionRequest) (*partnersv1.PortalSession, error) {
	ps := &partnersv1.PortalSession{}
	var features string
	err := s.db.W.QueryRowContext(ctx, `SELECT partner_sid, account_sid, features, expires_ms FROM portal_sessions WHERE session_hash = ? AND expires_ms > ?`,
		hash(req.SessionId), s.now().UnixMilli()).Scan(&ps.PartnerSid, &ps.AccountSid, &features, &ps.ExpiresUnixMs)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, status.Error(codes.NotFound, "no such portal session (expired or never opened)")
	}
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	if err := json.Unmarshal([]byte(features), &ps.Features); err != nil {
		return nil, fmt.Errorf("session features: %w", err)
	}
	p, err := s.partner(ctx, ps.PartnerSid)
	if err != nil {
		return nil, err
	}
	if p.Status != partnersv1.StatusActive {
		return nil, status.Errorf(codes.NotFound, "partner %s is %s", p.Sid, p.Status)
	}
	// The partner's current features bound the session's.
	ps.Features = slices.DeleteFunc(ps.Features, func(f string) bool { return !slices.Contains(p.Features, f) })
	ps.AllowedOrigins, ps.PartnerName = p.AllowedOrigins, p.FriendlyName
	return ps, nil
}

// refusedToken answers a known token that cannot be redeemed any more with
// its partner's origins, so that the host can let the partner's page frame
// the "session expired" answer (and the embed fetch a fresh URL).
func (s *Server) refusedToken(ctx context.Context, reason, partnerSid string) *partnersv1.RedeemSessionResponse {
	res := &partnersv1.RedeemSessionResponse{Reason: reason}
	if p, err := s.partner(ctx, partnerSid); err == nil && p.Status == partnersv1.StatusActive {
		res.Session = &partnersv1.PortalSession{PartnerSid: p.Sid, PartnerName: p.FriendlyName, AllowedOrigins: p.AllowedOrigins}
	}
	return res
}
