package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/presence"
)

// Registrar bindings are kept as an append-only log (table sip_binding_log):
// each flush of the presence registry appends one row per changed binding
// (deleted = 1 for a removal) at the end of the table, and the latest row of
// a key is its state. A table updated in place cost a WAL page write per
// binding once registrations arrived in random order (each row on another
// page: ≈ 75 µs of SQLite per binding, against ≈ 5 µs appended).
//
// The log is compacted when it has grown to twice what the last compaction
// left (plus bindingLogSlack rows): superseded, deleted and expired rows are
// removed in one statement, so the work is a constant per appended row.
type bindingLog struct {
	mu    sync.Mutex
	known bool  // rows and live were counted
	rows  int64 // rows in the log
	live  int64 // rows the last compaction left
	slack int64 // rows appended beyond live that do not yet call for compaction
}

// bindingLogSlack keeps small logs from compacting on every flush.
const bindingLogSlack = 10_000

const (
	bindingLogColumns = 4
	bindingLogBatch   = 200 // rows per INSERT: 800 parameters, below SQLite's limit
)

var bindingLogInserts sync.Map // rows → SQL

// appendBindingsSQL inserts n log rows in one statement.
func appendBindingsSQL(n int) string {
	if q, ok := bindingLogInserts.Load(n); ok {
		return q.(string)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO sip_binding_log (bkey, deleted, expires, data) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?)")
	}
	q := b.String()
	bindingLogInserts.Store(n, q)
	return q
}

// SaveBindings implements presence.Persister: it appends the changes in one
// transaction, then compacts the log when it is due.
func (s *Store) SaveBindings(ctx context.Context, upserts []presence.Binding, deletes []presence.BindingKey) error {
	if len(upserts) == 0 && len(deletes) == 0 {
		return nil
	}
	s.blog.mu.Lock()
	defer s.blog.mu.Unlock()
	if err := s.countBindingLog(ctx); err != nil {
		return err
	}
	// Every row's blobs are cut from one buffer.
	rows := make([]any, 0, bindingLogColumns*(len(upserts)+len(deletes)))
	buf := make([]byte, 0, 160*(len(upserts)+len(deletes)))
	cut := func(start int) []byte { return buf[start:len(buf):len(buf)] }
	for _, k := range deletes {
		start := len(buf)
		buf = encodeBindingKey(buf, k)
		rows = append(rows, cut(start), 1, 0, nil)
	}
	for _, b := range upserts {
		start := len(buf)
		buf = encodeBindingKey(buf, b.BindingKey())
		key := cut(start)
		start = len(buf)
		buf = encodeBindingData(buf, b)
		rows = append(rows, key, 0, ms(b.Expires), cut(start))
	}
	tx, err := s.W.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save bindings: %w", err)
	}
	defer tx.Rollback()
	var full *sql.Stmt // the statement of a whole batch, prepared once per flush
	for len(rows) > 0 {
		n := min(len(rows), bindingLogBatch*bindingLogColumns)
		if n == bindingLogBatch*bindingLogColumns {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, appendBindingsSQL(bindingLogBatch)); err != nil {
					return fmt.Errorf("save bindings: %w", err)
				}
				defer full.Close()
			}
			_, err = full.ExecContext(ctx, rows[:n]...)
		} else {
			_, err = tx.ExecContext(ctx, appendBindingsSQL(n/bindingLogColumns), rows[:n]...)
		}
		if err != nil {
			return fmt.Errorf("append bindings: %w", err)
		}
		rows = rows[n:]
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save bindings: %w", err)
	}
	s.blog.rows += int64(len(upserts) + len(deletes))
	if s.blog.rows >= 2*s.blog.live+s.blog.slack {
		if err := s.compactBindingLog(ctx); err != nil {
			// The appended rows are saved; the next flush tries again.
			return err
		}
	}
	return nil
}

// countBindingLog counts the log once (s.blog.mu held).
func (s *Store) countBindingLog(ctx context.Context) error {
	if s.blog.known {
		return nil
	}
	if err := s.W.QueryRowContext(ctx, `SELECT count(*) FROM sip_binding_log`).Scan(&s.blog.rows); err != nil {
		return fmt.Errorf("count binding log: %w", err)
	}
	s.blog.live, s.blog.known = s.blog.rows, true
	return nil
}

// compactBindingLog keeps only the latest row of each key, and only when it
// is a binding that has not expired (s.blog.mu held).
func (s *Store) compactBindingLog(ctx context.Context) error {
	tx, err := s.W.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("compact binding log: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM sip_binding_log WHERE deleted = 1 OR expires <= ?
		OR seq NOT IN (SELECT max(seq) FROM sip_binding_log GROUP BY bkey)`, ms(s.now())); err != nil {
		return fmt.Errorf("compact binding log: %w", err)
	}
	var live int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sip_binding_log`).Scan(&live); err != nil {
		return fmt.Errorf("compact binding log: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("compact binding log: %w", err)
	}
	s.blog.rows, s.blog.live = live, live
	return nil
}

// LoadBindings implements presence.Persister: the latest state of every key
// that is a binding expiring after now.
func (s *Store) LoadBindings(ctx context.Context, now time.Time) ([]presence.Binding, error) {
	rows, err := s.R.QueryContext(ctx, `SELECT bkey, expires, data FROM sip_binding_log
		WHERE seq IN (SELECT max(seq) FROM sip_binding_log GROUP BY bkey) AND deleted = 0 AND expires > ? ORDER BY seq`, ms(now))
	if err != nil {
		return nil, fmt.Errorf("load bindings: %w", err)
	}
	defer rows.Close()
	var out []presence.Binding
	for rows.Next() {
		var key, data []byte
		var exp int64
		if err := rows.Scan(&key, &exp, &data); err != nil {
			return nil, fmt.Errorf("load bindings: %w", err)
		}
		b, err := decodeBinding(key, data, exp)
		if err != nil {
			return nil, fmt.Errorf("load bindings: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load bindings: %w", err)
	}
	return out, nil
}

// moveLegacyBindings moves the rows of sip_bindings, the table bindings were
// kept in before the log (migration 0007), into the log, and drops it.
func (s *Store) moveLegacyBindings(ctx context.Context) error {
	var n int
	if err := s.W.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sip_bindings'`).Scan(&n); err != nil {
		return fmt.Errorf("legacy bindings: %w", err)
	}
	if n == 0 {
		return nil
	}
	tx, err := s.W.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("legacy bindings: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT account_sid, identity, binding_key, contact, instance_id, reg_id, call_id, cseq, q,
		expires, transport, source, local_addr, flow_id, user_agent, date_updated FROM sip_bindings`)
	if err != nil {
		return fmt.Errorf("legacy bindings: %w", err)
	}
	var bs []presence.Binding
	for rows.Next() {
		var b presence.Binding
		var cseq, exp, upd int64
		if err := rows.Scan(&b.AccountSid, &b.Identity, &b.Key, &b.Contact, &b.InstanceID, &b.RegID, &b.CallID, &cseq, &b.Q,
			&exp, &b.Transport, &b.Source, &b.Local, &b.FlowID, &b.UserAgent, &upd); err != nil {
			rows.Close()
			return fmt.Errorf("legacy bindings: %w", err)
		}
		b.CSeq, b.Expires, b.Updated = uint32(cseq), fromMS(exp), fromMS(upd)
		bs = append(bs, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("legacy bindings: %w", err)
	}
	for _, b := range bs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sip_binding_log (bkey, deleted, expires, data) VALUES (?, 0, ?, ?)`,
			encodeBindingKey(nil, b.BindingKey()), ms(b.Expires), encodeBindingData(nil, b)); err != nil {
			return fmt.Errorf("legacy bindings: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE sip_bindings`); err != nil {
		return fmt.Errorf("legacy bindings: %w", err)
	}
	return tx.Commit()
}
