package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/sid"
)

// IncomingNumber (IN…) routes calls and messages dialled to PhoneNumber (an
// E.164 number or any SIP user part) to an application of its account.
type IncomingNumber struct {
	Sid            string
	AccountSid     string
	PhoneNumber    string
	FriendlyName   string
	ApplicationSid string
	DateCreated    time.Time
	DateUpdated    time.Time
}

const numberCols = `sid, account_sid, phone_number, friendly_name, application_sid, date_created, date_updated`

func scanNumber(row scanner) (IncomingNumber, error) {
	var n IncomingNumber
	var created, updated int64
	err := row.Scan(&n.Sid, &n.AccountSid, &n.PhoneNumber, &n.FriendlyName, &n.ApplicationSid, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return IncomingNumber{}, ErrNotFound
	}
	if err != nil {
		return IncomingNumber{}, err
	}
	n.DateCreated, n.DateUpdated = fromMS(created), fromMS(updated)
	return n, nil
}

// NormalizeNumber canonicalises a dialled number: a leading "+" followed by
// digits, or a SIP user part of letters, digits and -_.!~*'(); separators
// (spaces, dashes, dots, parentheses) in an E.164-looking number are removed.
// It returns "" when s is not a usable number.
func NormalizeNumber(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "+") {
		var b strings.Builder
		b.WriteByte('+')
		for _, r := range s[1:] {
			switch {
			case r >= '0' && r <= '9':
				b.WriteRune(r)
			case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
			default:
				return ""
			}
		}
		if b.Len() < 2 || b.Len() > 16 {
			return ""
		}
		return b.String()
	}
	if s == "" || len(s) > 64 {
		return ""
	}
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', strings.ContainsRune("-_.!~*'();", r):
		default:
			return ""
		}
	}
	return s
}

// CreateIncomingNumber stores a number; Sid and dates are assigned here.
// The number must be unused on this server.
func (s *Store) CreateIncomingNumber(ctx context.Context, n IncomingNumber) (IncomingNumber, error) {
	num := NormalizeNumber(n.PhoneNumber)
	if num == "" {
		return IncomingNumber{}, fmt.Errorf("create incoming number: %w: phone number %q", ErrInvalid, n.PhoneNumber)
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	n.Sid, n.PhoneNumber, n.DateCreated, n.DateUpdated = sid.New(sid.Number), num, now, now
	if n.FriendlyName == "" {
		n.FriendlyName = num
	}
	_, err := s.W.ExecContext(ctx, `INSERT INTO incoming_numbers (`+numberCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		n.Sid, n.AccountSid, n.PhoneNumber, n.FriendlyName, n.ApplicationSid, ms(now), ms(now))
	if err != nil {
		return IncomingNumber{}, fmt.Errorf("create incoming number %s: %w", num, err)
	}
	return n, nil
}

// IncomingNumber fetches a number by sid.
func (s *Store) IncomingNumber(ctx context.Context, numberSid string) (IncomingNumber, error) {
	n, err := scanNumber(s.R.QueryRowContext(ctx, `SELECT `+numberCols+` FROM incoming_numbers WHERE sid = ?`, numberSid))
	if err != nil {
		return IncomingNumber{}, fmt.Errorf("incoming number %s: %w", numberSid, err)
	}
	return n, nil
}

// IncomingNumberByNumber finds the owner of a dialled number.
func (s *Store) IncomingNumberByNumber(ctx context.Context, number string) (IncomingNumber, error) {
	num := NormalizeNumber(number)
	if num == "" {
		return IncomingNumber{}, fmt.Errorf("incoming number %q: %w", number, ErrNotFound)
	}
	n, err := scanNumber(s.R.QueryRowContext(ctx, `SELECT `+numberCols+` FROM incoming_numbers WHERE phone_number = ?`, num))
	if err != nil {
		return IncomingNumber{}, fmt.Errorf("incoming number %s: %w", num, err)
	}
	return n, nil
}

// ListIncomingNumbers returns one page of an account's numbers, optionally
// only the one with the given number.
func (s *Store) ListIncomingNumbers(ctx context.Context, accountSid, number string, p Page) ([]IncomingNumber, bool, error) {
	q := `SELECT ` + numberCols + ` FROM incoming_numbers WHERE account_sid = ?`
	args := []any{accountSid}
	if number != "" {
		q += ` AND phone_number = ?`
		args = append(args, NormalizeNumber(number))
	}
	q += ` ORDER BY date_created, rowid LIMIT ? OFFSET ?`
	return queryPage(ctx, s.R, "incoming numbers", q, args, p, scanNumber)
}

// UpdateIncomingNumber replaces a number's friendly name and application.
func (s *Store) UpdateIncomingNumber(ctx context.Context, n IncomingNumber) (IncomingNumber, error) {
	res, err := s.W.ExecContext(ctx, `UPDATE incoming_numbers SET friendly_name = ?, application_sid = ?, date_updated = ? WHERE sid = ?`,
		n.FriendlyName, n.ApplicationSid, ms(s.now().UTC()), n.Sid)
	if err != nil {
		return IncomingNumber{}, fmt.Errorf("update incoming number %s: %w", n.Sid, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return IncomingNumber{}, fmt.Errorf("incoming number %s: %w", n.Sid, ErrNotFound)
	}
	return s.IncomingNumber(ctx, n.Sid)
}

// DeleteIncomingNumber releases a number.
func (s *Store) DeleteIncomingNumber(ctx context.Context, numberSid string) error {
	res, err := s.W.ExecContext(ctx, `DELETE FROM incoming_numbers WHERE sid = ?`, numberSid)
	if err != nil {
		return fmt.Errorf("delete incoming number %s: %w", numberSid, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("incoming number %s: %w", numberSid, ErrNotFound)
	}
	return nil
}
