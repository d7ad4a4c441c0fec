package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/presence/accesstoken"
)

// APIKey is an SK… key: it authenticates REST requests as its account and
// signs access tokens. The secret is shown once, when the key is created.
type APIKey struct {
	Sid          string
	AccountSid   string
	FriendlyName string
	Secret       string
	RevokedAt    time.Time // zero while the key is valid
	DateCreated  time.Time
	DateUpdated  time.Time
}

// Revoked reports whether the key was revoked.
func (k APIKey) Revoked() bool { return !k.RevokedAt.IsZero() }

const keyCols = `sid, account_sid, friendly_name, secret, coalesce(revoked_at, 0), date_created, date_updated`

func scanKey(row scanner) (APIKey, error) {
	var k APIKey
	var revoked, created, updated int64
	err := row.Scan(&k.Sid, &k.AccountSid, &k.FriendlyName, &k.Secret, &revoked, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return APIKey{}, ErrNotFound
	}
	if err != nil {
		return APIKey{}, err
	}
	if revoked != 0 {
		k.RevokedAt = fromMS(revoked)
	}
	k.DateCreated, k.DateUpdated = fromMS(created), fromMS(updated)
	return k, nil
}

// CreateKey creates an API key for an account.
func (s *Store) CreateKey(ctx context.Context, accountSid, friendlyName string) (APIKey, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	k := APIKey{
		Sid:          sid.New(sid.Key),
		AccountSid:   accountSid,
		FriendlyName: friendlyName,
		Secret:       sid.Secret(32),
		DateCreated:  now,
		DateUpdated:  now,
	}
	if k.FriendlyName == "" {
		k.FriendlyName = k.Sid
	}
	if _, err := s.W.ExecContext(ctx, `INSERT INTO api_keys (sid, account_sid, friendly_name, secret, date_created, date_updated)
		VALUES (?, ?, ?, ?, ?, ?)`, k.Sid, k.AccountSid, k.FriendlyName, k.Secret, ms(now), ms(now)); err != nil {
		return APIKey{}, fmt.Errorf("create key: %w", err)
	}
	return k, nil
}

// Key fetches a key, revoked or not.
func (s *Store) Key(ctx context.Context, keySid string) (APIKey, error) {
	k, err := scanKey(s.R.QueryRowContext(ctx, `SELECT `+keyCols+` FROM api_keys WHERE sid = ?`, keySid))
	if err != nil {
		return APIKey{}, fmt.Errorf("key %s: %w", keySid, err)
	}
	return k, nil
}

// ListKeys returns one page of an account's keys that are not revoked.
func (s *Store) ListKeys(ctx context.Context, accountSid string, p Page) ([]APIKey, bool, error) {
	return queryPage(ctx, s.R, "keys", `SELECT `+keyCols+` FROM api_keys WHERE account_sid = ? AND revoked_at IS NULL
		ORDER BY date_created, rowid LIMIT ? OFFSET ?`, []any{accountSid}, p, scanKey)
}

// RenameKey changes a key's friendly name.
func (s *Store) RenameKey(ctx context.Context, keySid, friendlyName string) (APIKey, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	res, err := s.W.ExecContext(ctx, `UPDATE api_keys SET friendly_name = ?, date_updated = ? WHERE sid = ? AND revoked_at IS NULL`,
		friendlyName, ms(now), keySid)
	if err != nil {
		return APIKey{}, fmt.Errorf("rename key %s: %w", keySid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return APIKey{}, fmt.Errorf("key %s: %w", keySid, ErrNotFound)
	}
	return s.Key(ctx, keySid)
}

// RevokeKey revokes a key. The row stays so that tokens signed by it are
// rejected as "revoked" rather than "unknown key".
func (s *Store) RevokeKey(ctx context.Context, keySid string) error {
	now := s.now().UTC().Truncate(time.Millisecond)
	res, err := s.W.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ?, date_updated = ? WHERE sid = ? AND revoked_at IS NULL`,
		ms(now), ms(now), keySid)
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", keySid, err)
	}
	s.keys.forget()
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("key %s: %w", keySid, ErrNotFound)
	}
	return nil
}

// SigningKey implements accesstoken.Keys: the key with its account's state.
// Found keys are answered from memory for SigningKeyTTL (see keyCache).
func (s *Store) SigningKey(ctx context.Context, keySid string) (accesstoken.SigningKey, error) {
	now := s.now()
	k, ok, gen := s.keys.get(keySid, now)
	if ok {
		return k, nil
	}
	var revoked int64
	var status string
	err := s.R.QueryRowContext(ctx, `SELECT k.sid, k.account_sid, k.secret, coalesce(k.revoked_at, 0), a.status
		FROM api_keys k JOIN accounts a ON a.sid = k.account_sid WHERE k.sid = ?`, keySid).
		Scan(&k.Sid, &k.AccountSid, &k.Secret, &revoked, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return accesstoken.SigningKey{}, fmt.Errorf("%w: %s", accesstoken.ErrUnknownKey, keySid)
	}
	if err != nil {
		return accesstoken.SigningKey{}, fmt.Errorf("signing key %s: %w", keySid, err)
	}
	k.Revoked = revoked != 0
	k.AccountActive = status == StatusActive
	s.keys.put(k, gen, now)
	return k, nil
}
