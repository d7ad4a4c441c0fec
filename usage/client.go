package usage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
)

// Errors of the Client.
var (
	// ErrNotFound: no such trigger in the account.
	ErrNotFound = errors.New("usage trigger not found")
	// ErrUnavailable: the usage plugin is not running or did not answer.
	ErrUnavailable = errors.New("usage plugin unavailable")
)

// InvalidError is a request the plugin refused; its message is for the user.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// Record is usage of one category over [Start, End).
type Record struct {
	Category  string
	Count     int64
	CountUnit string
	Usage     float64
	UsageUnit string
	Start     time.Time // zero: from the beginning
	End       time.Time // exclusive; zero: open
}

// RecordsQuery selects records. Granularity: "" (one record per category
// over [Start, End)), "daily", "monthly", "yearly", "alltime".
type RecordsQuery struct {
	AccountSid  string
	Category    string
	Granularity string
	Start, End  time.Time // zero: open
}

// Trigger is a usage trigger.
type Trigger struct {
	Sid            string
	AccountSid     string
	FriendlyName   string
	UsageCategory  string
	TriggerValue   string // absolute once stored
	TriggerBy      string
	Recurring      string
	CallbackURL    string
	CallbackMethod string
	Action         string // "", "suspend-account", "limit-admission"
	ActionResource string
	ActionLimit    int64
	CurrentValue   float64
	DateFired      time.Time // zero: never fired
	DateCreated    time.Time
	DateUpdated    time.Time
}

// TriggerUpdate changes the non-nil fields.
type TriggerUpdate struct {
	FriendlyName, CallbackURL, CallbackMethod *string
}

// TriggerFilter filters a listing.
type TriggerFilter struct {
	UsageCategory, Recurring, TriggerBy string
}

// Client reads usage records and manages triggers through the plugin.
type Client struct {
	backend Backend
	timeout time.Duration
}

// NewClient builds a client; timeout bounds each plugin call (0: 5s).
func NewClient(backend Backend, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Client{backend: backend, timeout: timeout}
}

func (c *Client) plugin(ctx context.Context) (usagev1.UsageClient, context.Context, context.CancelFunc, error) {
	cl, err := c.backend.Usage(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	return cl, ctx, cancel, nil
}

func mapErr(err error) error {
	switch status.Code(err) {
	case codes.NotFound:
		return ErrNotFound
	case codes.InvalidArgument, codes.AlreadyExists:
		return &InvalidError{Msg: status.Convert(err).Message()}
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func timeMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// Records returns usage records.
func (c *Client) Records(ctx context.Context, q RecordsQuery) ([]Record, error) {
	cl, ctx, cancel, err := c.plugin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	res, err := cl.Records(ctx, &usagev1.RecordsRequest{AccountSid: q.AccountSid, Category: q.Category, Granularity: q.Granularity, StartUnixMs: timeMS(q.Start), EndUnixMs: timeMS(q.End)})
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]Record, 0, len(res.GetRecords()))
	for _, r := range res.GetRecords() {
		rec := Record{Category: r.Category, Count: r.Count, CountUnit: r.CountUnit, Usage: r.Usage, UsageUnit: r.UsageUnit, Start: msTime(r.StartUnixMs), End: msTime(r.EndUnixMs)}
		if r.StartUnixMs == 0 && q.Granularity == "alltime" {
			rec.Start = time.UnixMilli(0).UTC()
		}
		out = append(out, rec)
	}
	return out, nil
}

func fromPB(t *usagev1.Trigger) Trigger {
	return Trigger{
		Sid: t.Sid, AccountSid: t.AccountSid, FriendlyName: t.FriendlyName, UsageCategory: t.UsageCategory,
		TriggerValue: t.TriggerValue, TriggerBy: t.TriggerBy, Recurring: t.Recurring,
		CallbackURL: t.CallbackUrl, CallbackMethod: t.CallbackMethod,
		Action: t.Action, ActionResource: t.ActionResource, ActionLimit: t.ActionLimit,
		CurrentValue: t.CurrentValue, DateFired: msTime(t.DateFiredUnixMs),
		DateCreated: msTime(t.DateCreatedUnixMs), DateUpdated: msTime(t.DateUpdatedUnixMs),
	}
}

// CreateTrigger stores a trigger; TriggerValue may be "+N".
func (c *Client) CreateTrigger(ctx context.Context, t Trigger) (Trigger, error) {
	cl, ctx, cancel, err := c.plugin(ctx)
	if err != nil {
		return Trigger{}, err
	}
	defer cancel()
	res, err := cl.CreateTrigger(ctx, &usagev1.CreateTriggerRequest{Trigger: &usagev1.Trigger{
		AccountSid: t.AccountSid, FriendlyName: t.FriendlyName, UsageCategory: t.UsageCategory, TriggerValue: t.TriggerValue,
		TriggerBy: t.TriggerBy, Recurring: t.Recurring, CallbackUrl: t.CallbackURL, CallbackMethod: t.CallbackMethod,
		Action: t.Action, ActionResource: t.ActionResource, ActionLimit: t.ActionLimit,
	}})
	if err != nil {
		return Trigger{}, mapErr(err)
	}
	return fromPB(res), nil
}

// ListTriggers lists an account's triggers, oldest first.
func (c *Client) ListTriggers(ctx context.Context, accountSid string, f TriggerFilter) ([]Trigger, error) {
	cl, ctx, cancel, err := c.plugin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	res, err := cl.ListTriggers(ctx, &usagev1.ListTriggersRequest{AccountSid: accountSid, UsageCategory: f.UsageCategory, Recurring: f.Recurring, TriggerBy: f.TriggerBy})
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]Trigger, 0, len(res.GetTriggers()))
	for _, t := range res.GetTriggers() {
		out = append(out, fromPB(t))
	}
	return out, nil
}

// Trigger fetches one trigger.
func (c *Client) Trigger(ctx context.Context, accountSid, sid string) (Trigger, error) {
	cl, ctx, cancel, err := c.plugin(ctx)
	if err != nil {
		return Trigger{}, err
	}
	defer cancel()
	res, err := cl.FetchTrigger(ctx, &usagev1.FetchTriggerRequest{AccountSid: accountSid, Sid: sid})
	if err != nil {
		return Trigger{}, mapErr(err)
	}
	return fromPB(res), nil
}

// UpdateTrigger changes a trigger's name or callback.
func (c *Client) UpdateTrigger(ctx context.Context, accountSid, sid string, u TriggerUpdate) (Trigger, error) {
	cl, ctx, cancel, err := c.plugin(ctx)
	if err != nil {
		return Trigger{}, err
	}
	defer cancel()
	res, err := cl.UpdateTrigger(ctx, &usagev1.UpdateTriggerRequest{AccountSid: accountSid, Sid: sid, FriendlyName: u.FriendlyName, CallbackUrl: u.CallbackURL, CallbackMethod: u.CallbackMethod})
	if err != nil {
		return Trigger{}, mapErr(err)
	}
	return fromPB(res), nil
}

// DeleteTrigger deletes a trigger (ErrNotFound when there is none).
func (c *Client) DeleteTrigger(ctx context.Context, accountSid, sid string) error {
	cl, ctx, cancel, err := c.plugin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	res, err := cl.DeleteTrigger(ctx, &usagev1.DeleteTriggerRequest{AccountSid: accountSid, Sid: sid})
	if err != nil {
		return mapErr(err)
	}
	if !res.GetFound() {
		return ErrNotFound
	}
	return nil
}
