package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley/internal/sid"
)

// Account statuses.
const (
	StatusActive    = "active"
	StatusSuspended = "suspended"
	StatusClosed    = "closed"
)

// Account is a tenant: everything else belongs to one.
type Account struct {
	Sid             string
	FriendlyName    string
	Status          string
	AuthToken       string
	OwnerAccountSid string // "" for a top-level account
	OwnerPartnerSid string // "" when no partner owns it
	DateCreated     time.Time
	DateUpdated     time.Time
}

// NewAccount describes an account to create.
type NewAccount struct {
	FriendlyName    string
	OwnerAccountSid string
	OwnerPartnerSid string
}

const accountCols = `sid, friendly_name, status, auth_token, coalesce(owner_account_sid, ''), coalesce(owner_partner_sid, ''), date_created, date_updated`

func scanAccount(row scanner) (Account, error) {
	var a Account
	var created, updated int64
	err := row.Scan(&a.Sid, &a.FriendlyName, &a.Status, &a.AuthToken, &a.OwnerAccountSid, &a.OwnerPartnerSid, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, ErrNotFound
	}
	if err != nil {
		return Account{}, err
	}
	a.DateCreated, a.DateUpdated = fromMS(created), fromMS(updated)
	return a, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateAccount creates an active account with a fresh sid and auth token.
func (s *Store) CreateAccount(ctx context.Context, in NewAccount) (Account, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	a := Account{
		Sid:             sid.New(sid.Account),
		FriendlyName:    in.FriendlyName,
		Status:          StatusActive,
		AuthToken:       sid.Secret(32),
		OwnerAccountSid: in.OwnerAccountSid,
		OwnerPartnerSid: in.OwnerPartnerSid,
		DateCreated:     now,
		DateUpdated:     now,
	}
	if a.FriendlyName == "" {
		a.FriendlyName = a.Sid
	}
	_, err := s.W.ExecContext(ctx, `INSERT INTO accounts (sid, friendly_name, status, auth_token, owner_account_sid, owner_partner_sid, date_created, date_updated)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		a.Sid, a.FriendlyName, a.Status, a.AuthToken, nullable(a.OwnerAccountSid), nullable(a.OwnerPartnerSid), ms(now), ms(now))
	if err != nil {
		return Account{}, fmt.Errorf("create account: %w", err)
	}
	return a, nil
}

// Account fetches one account.
func (s *Store) Account(ctx context.Context, accountSid string) (Account, error) {
	a, err := scanAccount(s.R.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE sid = ?`, accountSid))
	if err != nil {
		return Account{}, fmt.Errorf("account %s: %w", accountSid, err)
	}
	return a, nil
}

// AccountFilter narrows ListAccounts.
type AccountFilter struct {
	// Family, when set, keeps the account with this sid and its subaccounts.
	Family string
	// Partner, when set, keeps the accounts created within this partner.
	Partner      string
	FriendlyName string
	Status       string
}

// ListAccounts returns one page of accounts in creation order, and whether
// more follow.
func (s *Store) ListAccounts(ctx context.Context, f AccountFilter, p Page) ([]Account, bool, error) {
	q := `SELECT ` + accountCols + ` FROM accounts WHERE 1=1`
	var args []any
	if f.Family != "" {
		q += ` AND (sid = ? OR owner_account_sid = ?)`
		args = append(args, f.Family, f.Family)
	}
	if f.Partner != "" {
		q += ` AND owner_partner_sid = ?`
		args = append(args, f.Partner)
	}
	if f.FriendlyName != "" {
		q += ` AND friendly_name = ?`
		args = append(args, f.FriendlyName)
	}
	if f.Status != "" {
		q += ` AND status = ?`
		args = append(args, f.Status)
	}
	q += ` ORDER BY date_created, rowid LIMIT ? OFFSET ?`
	return queryPage(ctx, s.R, "accounts", q, args, p, scanAccount)
}

// AccountUpdate holds the fields to change; nil leaves a field as it is.
type AccountUpdate struct {
	FriendlyName *string
	Status       *string
}

// ErrClosed is returned when a closed account would be changed.
var ErrClosed = errors.New("account is closed")

// UpdateAccount changes an account. A closed account cannot be changed.
func (s *Store) UpdateAccount(ctx context.Context, accountSid string, u AccountUpdate) (Account, error) {
	tx, err := s.W.BeginTx(ctx, nil)
	if err != nil {
		return Account{}, fmt.Errorf("update account: %w", err)
	}
	defer tx.Rollback()
	a, err := scanAccount(tx.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE sid = ?`, accountSid))
	if err != nil {
		return Account{}, fmt.Errorf("account %s: %w", accountSid, err)
	}
	if a.Status == StatusClosed {
		return Account{}, fmt.Errorf("account %s: %w", accountSid, ErrClosed)
	}
	if u.FriendlyName != nil {
		a.FriendlyName = *u.FriendlyName
	}
	if u.Status != nil {
		a.Status = *u.Status
	}
	a.DateUpdated = s.now().UTC().Truncate(time.Millisecond)
	if _, err := tx.ExecContext(ctx, `UPDATE accounts SET friendly_name = ?, status = ?, date_updated = ? WHERE sid = ?`,
		a.FriendlyName, a.Status, ms(a.DateUpdated), a.Sid); err != nil {
		return Account{}, fmt.Errorf("update account %s: %w", accountSid, err)
	}
	if err := tx.Commit(); err != nil {
		return Account{}, fmt.Errorf("update account %s: %w", accountSid, err)
	}
	s.keys.forget() // the account's status is part of every cached signing key
	return a, nil
}

// CountAccounts returns how many accounts exist.
func (s *Store) CountAccounts(ctx context.Context) (int, error) {
	var n int
	if err := s.R.QueryRowContext(ctx, `SELECT count(*) FROM accounts`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count accounts: %w", err)
	}
	return n, nil
}
