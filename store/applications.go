package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley/internal/sid"
)

// Application (AP…) holds the webhooks that drive an account's calls and messages.
type Application struct {
	Sid                  string
	AccountSid           string
	FriendlyName         string
	VoiceURL             string
	VoiceMethod          string
	VoiceFallbackURL     string
	VoiceFallbackMethod  string
	StatusCallback       string
	StatusCallbackMethod string
	MessagingURL         string
	MessagingMethod      string
	DateCreated          time.Time
	DateUpdated          time.Time
}

const appCols = `sid, account_sid, friendly_name, voice_url, voice_method, voice_fallback_url, voice_fallback_method,
	status_callback, status_callback_method, messaging_url, messaging_method, date_created, date_updated`

func scanApp(row scanner) (Application, error) {
	var a Application
	var created, updated int64
	err := row.Scan(&a.Sid, &a.AccountSid, &a.FriendlyName, &a.VoiceURL, &a.VoiceMethod, &a.VoiceFallbackURL, &a.VoiceFallbackMethod,
		&a.StatusCallback, &a.StatusCallbackMethod, &a.MessagingURL, &a.MessagingMethod, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Application{}, ErrNotFound
	}
	if err != nil {
		return Application{}, err
	}
	a.DateCreated, a.DateUpdated = fromMS(created), fromMS(updated)
	return a, nil
}

func defaultMethod(m string) string {
	if m == "" {
		return "POST"
	}
	return m
}

// CreateApplication stores a new application; Sid and dates are assigned here.
func (s *Store) CreateApplication(ctx context.Context, a Application) (Application, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	a.Sid = sid.New(sid.Application)
	a.DateCreated, a.DateUpdated = now, now
	a.VoiceMethod = defaultMethod(a.VoiceMethod)
	a.VoiceFallbackMethod = defaultMethod(a.VoiceFallbackMethod)
	a.StatusCallbackMethod = defaultMethod(a.StatusCallbackMethod)
	a.MessagingMethod = defaultMethod(a.MessagingMethod)
	_, err := s.W.ExecContext(ctx, `INSERT INTO applications (`+appCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.Sid, a.AccountSid, a.FriendlyName, a.VoiceURL, a.VoiceMethod, a.VoiceFallbackURL, a.VoiceFallbackMethod,
		a.StatusCallback, a.StatusCallbackMethod, a.MessagingURL, a.MessagingMethod, ms(now), ms(now))
	if err != nil {
		return Application{}, fmt.Errorf("create application: %w", err)
	}
	return a, nil
}

// Application fetches one application.
func (s *Store) Application(ctx context.Context, appSid string) (Application, error) {
	a, err := scanApp(s.R.QueryRowContext(ctx, `SELECT `+appCols+` FROM applications WHERE sid = ?`, appSid))
	if err != nil {
		return Application{}, fmt.Errorf("application %s: %w", appSid, err)
	}
	return a, nil
}

// ListApplications returns one page of an account's applications, optionally
// only those with the given friendly name.
func (s *Store) ListApplications(ctx context.Context, accountSid, friendlyName string, p Page) ([]Application, bool, error) {
	q := `SELECT ` + appCols + ` FROM applications WHERE account_sid = ?`
	args := []any{accountSid}
	if friendlyName != "" {
		q += ` AND friendly_name = ?`
		args = append(args, friendlyName)
	}
	q += ` ORDER BY date_created, rowid LIMIT ? OFFSET ?`
	return queryPage(ctx, s.R, "applications", q, args, p, scanApp)
}

// UpdateApplication replaces an application's mutable fields.
func (s *Store) UpdateApplication(ctx context.Context, a Application) (Application, error) {
	a.DateUpdated = s.now().UTC().Truncate(time.Millisecond)
	res, err := s.W.ExecContext(ctx, `UPDATE applications SET friendly_name = ?, voice_url = ?, voice_method = ?,
		voice_fallback_url = ?, voice_fallback_method = ?, status_callback = ?, status_callback_method = ?,
		messaging_url = ?, messaging_method = ?, date_updated = ? WHERE sid = ?`,
		a.FriendlyName, a.VoiceURL, defaultMethod(a.VoiceMethod), a.VoiceFallbackURL, defaultMethod(a.VoiceFallbackMethod),
		a.StatusCallback, defaultMethod(a.StatusCallbackMethod), a.MessagingURL, defaultMethod(a.MessagingMethod),
		ms(a.DateUpdated), a.Sid)
	if err != nil {
		return Application{}, fmt.Errorf("update application %s: %w", a.Sid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Application{}, fmt.Errorf("application %s: %w", a.Sid, ErrNotFound)
	}
	return s.Application(ctx, a.Sid)
}

// DeleteApplication removes an application.
func (s *Store) DeleteApplication(ctx context.Context, appSid string) error {
	res, err := s.W.ExecContext(ctx, `DELETE FROM applications WHERE sid = ?`, appSid)
	if err != nil {
		return fmt.Errorf("delete application %s: %w", appSid, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("application %s: %w", appSid, ErrNotFound)
	}
	return nil
}
