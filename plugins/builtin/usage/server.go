package usage

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/internal/sqlite"
	"github.com/parleyhq/parley/plugins/builtin/internal/runner"
	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the built-in plugin's schema migrations.
func Migrations() fs.FS { return runner.Migrations(migrationFiles) }

// Name and Version identify the built-in usage plugin.
const (
	Name    = "usage"
	Version = "1.0.0"
)

// Limits on what one event or trigger may carry.
const (
	maxIDLen       = 128
	maxFieldLen    = 256
	insertChunk    = 400 // events per multi-row INSERT (2 parameters each)
	never          = int64(math.MinInt64)
	outboxPollCap  = 250 * time.Millisecond
	defaultLeaseMS = 30_000
)

type acctCat struct{ account, category string }

type counterKey struct {
	account, category, period string
	start                     int64
}

type totals struct {
	count int64
	usage float64
}

// trig is a trigger in memory; pb holds its stored fields.
type trig struct {
	pb          *usagev1.Trigger
	value       float64
	period      string
	firedPeriod int64 // start of the period it last fired in; never
}

// Server is the built-in usage plugin: counters, triggers and the callback
// outbox in its own SQLite database. Ingestion is serialised (SQLite has one
// writer): each batch is one transaction that records the event ids, adds to
// the counters and, for every trigger the batch crossed, marks it fired and
// writes its outbox row.
type Server struct {
	usagev1.UnimplementedUsageServer

	db  *sqlite.DB
	cfg usagev1.Config
	now func() time.Time

	mu       sync.Mutex // ingestion and trigger changes
	triggers map[acctCat][]*trig
	bySid    map[string]*trig

	wakeMu sync.Mutex
	wake   chan struct{} // closed (and replaced) when the outbox gets work
}

// NewServer loads the triggers from db. now may be nil (time.Now).
func NewServer(ctx context.Context, db *sqlite.DB, cfg usagev1.Config, now func() time.Time) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	// A larger page cache for the one writer connection: the id index
	// and the counters stay in memory under sustained ingestion.
	if _, err := db.W.ExecContext(ctx, `PRAGMA cache_size = -65536`); err != nil {
		return nil, fmt.Errorf("usage db cache size: %w", err)
	}
	s := &Server{db: db, cfg: cfg, now: now, triggers: map[acctCat][]*trig{}, bySid: map[string]*trig{}, wake: make(chan struct{})}
	rows, err := db.W.QueryContext(ctx, `SELECT `+triggerCols+` FROM triggers ORDER BY date_created_ms, sid`)
	if err != nil {
		return nil, fmt.Errorf("load triggers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanTrigger(rows)
		if err != nil {
			return nil, fmt.Errorf("load triggers: %w", err)
		}
		s.addTrigger(t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load triggers: %w", err)
	}
	return s, nil
}

const triggerCols = `sid, account_sid, friendly_name, usage_category, trigger_by, recurring, trigger_value, callback_url, callback_method, action, action_resource, action_limit, fired_period_ms, date_fired_ms, date_created_ms, date_updated_ms`

func scanTrigger(sc interface{ Scan(...any) error }) (*trig, error) {
	pb := &usagev1.Trigger{}
	var value float64
	var fired sql.NullInt64
	if err := sc.Scan(&pb.Sid, &pb.AccountSid, &pb.FriendlyName, &pb.UsageCategory, &pb.TriggerBy, &pb.Recurring, &value,
		&pb.CallbackUrl, &pb.CallbackMethod, &pb.Action, &pb.ActionResource, &pb.ActionLimit, &fired,
		&pb.DateFiredUnixMs, &pb.DateCreatedUnixMs, &pb.DateUpdatedUnixMs); err != nil {
		return nil, err
	}
	period, err := usagev1.PeriodOf(pb.Recurring)
	if err != nil {
		return nil, err
	}
	pb.TriggerValue = formatValue(value)
	t := &trig{pb: pb, value: value, period: period, firedPeriod: never}
	if fired.Valid {
		t.firedPeriod = fired.Int64
	}
	return t, nil
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func (s *Server) addTrigger(t *trig) {
	k := acctCat{t.pb.AccountSid, t.pb.UsageCategory}
	s.triggers[k] = append(s.triggers[k], t)
	s.bySid[t.pb.Sid] = t
}

func (s *Server) removeTrigger(t *trig) {
	k := acctCat{t.pb.AccountSid, t.pb.UsageCategory}
	list := s.triggers[k]
	for i, x := range list {
		if x == t {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(s.triggers, k)
	} else {
		s.triggers[k] = list
	}
	delete(s.bySid, t.pb.Sid)
}

// Run prunes remembered event ids and old delivered outbox rows every
// interval until ctx ends.
func (s *Server) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
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

// Prune forgets event ids and finished outbox rows older than the retention.
func (s *Server) Prune(ctx context.Context) error {
	cut := s.now().Add(-s.cfg.EventRetention)
	// Ids are filed by the day they arrived: keep whole days, so an id is
	// remembered for at least the retention.
	if _, err := s.db.W.ExecContext(ctx, `DELETE FROM seen_events WHERE day_ms < ?`, usagev1.PeriodStart(usagev1.PeriodDay, cut).UnixMilli()); err != nil {
		return fmt.Errorf("prune events: %w", err)
	}
	if _, err := s.db.W.ExecContext(ctx, `DELETE FROM outbox WHERE state <> 'pending' AND done_ms < ?`, cut.UnixMilli()); err != nil {
		return fmt.Errorf("prune outbox: %w", err)
	}
	return nil
}

// Record ingests one batch.
func (s *Server) Record(ctx context.Context, req *usagev1.RecordRequest) (*usagev1.RecordResponse, error) {
	res, err := s.ingest(ctx, req.GetEvents())
	if err != nil {
		return nil, err
	}
	res.Seq = req.GetSeq()
	return res, nil
}

// Ingest ingests batches from a stream, answering each after its commit.
func (s *Server) Ingest(stream usagev1.Usage_IngestServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			if errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled {
				return nil
			}
			return err // io.EOF ends the stream cleanly too
		}
		res, err := s.ingest(stream.Context(), req.GetEvents())
		if err != nil {
			return err
		}
		res.Seq = req.GetSeq()
		if err := stream.Send(res); err != nil {
			return err
		}
	}
}

func checkEvent(e *usagev1.Event) error {
	switch {
	case e.GetId() == "" || len(e.GetId()) > maxIDLen:
		return fmt.Errorf("event id %q: want 1..%d bytes", e.GetId(), maxIDLen)
	case e.GetAccountSid() == "" || len(e.GetAccountSid()) > maxFieldLen:
		return fmt.Errorf("event %s: account_sid is required", e.GetId())
	case e.GetCategory() == "" || len(e.GetCategory()) > maxFieldLen:
		return fmt.Errorf("event %s: category is required", e.GetId())
	case e.GetCount() < 0:
		return fmt.Errorf("event %s: negative count", e.GetId())
	case e.GetUsage() < 0 || math.IsNaN(e.GetUsage()) || math.IsInf(e.GetUsage(), 0):
		return fmt.Errorf("event %s: usage %v is not a finite non-negative number", e.GetId(), e.GetUsage())
	}
	return nil
}

type firing struct {
	t     *trig
	start int64
	value float64
	token string
}

// ingest counts the events not seen before and fires the triggers they
// cross, all in one transaction.
func (s *Server) ingest(ctx context.Context, evs []*usagev1.Event) (*usagev1.RecordResponse, error) {
	for _, e := range evs {
		if err := checkEvent(e); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
	}
	if len(evs) == 0 {
		return &usagev1.RecordResponse{}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	nowMS := now.UnixMilli()
	tx, err := s.db.W.BeginTx(ctx, nil)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "begin: %v", err)
	}
	defer tx.Rollback()

	fresh, err := insertIDs(ctx, tx, evs, usagev1.PeriodStart(usagev1.PeriodDay, now).UnixMilli())
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "record event ids: %v", err)
	}
	agg := map[counterKey]totals{}
	var accepted int64
	periods := usagev1.Periods()
	for _, e := range evs {
		if !fresh[e.GetId()] {
			continue
		}
		delete(fresh, e.GetId()) // a repeat within the batch counts once
		accepted++
		at := now
		if e.GetTimeUnixMs() != 0 {
			at = time.UnixMilli(e.GetTimeUnixMs())
		}
		for _, p := range periods {
			k := counterKey{e.GetAccountSid(), e.GetCategory(), p, usagev1.PeriodStart(p, at).UnixMilli()}
			t := agg[k]
			t.count += e.GetCount()
			t.usage += e.GetUsage()
			agg[k] = t
		}
	}
	res := &usagev1.RecordResponse{Accepted: accepted, Duplicates: int64(len(evs)) - accepted}
	if accepted == 0 {
		return res, nil // nothing written but ids: no commit needed
	}
	upsert, err := tx.PrepareContext(ctx, `INSERT INTO counters (account_sid, category, period, start_ms, count, usage) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT DO UPDATE SET count = count + excluded.count, usage = usage + excluded.usage RETURNING count, usage`)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "prepare: %v", err)
	}
	defer upsert.Close()
	after := make(map[counterKey]totals, len(agg))
	for k, d := range agg {
		var t totals
		if err := upsert.QueryRowContext(ctx, k.account, k.category, k.period, k.start, d.count, d.usage).Scan(&t.count, &t.usage); err != nil {
			return nil, status.Errorf(codes.Unavailable, "update counter: %v", err)
		}
		after[k] = t
	}

	var fired []firing
	seen := map[acctCat]bool{}
	for k := range agg {
		ac := acctCat{k.account, k.category}
		if seen[ac] {
			continue
		}
		seen[ac] = true
		for _, t := range s.triggers[ac] {
			start := usagev1.PeriodStart(t.period, now).UnixMilli()
			cur, ok := after[counterKey{ac.account, ac.category, t.period, start}]
			if !ok || t.firedPeriod == start {
				continue // not moved by this batch, or already fired in this period
			}
			v := float64(cur.count)
			if t.pb.TriggerBy == usagev1.ByUsage {
				v = cur.usage
			}
			if v < t.value {
				continue
			}
			f := firing{t: t, start: start, value: v, token: t.pb.Sid + "-" + strconv.FormatInt(start, 10)}
			if err := s.writeFiring(ctx, tx, f, nowMS); err != nil {
				return nil, status.Errorf(codes.Unavailable, "fire trigger %s: %v", t.pb.Sid, err)
			}
			fired = append(fired, f)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, status.Errorf(codes.Unavailable, "commit: %v", err)
	}
	for _, f := range fired {
		f.t.firedPeriod = f.start
		f.t.pb.DateFiredUnixMs = nowMS
	}
	res.Fired = int64(len(fired))
	if len(fired) > 0 {
		s.notify()
	}
	return res, nil
}

// insertIDs records the event ids and returns those not seen before.
func insertIDs(ctx context.Context, tx *sql.Tx, evs []*usagev1.Event, dayMS int64) (map[string]bool, error) {
	fresh := make(map[string]bool, len(evs))
	var b strings.Builder
	args := make([]any, 0, 2*insertChunk)
	for i := 0; i < len(evs); i += insertChunk {
		chunk := evs[i:min(i+insertChunk, len(evs))]
		b.Reset()
		args = args[:0]
		b.WriteString(`INSERT INTO seen_events (id, day_ms) VALUES `)
		for j, e := range chunk {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`(?,?)`)
			args = append(args, e.GetId(), dayMS)
		}
		b.WriteString(` ON CONFLICT DO NOTHING RETURNING id`)
		rows, err := tx.QueryContext(ctx, b.String(), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			fresh[id] = true
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return fresh, nil
}

func (s *Server) writeFiring(ctx context.Context, tx *sql.Tx, f firing, nowMS int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE triggers SET fired_period_ms = ?, date_fired_ms = ? WHERE sid = ?`, f.start, nowMS, f.t.pb.Sid); err != nil {
		return err
	}
	snap := proto.Clone(f.t.pb).(*usagev1.Trigger)
	snap.DateFiredUnixMs = nowMS
	snap.CurrentValue = f.value
	js, err := protojson.Marshal(snap)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO outbox (token, trigger_sid, account_sid, trigger_json, date_fired_ms, current_value, period_start_ms, next_attempt_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (token) DO NOTHING`,
		f.token, f.t.pb.Sid, f.t.pb.AccountSid, string(js), nowMS, f.value, f.start, nowMS)
	return err
}

func (s *Server) notify() {
	s.wakeMu.Lock()
	close(s.wake)
	s.wake = make(chan struct{})
	s.wakeMu.Unlock()
}

func (s *Server) wakeChan() <-chan struct{} {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	return s.wake
}

// Records returns usage per category over a range, or per period.
func (s *Server) Records(ctx context.Context, req *usagev1.RecordsRequest) (*usagev1.RecordsResponse, error) {
	if req.GetAccountSid() == "" {
		return nil, status.Error(codes.InvalidArgument, "account_sid is required")
	}
	start, end := req.GetStartUnixMs(), req.GetEndUnixMs()
	if end == 0 {
		end = math.MaxInt64
	}
	if start > end {
		return nil, status.Errorf(codes.InvalidArgument, "start %d is after end %d", start, end)
	}
	catSQL, catArgs := "", []any{}
	if c := req.GetCategory(); c != "" {
		catSQL, catArgs = ` AND category = ?`, []any{c}
	}
	out := &usagev1.RecordsResponse{}
	switch g := req.GetGranularity(); g {
	case "", "alltime":
		q := `SELECT category, SUM(count), SUM(usage) FROM counters WHERE account_sid = ? AND period = 'day' AND start_ms >= ? AND start_ms < ?` + catSQL + ` GROUP BY category`
		args := append([]any{req.GetAccountSid(), usagev1.PeriodStart(usagev1.PeriodDay, time.UnixMilli(start)).UnixMilli(), end}, catArgs...)
		if g == "alltime" {
			q = `SELECT category, count, usage FROM counters WHERE account_sid = ? AND period = 'all'` + catSQL
			args = append([]any{req.GetAccountSid()}, catArgs...)
			start, end = 0, 0
		}
		rows, err := s.db.R.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "records: %v", err)
		}
		defer rows.Close()
		got := map[string]*usagev1.Record{}
		for rows.Next() {
			r := &usagev1.Record{}
			if err := rows.Scan(&r.Category, &r.Count, &r.Usage); err != nil {
				return nil, status.Errorf(codes.Unavailable, "records: %v", err)
			}
			got[r.Category] = r
		}
		if err := rows.Err(); err != nil {
			return nil, status.Errorf(codes.Unavailable, "records: %v", err)
		}
		cats := usagev1.Categories()
		if c := req.GetCategory(); c != "" {
			cats = []string{c}
		}
		for c := range got {
			if !usagev1.ValidCategory(c) && req.GetCategory() == "" {
				cats = append(cats, c)
			}
		}
		if end == math.MaxInt64 {
			end = 0
		}
		for _, c := range cats {
			r := got[c]
			if r == nil {
				r = &usagev1.Record{Category: c}
			}
			r.StartUnixMs, r.EndUnixMs = start, end
			setUnits(r)
			out.Records = append(out.Records, r)
		}
	case "daily", "monthly", "yearly":
		period := map[string]string{"daily": usagev1.PeriodDay, "monthly": usagev1.PeriodMonth, "yearly": usagev1.PeriodYear}[g]
		rows, err := s.db.R.QueryContext(ctx, `SELECT category, start_ms, count, usage FROM counters WHERE account_sid = ? AND period = ? AND start_ms >= ? AND start_ms < ?`+catSQL+` ORDER BY start_ms, category`,
			append([]any{req.GetAccountSid(), period, usagev1.PeriodStart(period, time.UnixMilli(start)).UnixMilli(), end}, catArgs...)...)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "records: %v", err)
		}
		defer rows.Close()
		for rows.Next() {
			r := &usagev1.Record{}
			if err := rows.Scan(&r.Category, &r.StartUnixMs, &r.Count, &r.Usage); err != nil {
				return nil, status.Errorf(codes.Unavailable, "records: %v", err)
			}
			r.EndUnixMs = usagev1.PeriodEnd(period, time.UnixMilli(r.StartUnixMs).UTC()).UnixMilli()
			setUnits(r)
			out.Records = append(out.Records, r)
		}
		if err := rows.Err(); err != nil {
			return nil, status.Errorf(codes.Unavailable, "records: %v", err)
		}
	default:
		return nil, status.Errorf(codes.InvalidArgument, "granularity %q: want daily, monthly, yearly, alltime or empty", g)
	}
	return out, nil
}

func setUnits(r *usagev1.Record) {
	if u, ok := usagev1.Units(r.Category); ok {
		r.CountUnit, r.UsageUnit = u.Count, u.Usage
	}
}

// currentValue reads the counter a trigger watches, for the current period.
func (s *Server) currentValue(ctx context.Context, t *trig) (float64, error) {
	start := usagev1.PeriodStart(t.period, s.now()).UnixMilli()
	var c int64
	var u float64
	err := s.db.R.QueryRowContext(ctx, `SELECT count, usage FROM counters WHERE account_sid = ? AND category = ? AND period = ? AND start_ms = ?`,
		t.pb.AccountSid, t.pb.UsageCategory, t.period, start).Scan(&c, &u)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if t.pb.TriggerBy == usagev1.ByUsage {
		return u, nil
	}
	return float64(c), nil
}

func (s *Server) view(ctx context.Context, t *trig) (*usagev1.Trigger, error) {
	out := proto.Clone(t.pb).(*usagev1.Trigger)
	v, err := s.currentValue(ctx, t)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "current value: %v", err)
	}
	out.CurrentValue = v
	return out, nil
}

// ParseTriggerValue parses a TriggerValue: a non-negative number, or "+N"
// (relative is true) meaning N more than the current value.
func ParseTriggerValue(s string) (v float64, relative bool, err error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "+"); ok {
		s, relative = rest, true
	}
	v, err = strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) || s == "" {
		return 0, false, fmt.Errorf("trigger value %q: want a non-negative number, optionally with a leading +", s)
	}
	return v, relative, nil
}

// CheckTrigger validates the fields of a trigger to create.
func CheckTrigger(t *usagev1.Trigger) error {
	if t.GetAccountSid() == "" {
		return errors.New("account_sid is required")
	}
	if !usagev1.ValidCategory(t.GetUsageCategory()) {
		return fmt.Errorf("usage category %q is not one of %s", t.GetUsageCategory(), strings.Join(usagev1.Categories(), ", "))
	}
	if _, _, err := ParseTriggerValue(t.GetTriggerValue()); err != nil {
		return err
	}
	if by := t.GetTriggerBy(); by != usagev1.ByCount && by != usagev1.ByUsage {
		return fmt.Errorf("trigger by %q: want count or usage", by)
	}
	if _, err := usagev1.PeriodOf(t.GetRecurring()); err != nil {
		return err
	}
	if m := t.GetCallbackMethod(); m != "GET" && m != "POST" {
		return fmt.Errorf("callback method %q: want GET or POST", m)
	}
	if len(t.GetCallbackUrl()) > 2048 || len(t.GetFriendlyName()) > maxFieldLen {
		return errors.New("callback url or friendly name too long")
	}
	switch t.GetAction() {
	case usagev1.ActionNone, usagev1.ActionSuspendAccount:
	case usagev1.ActionLimitAdmission:
		if t.GetActionResource() == "" || t.GetActionLimit() < 0 {
			return errors.New("action limit-admission needs an action resource and a limit >= 0")
		}
	default:
		return fmt.Errorf("action %q: want %q, %q or none", t.GetAction(), usagev1.ActionSuspendAccount, usagev1.ActionLimitAdmission)
	}
	if t.GetCallbackUrl() == "" && t.GetAction() == usagev1.ActionNone {
		return errors.New("a trigger needs a callback url or an action")
	}
	return nil
}

// CreateTrigger stores a trigger; a relative value becomes absolute now.
func (s *Server) CreateTrigger(ctx context.Context, req *usagev1.CreateTriggerRequest) (*usagev1.Trigger, error) {
	in := proto.Clone(req.GetTrigger()).(*usagev1.Trigger)
	if in == nil {
		in = &usagev1.Trigger{}
	}
	if in.TriggerBy == "" {
		in.TriggerBy = usagev1.ByUsage
	}
	if in.CallbackMethod == "" {
		in.CallbackMethod = "POST"
	}
	in.CallbackMethod = strings.ToUpper(in.CallbackMethod)
	if err := CheckTrigger(in); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	value, relative, _ := ParseTriggerValue(in.TriggerValue)
	period, _ := usagev1.PeriodOf(in.Recurring)
	if in.Sid == "" {
		in.Sid = sid.New(sid.UsageTrigger)
	}
	nowMS := s.now().UnixMilli()
	in.DateCreatedUnixMs, in.DateUpdatedUnixMs, in.DateFiredUnixMs, in.CurrentValue = nowMS, nowMS, 0, 0
	t := &trig{pb: in, period: period, firedPeriod: never}

	s.mu.Lock()
	defer s.mu.Unlock()
	if relative {
		cur, err := s.currentValue(ctx, t)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "current value: %v", err)
		}
		value += cur
	}
	t.value = value
	in.TriggerValue = formatValue(value)
	if _, err := s.db.W.ExecContext(ctx, `INSERT INTO triggers (`+triggerCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0, ?, ?)`,
		in.Sid, in.AccountSid, in.FriendlyName, in.UsageCategory, in.TriggerBy, in.Recurring, value, in.CallbackUrl, in.CallbackMethod,
		in.Action, in.ActionResource, in.ActionLimit, nowMS, nowMS); err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return nil, status.Errorf(codes.AlreadyExists, "trigger %s exists", in.Sid)
		}
		return nil, status.Errorf(codes.Unavailable, "create trigger: %v", err)
	}
	s.addTrigger(t)
	return s.view(ctx, t)
}

func (s *Server) owned(account, sidv string) (*trig, error) {
	t := s.bySid[sidv]
	if t == nil || t.pb.AccountSid != account {
		return nil, status.Errorf(codes.NotFound, "trigger %s not found", sidv)
	}
	return t, nil
}

// ListTriggers lists an account's triggers, oldest first.
func (s *Server) ListTriggers(ctx context.Context, req *usagev1.ListTriggersRequest) (*usagev1.ListTriggersResponse, error) {
	s.mu.Lock()
	var list []*trig
	for _, ts := range s.triggers {
		for _, t := range ts {
			if t.pb.AccountSid != req.GetAccountSid() ||
				(req.GetUsageCategory() != "" && t.pb.UsageCategory != req.GetUsageCategory()) ||
				(req.GetRecurring() != "" && t.pb.Recurring != req.GetRecurring()) ||
				(req.GetTriggerBy() != "" && t.pb.TriggerBy != req.GetTriggerBy()) {
				continue
			}
			list = append(list, &trig{pb: proto.Clone(t.pb).(*usagev1.Trigger), period: t.period, value: t.value})
		}
	}
	s.mu.Unlock()
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i].pb, list[j].pb
		if a.DateCreatedUnixMs != b.DateCreatedUnixMs {
			return a.DateCreatedUnixMs < b.DateCreatedUnixMs
		}
		return a.Sid < b.Sid
	})
	out := &usagev1.ListTriggersResponse{}
	for _, t := range list {
		v, err := s.view(ctx, t)
		if err != nil {
			return nil, err
		}
		out.Triggers = append(out.Triggers, v)
	}
	return out, nil
}

// FetchTrigger returns one trigger with its current value.
func (s *Server) FetchTrigger(ctx context.Context, req *usagev1.FetchTriggerRequest) (*usagev1.Trigger, error) {
	s.mu.Lock()
	t, err := s.owned(req.GetAccountSid(), req.GetSid())
	var c *trig
	if err == nil {
		c = &trig{pb: proto.Clone(t.pb).(*usagev1.Trigger), period: t.period, value: t.value}
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.view(ctx, c)
}

// UpdateTrigger changes the friendly name, callback url or method.
func (s *Server) UpdateTrigger(ctx context.Context, req *usagev1.UpdateTriggerRequest) (*usagev1.Trigger, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.owned(req.GetAccountSid(), req.GetSid())
	if err != nil {
		return nil, err
	}
	next := proto.Clone(t.pb).(*usagev1.Trigger)
	if req.FriendlyName != nil {
		next.FriendlyName = req.GetFriendlyName()
	}
	if req.CallbackUrl != nil {
		next.CallbackUrl = req.GetCallbackUrl()
	}
	if req.CallbackMethod != nil {
		next.CallbackMethod = strings.ToUpper(req.GetCallbackMethod())
	}
	if err := CheckTrigger(next); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	next.DateUpdatedUnixMs = s.now().UnixMilli()
	if _, err := s.db.W.ExecContext(ctx, `UPDATE triggers SET friendly_name = ?, callback_url = ?, callback_method = ?, date_updated_ms = ? WHERE sid = ?`,
		next.FriendlyName, next.CallbackUrl, next.CallbackMethod, next.DateUpdatedUnixMs, next.Sid); err != nil {
		return nil, status.Errorf(codes.Unavailable, "update trigger: %v", err)
	}
	t.pb = next
	return s.view(ctx, &trig{pb: proto.Clone(next).(*usagev1.Trigger), period: t.period, value: t.value})
}

// DeleteTrigger removes a trigger. Outbox entries it already wrote are
// still delivered.
func (s *Server) DeleteTrigger(ctx context.Context, req *usagev1.DeleteTriggerRequest) (*usagev1.DeleteTriggerResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.owned(req.GetAccountSid(), req.GetSid())
	if err != nil {
		return &usagev1.DeleteTriggerResponse{Found: false}, nil
	}
	if _, err := s.db.W.ExecContext(ctx, `DELETE FROM triggers WHERE sid = ?`, t.pb.Sid); err != nil {
		return nil, status.Errorf(codes.Unavailable, "delete trigger: %v", err)
	}
	s.removeTrigger(t)
	return &usagev1.DeleteTriggerResponse{Found: true}, nil
}

// ClaimOutbox leases due entries to the caller, waiting up to wait_ms for one.
func (s *Server) ClaimOutbox(ctx context.Context, req *usagev1.ClaimOutboxRequest) (*usagev1.ClaimOutboxResponse, error) {
	if req.GetHolder() == "" {
		return nil, status.Error(codes.InvalidArgument, "holder is required")
	}
	limit := int(req.GetMax())
	if limit <= 0 || limit > 100 {
		limit = 16
	}
	lease := req.GetLeaseMs()
	if lease <= 0 {
		lease = defaultLeaseMS
	}
	deadline := time.Now().Add(time.Duration(req.GetWaitMs()) * time.Millisecond)
	for {
		wake := s.wakeChan()
		entries, err := s.claim(ctx, req.GetHolder(), limit, lease)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "claim outbox: %v", err)
		}
		left := time.Until(deadline)
		if len(entries) > 0 || left <= 0 {
			return &usagev1.ClaimOutboxResponse{Entries: entries}, nil
		}
		// Entries that become due (retries, expired leases) are found by
		// polling; fresh firings wake us at once.
		t := time.NewTimer(min(left, outboxPollCap))
		select {
		case <-ctx.Done():
			t.Stop()
			return &usagev1.ClaimOutboxResponse{}, nil
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (s *Server) claim(ctx context.Context, holder string, limit int, lease int64) ([]*usagev1.OutboxEntry, error) {
	now := s.now().UnixMilli()
	tx, err := s.db.W.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, token, trigger_json, date_fired_ms, current_value, period_start_ms, attempts FROM outbox
		WHERE state = 'pending' AND next_attempt_ms <= ? AND claimed_until_ms <= ? ORDER BY next_attempt_ms, id LIMIT ?`, now, now, limit)
	if err != nil {
		return nil, err
	}
	var out []*usagev1.OutboxEntry
	for rows.Next() {
		e := &usagev1.OutboxEntry{Trigger: &usagev1.Trigger{}}
		var js string
		if err := rows.Scan(&e.Id, &e.IdempotencyToken, &js, &e.DateFiredUnixMs, &e.CurrentValue, &e.PeriodStartUnixMs, &e.Attempts); err != nil {
			rows.Close()
			return nil, err
		}
		if err := protojson.Unmarshal([]byte(js), e.Trigger); err != nil {
			rows.Close()
			return nil, fmt.Errorf("outbox %d: %w", e.Id, err)
		}
		out = append(out, e)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	for _, e := range out {
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET claimed_by = ?, claimed_until_ms = ? WHERE id = ?`, holder, now+lease, e.Id); err != nil {
			return nil, err
		}
	}
	return out, tx.Commit()
}

// CompleteOutbox records the outcome of a claimed entry.
func (s *Server) CompleteOutbox(ctx context.Context, req *usagev1.CompleteOutboxRequest) (*usagev1.CompleteOutboxResponse, error) {
	now := s.now().UnixMilli()
	tx, err := s.db.W.BeginTx(ctx, nil)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "complete: %v", err)
	}
	defer tx.Rollback()
	var state, holder string
	var attempts int
	err = tx.QueryRowContext(ctx, `SELECT state, attempts, claimed_by FROM outbox WHERE id = ?`, req.GetId()).Scan(&state, &attempts, &holder)
	if errors.Is(err, sql.ErrNoRows) {
		return &usagev1.CompleteOutboxResponse{}, nil
	}
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "complete: %v", err)
	}
	res := &usagev1.CompleteOutboxResponse{Found: true}
	switch {
	case state != "pending":
		res.Dead = state == "dead"
		return res, nil
	case req.GetDelivered():
		_, err = tx.ExecContext(ctx, `UPDATE outbox SET state = 'delivered', done_ms = ?, claimed_by = '', claimed_until_ms = 0, last_error = '' WHERE id = ?`, now, req.GetId())
	case holder != req.GetHolder():
		return res, nil // the lease moved to another holder: its outcome counts
	default:
		attempts++
		if attempts >= s.cfg.MaxAttempts {
			res.Dead = true
			_, err = tx.ExecContext(ctx, `UPDATE outbox SET state = 'dead', attempts = ?, done_ms = ?, claimed_by = '', claimed_until_ms = 0, last_error = ? WHERE id = ?`,
				attempts, now, req.GetError(), req.GetId())
		} else {
			res.NextAttemptUnixMs = now + s.cfg.Backoff(attempts).Milliseconds()
			_, err = tx.ExecContext(ctx, `UPDATE outbox SET attempts = ?, next_attempt_ms = ?, claimed_by = '', claimed_until_ms = 0, last_error = ? WHERE id = ?`,
				attempts, res.NextAttemptUnixMs, req.GetError(), req.GetId())
		}
	}
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "complete: %v", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, status.Errorf(codes.Unavailable, "complete: %v", err)
	}
	return res, nil
}

// OutboxStats counts outbox entries by state.
func (s *Server) OutboxStats(ctx context.Context, _ *usagev1.OutboxStatsRequest) (*usagev1.OutboxStatsResponse, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT state, COUNT(*) FROM outbox GROUP BY state`)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "outbox stats: %v", err)
	}
	defer rows.Close()
	out := &usagev1.OutboxStatsResponse{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, status.Errorf(codes.Unavailable, "outbox stats: %v", err)
		}
		switch st {
		case "pending":
			out.Pending = n
		case "delivered":
			out.Delivered = n
		case "dead":
			out.Dead = n
		}
	}
	return out, rows.Err()
}
