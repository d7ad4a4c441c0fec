package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CallRecord is a call as stored: who, which way, and how it went.
type CallRecord struct {
	Sid, AccountSid, ParentCallSid, ApplicationSid string
	From, To, CallerName, Direction, Status        string
	Started, Answered, Ended                       time.Time // zero: not (yet)
	Duration                                       time.Duration
	DateCreated, DateUpdated                       time.Time
}

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func timeOrZero(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return fromMS(v)
}

// SaveCall inserts or updates a call; date_created is kept from the first save.
func (s *Store) SaveCall(ctx context.Context, c CallRecord) error {
	now := ms(s.now())
	_, err := s.W.ExecContext(ctx, `INSERT INTO calls (sid, account_sid, parent_call_sid, application_sid, from_addr, to_addr,
		caller_name, direction, status, start_time, answer_time, end_time, duration_ms, date_created, date_updated)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(sid) DO UPDATE SET status = excluded.status, start_time = excluded.start_time,
		answer_time = excluded.answer_time, end_time = excluded.end_time, duration_ms = excluded.duration_ms,
		date_updated = excluded.date_updated`,
		c.Sid, c.AccountSid, c.ParentCallSid, c.ApplicationSid, c.From, c.To, c.CallerName, c.Direction, c.Status,
		msOrZero(c.Started), msOrZero(c.Answered), msOrZero(c.Ended), c.Duration.Milliseconds(), now, now)
	if err != nil {
		return fmt.Errorf("save call %s: %w", c.Sid, err)
	}
	return nil
}

const callCols = `sid, account_sid, parent_call_sid, application_sid, from_addr, to_addr, caller_name, direction, status,
	start_time, answer_time, end_time, duration_ms, date_created, date_updated`

func scanCall(row scanner) (CallRecord, error) {
	var c CallRecord
	var st, an, en, dur, created, updated int64
	err := row.Scan(&c.Sid, &c.AccountSid, &c.ParentCallSid, &c.ApplicationSid, &c.From, &c.To, &c.CallerName, &c.Direction,
		&c.Status, &st, &an, &en, &dur, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return CallRecord{}, ErrNotFound
	}
	if err != nil {
		return CallRecord{}, err
	}
	c.Started, c.Answered, c.Ended = timeOrZero(st), timeOrZero(an), timeOrZero(en)
	c.Duration = time.Duration(dur) * time.Millisecond
	c.DateCreated, c.DateUpdated = fromMS(created), fromMS(updated)
	return c, nil
}

// Call fetches one call.
func (s *Store) Call(ctx context.Context, callSid string) (CallRecord, error) {
	c, err := scanCall(s.R.QueryRowContext(ctx, `SELECT `+callCols+` FROM calls WHERE sid = ?`, callSid))
	if err != nil {
		return CallRecord{}, fmt.Errorf("call %s: %w", callSid, err)
	}
	return c, nil
}

// CallFilter narrows ListCalls; empty fields match everything.
type CallFilter struct {
	Status, To, From, ParentCallSid string
}

// ListCalls returns one page of an account's calls, newest first.
func (s *Store) ListCalls(ctx context.Context, accountSid string, f CallFilter, p Page) ([]CallRecord, bool, error) {
	q := `SELECT ` + callCols + ` FROM calls WHERE account_sid = ?`
	args := []any{accountSid}
	for _, c := range []struct{ col, v string }{{"status", f.Status}, {"to_addr", f.To}, {"from_addr", f.From}, {"parent_call_sid", f.ParentCallSid}} {
		if c.v != "" {
			q += ` AND ` + c.col + ` = ?`
			args = append(args, c.v)
		}
	}
	q += ` ORDER BY date_created DESC, rowid DESC LIMIT ? OFFSET ?`
	return queryPage(ctx, s.R, "calls", q, args, p, scanCall)
}

// RecordingRecord is a stored recording.
type RecordingRecord struct {
	Sid, AccountSid, CallSid, Path string
	Duration                       time.Duration
	DateCreated                    time.Time
}

// CreateRecording stores a finished recording.
func (s *Store) CreateRecording(ctx context.Context, r RecordingRecord) error {
	if _, err := s.W.ExecContext(ctx, `INSERT INTO recordings (sid, account_sid, call_sid, path, duration_ms, date_created)
		VALUES (?, ?, ?, ?, ?, ?)`, r.Sid, r.AccountSid, r.CallSid, r.Path, r.Duration.Milliseconds(), ms(r.DateCreated)); err != nil {
		return fmt.Errorf("create recording %s: %w", r.Sid, err)
	}
	return nil
}

func scanRecording(row scanner) (RecordingRecord, error) {
	var r RecordingRecord
	var dur, created int64
	err := row.Scan(&r.Sid, &r.AccountSid, &r.CallSid, &r.Path, &dur, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return RecordingRecord{}, ErrNotFound
	}
	if err != nil {
		return RecordingRecord{}, err
	}
	r.Duration, r.DateCreated = time.Duration(dur)*time.Millisecond, fromMS(created)
	return r, nil
}

const recCols = `sid, account_sid, call_sid, path, duration_ms, date_created`

// Recording fetches one recording.
func (s *Store) Recording(ctx context.Context, recSid string) (RecordingRecord, error) {
	r, err := scanRecording(s.R.QueryRowContext(ctx, `SELECT `+recCols+` FROM recordings WHERE sid = ?`, recSid))
	if err != nil {
		return RecordingRecord{}, fmt.Errorf("recording %s: %w", recSid, err)
	}
	return r, nil
}

// ListRecordings returns one page of an account's recordings, newest first,
// optionally of one call.
func (s *Store) ListRecordings(ctx context.Context, accountSid, callSid string, p Page) ([]RecordingRecord, bool, error) {
	q := `SELECT ` + recCols + ` FROM recordings WHERE account_sid = ?`
	args := []any{accountSid}
	if callSid != "" {
		q += ` AND call_sid = ?`
		args = append(args, callSid)
	}
	q += ` ORDER BY date_created DESC, rowid DESC LIMIT ? OFFSET ?`
	return queryPage(ctx, s.R, "recordings", q, args, p, scanRecording)
}
