package admission

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/internal/sqlite"
	"github.com/parleyhq/parley/plugins/builtin/internal/runner"
	admissionv1 "github.com/parleyhq/parley/plugins/proto/admission/v1"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the built-in plugin's schema migrations.
func Migrations() fs.FS { return runner.Migrations(migrationFiles) }

// Name and Version identify the built-in admission plugin.
const (
	Name    = "admission"
	Version = "1.0.0"
)

// Resource is admissionv1.Resource, the kind's vocabulary.
type Resource = admissionv1.Resource

const leasePrefix = "LE"

type key struct {
	account  string
	resource Resource
}

type lease struct {
	id, holder string
	key        key
	count      int64
	expires    int64 // unix ms
}

type window struct {
	second int64
	n      int64
}

// Server is the built-in admission plugin: limits and leases in its own
// SQLite database, mirrored in memory so decisions never wait on a read.
// Every change is written through before it is acknowledged, so a restarted
// plugin counts exactly the leases that are still live.
type Server struct {
	admissionv1.UnimplementedAdmissionServer

	db         *sqlite.DB
	defaults   map[Resource]int64
	retryAfter time.Duration
	now        func() time.Time

	mu     sync.Mutex
	limits map[key]int64
	leases map[string]*lease
	used   map[key]int64
	byKey  map[key]map[string]*lease
	rate   map[key]*window
}

// NewServer loads the state from db (dropping leases that expired while the
// plugin was down). now may be nil (time.Now).
func NewServer(ctx context.Context, db *sqlite.DB, defaults map[Resource]int64, retryAfter time.Duration, now func() time.Time) (*Server, error) {
	if now == nil {
		now = time.Now
	}
	if retryAfter <= 0 {
		retryAfter = time.Second
	}
	s := &Server{
		db: db, defaults: defaults, retryAfter: retryAfter, now: now,
		limits: map[key]int64{}, leases: map[string]*lease{}, used: map[key]int64{},
		byKey: map[key]map[string]*lease{}, rate: map[key]*window{},
	}
	if _, err := db.W.ExecContext(ctx, `DELETE FROM leases WHERE expires_ms <= ?`, now().UnixMilli()); err != nil {
		return nil, fmt.Errorf("drop expired leases: %w", err)
	}
	rows, err := db.W.QueryContext(ctx, `SELECT account_sid, resource, lim FROM limits`)
	if err != nil {
		return nil, fmt.Errorf("load limits: %w", err)
	}
	for rows.Next() {
		var k key
		var lim int64
		if err := rows.Scan(&k.account, &k.resource, &lim); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load limits: %w", err)
		}
		s.limits[k] = lim
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("load limits: %w", err)
	}
	rows, err = db.W.QueryContext(ctx, `SELECT id, holder, account_sid, resource, count, expires_ms FROM leases`)
	if err != nil {
		return nil, fmt.Errorf("load leases: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		l := &lease{}
		if err := rows.Scan(&l.id, &l.holder, &l.key.account, &l.key.resource, &l.count, &l.expires); err != nil {
			return nil, fmt.Errorf("load leases: %w", err)
		}
		s.add(l)
	}
	return s, rows.Err()
}

func (s *Server) add(l *lease) {
	s.leases[l.id] = l
	m := s.byKey[l.key]
	if m == nil {
		m = map[string]*lease{}
		s.byKey[l.key] = m
	}
	m[l.id] = l
	s.used[l.key] += l.count
}

func (s *Server) remove(l *lease) {
	delete(s.leases, l.id)
	if m := s.byKey[l.key]; m != nil {
		delete(m, l.id)
		if len(m) == 0 {
			delete(s.byKey, l.key)
		}
	}
	s.used[l.key] -= l.count
	if s.used[l.key] <= 0 {
		delete(s.used, l.key)
	}
}

// Run sweeps expired leases every interval until ctx ends.
func (s *Server) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.Sweep(ctx)
		}
	}
}

// Sweep deletes every expired lease and returns how many it freed.
func (s *Server) Sweep(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixMilli()
	var dead []*lease
	for _, l := range s.leases {
		if l.expires <= now {
			dead = append(dead, l)
		}
	}
	if len(dead) == 0 {
		return nil
	}
	if _, err := s.db.W.ExecContext(ctx, `DELETE FROM leases WHERE expires_ms <= ?`, now); err != nil {
		return fmt.Errorf("sweep leases: %w", err)
	}
	for _, l := range dead {
		s.remove(l)
	}
	return nil
}

// expireKey drops the expired leases of one key (caller holds mu).
func (s *Server) expireKey(ctx context.Context, k key, now int64) error {
	for _, l := range s.byKey[k] {
		if l.expires <= now {
			if _, err := s.db.W.ExecContext(ctx, `DELETE FROM leases WHERE id = ?`, l.id); err != nil {
				return fmt.Errorf("expire lease: %w", err)
			}
			s.remove(l)
		}
	}
	return nil
}

func (s *Server) limit(k key) (int64, bool) {
	if v, ok := s.limits[k]; ok {
		return v, false
	}
	if v, ok := s.defaults[k.resource]; ok {
		return v, true
	}
	return -1, true
}

func checkKey(account, resource string) (key, error) {
	if account == "" {
		return key{}, status.Error(codes.InvalidArgument, "account_sid is required")
	}
	r := Resource(resource)
	if !r.Valid() {
		return key{}, status.Errorf(codes.InvalidArgument, "unknown resource %q", resource)
	}
	return key{account: account, resource: r}, nil
}

// Acquire implements admissionv1.AdmissionServer.
func (s *Server) Acquire(ctx context.Context, req *admissionv1.AcquireRequest) (*admissionv1.AcquireResponse, error) {
	k, err := checkKey(req.GetAccountSid(), req.GetResource())
	if err != nil {
		return nil, err
	}
	minN, maxN := max(req.GetMinCount(), 1), req.GetMaxCount()
	if maxN < minN {
		maxN = minN
	}
	ttl := req.GetTtlMs()
	if ttl <= 0 {
		ttl = 15000
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	lim, _ := s.limit(k)
	if k.resource.IsRate() {
		return s.acquireRate(k, lim, minN, maxN, now), nil
	}
	nowMS := now.UnixMilli()
	if err := s.expireKey(ctx, k, nowMS); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	used := s.used[k]
	grant := maxN
	if lim >= 0 {
		free := lim - used
		if free < minN {
			return &admissionv1.AcquireResponse{Current: used, Limit: lim, RetryAfterMs: s.retryAfter.Milliseconds()}, nil
		}
		// Grant at most half of what is free (but at least minN), so one
		// holder's block never takes the last slots another holder needs.
		grant = min(maxN, max(minN, free/2))
	}
	exp := nowMS + ttl
	l := s.leases[req.GetLeaseId()]
	if l != nil && (l.holder != req.GetHolder() || l.key != k) {
		l = nil // not this caller's lease: start a new one
	}
	if l != nil {
		if _, err := s.db.W.ExecContext(ctx, `UPDATE leases SET count = count + ?, expires_ms = ? WHERE id = ?`, grant, exp, l.id); err != nil {
			return nil, status.Errorf(codes.Internal, "grow lease: %v", err)
		}
		l.count += grant
		l.expires = exp
		s.used[k] += grant
	} else {
		l = &lease{id: sid.New(leasePrefix), holder: req.GetHolder(), key: k, count: grant, expires: exp}
		if _, err := s.db.W.ExecContext(ctx, `INSERT INTO leases(id, holder, account_sid, resource, count, expires_ms) VALUES (?, ?, ?, ?, ?, ?)`,
			l.id, l.holder, k.account, string(k.resource), l.count, l.expires); err != nil {
			return nil, status.Errorf(codes.Internal, "create lease: %v", err)
		}
		s.add(l)
	}
	return &admissionv1.AcquireResponse{
		Granted: true, Count: grant, LeaseId: l.id, LeaseCount: l.count,
		Current: s.used[k], Limit: lim, ExpiresUnixMs: exp,
	}, nil
}

// acquireRate admits against a fixed one-second window (caller holds mu).
// Rate grants carry no lease: a call setup that happened stays counted for
// its second.
func (s *Server) acquireRate(k key, lim, minN, maxN int64, now time.Time) *admissionv1.AcquireResponse {
	sec := now.Unix()
	w := s.rate[k]
	if w == nil || w.second != sec {
		w = &window{second: sec}
		s.rate[k] = w
		if len(s.rate) > 4096 {
			for kk, ww := range s.rate {
				if ww.second != sec {
					delete(s.rate, kk)
				}
			}
		}
	}
	avail := maxN
	if lim >= 0 {
		avail = min(maxN, lim-w.n)
	}
	if avail < minN {
		next := time.Unix(sec+1, 0)
		return &admissionv1.AcquireResponse{Current: w.n, Limit: lim, RetryAfterMs: max(next.Sub(now).Milliseconds(), 1)}
	}
	w.n += avail
	return &admissionv1.AcquireResponse{Granted: true, Count: avail, Current: w.n, Limit: lim}
}

// Release implements admissionv1.AdmissionServer. With no lease_id, it
// releases every lease of the holder (a restarted host dropping the
// capacity of its previous life).
func (s *Server) Release(ctx context.Context, req *admissionv1.ReleaseRequest) (*admissionv1.ReleaseResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.GetLeaseId() == "" {
		if req.GetHolder() == "" {
			return nil, status.Error(codes.InvalidArgument, "lease_id or holder is required")
		}
		if _, err := s.db.W.ExecContext(ctx, `DELETE FROM leases WHERE holder = ?`, req.GetHolder()); err != nil {
			return nil, status.Errorf(codes.Internal, "release holder: %v", err)
		}
		found := false
		for _, l := range s.leases {
			if l.holder == req.GetHolder() {
				s.remove(l)
				found = true
			}
		}
		return &admissionv1.ReleaseResponse{Found: found}, nil
	}
	l := s.leases[req.GetLeaseId()]
	if l == nil || l.expires <= s.now().UnixMilli() {
		return &admissionv1.ReleaseResponse{}, nil
	}
	n := req.GetCount()
	if n <= 0 || n >= l.count {
		if _, err := s.db.W.ExecContext(ctx, `DELETE FROM leases WHERE id = ?`, l.id); err != nil {
			return nil, status.Errorf(codes.Internal, "release: %v", err)
		}
		s.remove(l)
		return &admissionv1.ReleaseResponse{Found: true}, nil
	}
	if _, err := s.db.W.ExecContext(ctx, `UPDATE leases SET count = count - ? WHERE id = ?`, n, l.id); err != nil {
		return nil, status.Errorf(codes.Internal, "release: %v", err)
	}
	l.count -= n
	s.used[l.key] -= n
	return &admissionv1.ReleaseResponse{Found: true, LeaseCount: l.count}, nil
}

// Renew implements admissionv1.AdmissionServer.
func (s *Server) Renew(ctx context.Context, req *admissionv1.RenewRequest) (*admissionv1.RenewResponse, error) {
	ttl := req.GetTtlMs()
	if ttl <= 0 {
		return nil, status.Error(codes.InvalidArgument, "ttl_ms must be positive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixMilli()
	exp := now + ttl
	resp := &admissionv1.RenewResponse{ExpiresUnixMs: exp}
	var live []*lease
	for _, id := range req.GetLeaseIds() {
		l := s.leases[id]
		if l == nil || l.expires <= now || (req.GetHolder() != "" && l.holder != req.GetHolder()) {
			resp.Missing = append(resp.Missing, id)
			continue
		}
		live = append(live, l)
	}
	if len(live) == 0 {
		return resp, nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, l := range live {
			if _, err := tx.ExecContext(ctx, `UPDATE leases SET expires_ms = ? WHERE id = ?`, exp, l.id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "renew: %v", err)
	}
	for _, l := range live {
		l.expires = exp
	}
	return resp, nil
}

func (s *Server) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.W.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// GetLimits implements admissionv1.AdmissionServer.
func (s *Server) GetLimits(_ context.Context, req *admissionv1.GetLimitsRequest) (*admissionv1.GetLimitsResponse, error) {
	if req.GetAccountSid() == "" {
		return nil, status.Error(codes.InvalidArgument, "account_sid is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	resp := &admissionv1.GetLimitsResponse{}
	for _, r := range admissionv1.Resources() {
		resp.Limits = append(resp.Limits, s.limitLocked(key{req.GetAccountSid(), r}, now))
	}
	return resp, nil
}

func (s *Server) limitLocked(k key, now time.Time) *admissionv1.Limit {
	lim, def := s.limit(k)
	cur := int64(0)
	if k.resource.IsRate() {
		if w := s.rate[k]; w != nil && w.second == now.Unix() {
			cur = w.n
		}
	} else {
		nowMS := now.UnixMilli()
		for _, l := range s.byKey[k] {
			if l.expires > nowMS {
				cur += l.count
			}
		}
	}
	return &admissionv1.Limit{Resource: string(k.resource), Limit: lim, Current: cur, IsDefault: def}
}

// SetLimit implements admissionv1.AdmissionServer.
func (s *Server) SetLimit(ctx context.Context, req *admissionv1.SetLimitRequest) (*admissionv1.SetLimitResponse, error) {
	k, err := checkKey(req.GetAccountSid(), req.GetResource())
	if err != nil {
		return nil, err
	}
	if !req.GetClear() && req.GetLimit() < -1 {
		return nil, status.Errorf(codes.InvalidArgument, "limit %d: use -1 for unlimited", req.GetLimit())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.GetClear() {
		if _, err := s.db.W.ExecContext(ctx, `DELETE FROM limits WHERE account_sid = ? AND resource = ?`, k.account, string(k.resource)); err != nil {
			return nil, status.Errorf(codes.Internal, "clear limit: %v", err)
		}
		delete(s.limits, k)
	} else {
		if _, err := s.db.W.ExecContext(ctx, `INSERT INTO limits(account_sid, resource, lim, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT(account_sid, resource) DO UPDATE SET lim = excluded.lim, updated_at = excluded.updated_at`,
			k.account, string(k.resource), req.GetLimit(), s.now().Unix()); err != nil {
			return nil, status.Errorf(codes.Internal, "set limit: %v", err)
		}
		s.limits[k] = req.GetLimit()
	}
	return &admissionv1.SetLimitResponse{Limit: s.limitLocked(k, s.now())}, nil
}
