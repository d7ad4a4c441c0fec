package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Message is one message as stored. Its fields are those of
// Message, so the two convert into each other.
type Message struct {
	Sid            string
	AccountSid     string
	ApplicationSid string // set for messages to an application
	From, To       string // "client:alice", "sip:alice@pbx.example.com"
	// Target is the presence identity the message is delivered to; "" for
	// messages to an application.
	Target               string
	Body                 []byte
	ContentType          string
	Direction            string
	Status               string
	ErrorCode            int
	ErrorMessage         string
	StatusCallback       string
	StatusCallbackMethod string
	ExpiresAt            time.Time // queued messages become undelivered after it
	DateSent             time.Time // zero until delivered
	DateCreated          time.Time
	DateUpdated          time.Time
}

// MessageTarget is an identity of an account that has queued messages.
type MessageTarget struct {
	AccountSid, Identity string
}

const messageCols = `sid, account_sid, application_sid, from_addr, to_addr, target, body, content_type, direction, status,
	error_code, error_message, status_callback, status_callback_method, expires_at, date_sent, date_created, date_updated`

func scanMessage(row scanner) (Message, error) {
	var m Message
	var exp, sent, created, updated int64
	err := row.Scan(&m.Sid, &m.AccountSid, &m.ApplicationSid, &m.From, &m.To, &m.Target, &m.Body, &m.ContentType, &m.Direction,
		&m.Status, &m.ErrorCode, &m.ErrorMessage, &m.StatusCallback, &m.StatusCallbackMethod, &exp, &sent, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, ErrNotFound
	}
	if err != nil {
		return Message{}, err
	}
	m.ExpiresAt, m.DateSent = timeOrZero(exp), timeOrZero(sent)
	m.DateCreated, m.DateUpdated = fromMS(created), fromMS(updated)
	return m, nil
}

// CreateMessage stores a new message.
func (s *Store) CreateMessage(ctx context.Context, m Message) error {
	if m.StatusCallbackMethod == "" {
		m.StatusCallbackMethod = "POST"
	}
	if m.Body == nil {
		m.Body = []byte{}
	}
	_, err := s.W.ExecContext(ctx, `INSERT INTO messages (`+messageCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.Sid, m.AccountSid, m.ApplicationSid, m.From, m.To, m.Target, m.Body, m.ContentType, m.Direction, m.Status,
		m.ErrorCode, m.ErrorMessage, m.StatusCallback, m.StatusCallbackMethod, msOrZero(m.ExpiresAt), msOrZero(m.DateSent),
		ms(m.DateCreated), ms(m.DateUpdated))
	if err != nil {
		return fmt.Errorf("create message %s: %w", m.Sid, err)
	}
	return nil
}

// UpdateMessageStatus records a message's status, error, expiry and date sent.
func (s *Store) UpdateMessageStatus(ctx context.Context, m Message) error {
	res, err := s.W.ExecContext(ctx, `UPDATE messages SET status = ?, error_code = ?, error_message = ?, expires_at = ?,
		date_sent = ?, date_updated = ? WHERE sid = ?`,
		m.Status, m.ErrorCode, m.ErrorMessage, msOrZero(m.ExpiresAt), msOrZero(m.DateSent), ms(m.DateUpdated), m.Sid)
	if err != nil {
		return fmt.Errorf("update message %s: %w", m.Sid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("message %s: %w", m.Sid, ErrNotFound)
	}
	return nil
}

// QueuedMessages returns an identity's queued messages, oldest first.
func (s *Store) QueuedMessages(ctx context.Context, accountSid, target string) ([]Message, error) {
	return s.queryMessages(ctx, `SELECT `+messageCols+` FROM messages WHERE status = 'queued' AND account_sid = ? AND target = ?
		ORDER BY date_created, rowid`, accountSid, target)
}

func (s *Store) queryMessages(ctx context.Context, q string, args ...any) ([]Message, error) {
	rows, err := s.R.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("messages: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	return out, nil
}

// QueuedTargets lists the identities that have queued messages.
func (s *Store) QueuedTargets(ctx context.Context) ([]MessageTarget, error) {
	rows, err := s.R.QueryContext(ctx, `SELECT DISTINCT account_sid, target FROM messages WHERE status = 'queued' AND target != ''`)
	if err != nil {
		return nil, fmt.Errorf("queued message targets: %w", err)
	}
	defer rows.Close()
	var out []MessageTarget
	for rows.Next() {
		var r MessageTarget
		if err := rows.Scan(&r.AccountSid, &r.Identity); err != nil {
			return nil, fmt.Errorf("queued message targets: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queued message targets: %w", err)
	}
	return out, nil
}

// ExpireMessages marks queued messages that expired by now undelivered and
// returns them as updated.
func (s *Store) ExpireMessages(ctx context.Context, now time.Time, code int, reason string) ([]Message, error) {
	tx, err := s.W.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("expire messages: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `UPDATE messages SET status = 'undelivered', error_code = ?, error_message = ?, date_updated = ?
		WHERE status = 'queued' AND expires_at > 0 AND expires_at <= ? RETURNING `+messageCols, code, reason, ms(now), ms(now))
	if err != nil {
		return nil, fmt.Errorf("expire messages: %w", err)
	}
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("expire messages: %w", err)
		}
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("expire messages: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("expire messages: %w", err)
	}
	return out, nil
}

// RequeueSending turns messages to clients left "sending" (a server stopped
// mid-delivery) back to "queued".
func (s *Store) RequeueSending(ctx context.Context) (int, error) {
	res, err := s.W.ExecContext(ctx, `UPDATE messages SET status = 'queued',
		expires_at = CASE WHEN expires_at = 0 THEN ? ELSE expires_at END
		WHERE status = 'sending' AND target != ''`, ms(s.now().Add(24*time.Hour)))
	if err != nil {
		return 0, fmt.Errorf("requeue messages: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Message fetches one message.
func (s *Store) Message(ctx context.Context, messageSid string) (Message, error) {
	m, err := scanMessage(s.R.QueryRowContext(ctx, `SELECT `+messageCols+` FROM messages WHERE sid = ?`, messageSid))
	if err != nil {
		return Message{}, fmt.Errorf("message %s: %w", messageSid, err)
	}
	return m, nil
}

// MessageFilter narrows ListMessages; zero fields match everything. The
// DateSent bounds are inclusive days (UTC): On selects one day.
type MessageFilter struct {
	To, From                      string
	SentOn, SentAfter, SentBefore time.Time
}

// ListMessages returns one page of an account's messages, newest first.
func (s *Store) ListMessages(ctx context.Context, accountSid string, f MessageFilter, p Page) ([]Message, bool, error) {
	var where strings.Builder
	where.WriteString(` WHERE account_sid = ?`)
	args := []any{accountSid}
	if f.To != "" {
		where.WriteString(` AND to_addr = ?`)
		args = append(args, f.To)
	}
	if f.From != "" {
		where.WriteString(` AND from_addr = ?`)
		args = append(args, f.From)
	}
	day := 24 * time.Hour
	if !f.SentOn.IsZero() {
		where.WriteString(` AND date_sent >= ? AND date_sent < ?`)
		args = append(args, ms(f.SentOn), ms(f.SentOn.Add(day)))
	}
	if !f.SentAfter.IsZero() {
		where.WriteString(` AND date_sent >= ?`)
		args = append(args, ms(f.SentAfter))
	}
	if !f.SentBefore.IsZero() {
		where.WriteString(` AND date_sent > 0 AND date_sent < ?`)
		args = append(args, ms(f.SentBefore.Add(day)))
	}
	q := `SELECT ` + messageCols + ` FROM messages` + where.String() + ` ORDER BY date_created DESC, rowid DESC LIMIT ? OFFSET ?`
	return queryPage(ctx, s.R, "messages", q, args, p, scanMessage)
}
