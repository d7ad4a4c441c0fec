package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleyhq/parley/internal/webhook"
	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
)

// Accounts gives the deliverer the key that signs an account's callbacks.
// *store.Store satisfies it through a small adapter in the composition root.
type Accounts interface {
	AuthToken(ctx context.Context, accountSid string) (string, error)
}

// Actions carries out a trigger's action beyond the callback. Both methods
// must be idempotent: an outbox entry is retried until it is acknowledged.
type Actions interface {
	SuspendAccount(ctx context.Context, accountSid string) error
	LimitAdmission(ctx context.Context, accountSid, resource string, limit int64) error
}

// DelivererOptions are the deliverer's collaborators.
type DelivererOptions struct {
	Accounts   Accounts // required when triggers have callback URLs
	Actions    Actions  // nil: triggers with an action fail (and retry) until set
	Webhook    *webhook.Client
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// APIPrefix is the REST prefix used in UsageRecordUri ("/2010-04-01").
	APIPrefix string
}

// Deliverer performs fired triggers: it claims due entries from the
// plugin's outbox, runs the action and sends the signed callback, and
// reports each outcome (the plugin schedules retries with back-off). The
// outbox, the attempts and the schedule live in the plugin's database, so a
// restarted host (or plugin) carries on where it stopped; the idempotency
// token is fixed per firing, so receivers can drop repeats.
type Deliverer struct {
	backend Backend
	cfg     Config
	opts    DelivererOptions
	log     *slog.Logger
	holder  string

	delivered, failed atomic.Int64
	pending, dead     atomic.Int64 // outbox entries, refreshed every statsEvery

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewDeliverer builds a deliverer; call Start, and Close at shutdown.
func NewDeliverer(backend Backend, cfg Config, opts DelivererOptions) (*Deliverer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Webhook == nil {
		opts.Webhook = &webhook.Client{Timeout: cfg.CallbackTimeout, UserAgent: "Parley-Usage-Trigger/1.0"}
	}
	if opts.APIPrefix == "" {
		opts.APIPrefix = "/2010-04-01"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	holder := cfg.Holder
	if holder == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "parley"
		}
		holder = h
	}
	d := &Deliverer{backend: backend, cfg: cfg, opts: opts, log: log.With("component", "usage-deliverer"), holder: holder}
	if opts.Registerer != nil {
		for name, v := range map[string]*atomic.Int64{"delivered": &d.delivered, "failed": &d.failed} {
			c := prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: "parley", Subsystem: "usage", Name: "trigger_callbacks_" + name + "_total",
				Help: "Usage-trigger deliveries (callback and action) " + name + "; failures are retried with back-off.",
			}, func() float64 { return float64(v.Load()) })
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("usage metrics: %w", err)
			}
		}
		for name, v := range map[string]*atomic.Int64{"pending": &d.pending, "dead": &d.dead} {
			g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: "parley", Subsystem: "usage", Name: "outbox_" + name,
				Help: "Fired usage triggers in the plugin's outbox that are " + name + " (dead: retries exhausted).",
			}, func() float64 { return float64(v.Load()) })
			if err := opts.Registerer.Register(g); err != nil {
				return nil, fmt.Errorf("usage metrics: %w", err)
			}
		}
	}
	return d, nil
}

// Start runs the delivery loop until Close.
func (d *Deliverer) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.run(ctx)
	}()
}

// Close stops the loop and waits for deliveries in flight. Unfinished
// entries stay in the outbox and are claimed again after their lease.
func (d *Deliverer) Close() {
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
}

// Counts returns deliveries that succeeded and attempts that failed.
func (d *Deliverer) Counts() (delivered, failed int64) { return d.delivered.Load(), d.failed.Load() }

const statsEvery = 10 * time.Second

func (d *Deliverer) run(ctx context.Context) {
	sem := make(chan struct{}, d.cfg.Workers)
	var statsAt time.Time
	for ctx.Err() == nil {
		cl, err := d.backend.Usage(ctx)
		if err != nil {
			sleep(ctx, d.cfg.RetryInterval)
			continue
		}
		if time.Since(statsAt) >= statsEvery {
			statsAt = time.Now()
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if st, err := cl.OutboxStats(sctx, &usagev1.OutboxStatsRequest{}); err == nil {
				d.pending.Store(st.GetPending())
				d.dead.Store(st.GetDead())
			}
			cancel()
		}
		free := d.cfg.Workers - len(sem)
		if free == 0 {
			sleep(ctx, 10*time.Millisecond)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, d.cfg.ClaimWait+2*time.Second)
		res, err := cl.ClaimOutbox(cctx, &usagev1.ClaimOutboxRequest{
			Holder: d.holder, Max: int32(free), LeaseMs: d.cfg.Lease.Milliseconds(), WaitMs: d.cfg.ClaimWait.Milliseconds(),
		})
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("claim usage outbox", "err", err)
				sleep(ctx, d.cfg.RetryInterval)
			}
			continue
		}
		for _, e := range res.GetEntries() {
			sem <- struct{}{}
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				defer func() { <-sem }()
				d.handle(ctx, cl, e)
			}()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (d *Deliverer) handle(ctx context.Context, cl usagev1.UsageClient, e *usagev1.OutboxEntry) {
	err := d.deliver(ctx, e)
	if ctx.Err() != nil {
		return // shutting down: the lease runs out and the entry is claimed again
	}
	req := &usagev1.CompleteOutboxRequest{Id: e.GetId(), Holder: d.holder, Delivered: err == nil}
	if err != nil {
		d.failed.Add(1)
		req.Error = err.Error()
	} else {
		d.delivered.Add(1)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	res, cerr := cl.CompleteOutbox(cctx, req)
	switch {
	case cerr != nil:
		d.log.Warn("report usage callback outcome", "trigger", e.GetTrigger().GetSid(), "err", cerr)
	case err != nil && res.GetDead():
		d.log.Error("usage trigger callback abandoned after the last attempt", "trigger", e.GetTrigger().GetSid(), "token", e.GetIdempotencyToken(), "err", err)
	case err != nil:
		d.log.Warn("usage trigger callback failed; will retry", "trigger", e.GetTrigger().GetSid(), "attempt", e.GetAttempts()+1,
			"next", time.UnixMilli(res.GetNextAttemptUnixMs()).UTC(), "err", err)
	}
}

// CallbackParams are the form parameters of a trigger callback.
func CallbackParams(e *usagev1.OutboxEntry, apiPrefix string) url.Values {
	t := e.GetTrigger()
	fired := time.UnixMilli(e.GetDateFiredUnixMs()).UTC()
	v := url.Values{}
	v.Set("AccountSid", t.GetAccountSid())
	v.Set("UsageTriggerSid", t.GetSid())
	v.Set("DateFired", fired.Format(time.RFC1123Z))
	v.Set("Recurring", t.GetRecurring())
	v.Set("UsageCategory", t.GetUsageCategory())
	v.Set("TriggerBy", t.GetTriggerBy())
	v.Set("TriggerValue", t.GetTriggerValue())
	v.Set("CurrentValue", strconv.FormatFloat(e.GetCurrentValue(), 'f', -1, 64))
	v.Set("UsageRecordUri", UsageRecordURI(apiPrefix, t, e.GetPeriodStartUnixMs(), fired))
	v.Set("IdempotencyToken", e.GetIdempotencyToken())
	return v
}

// UsageRecordURI is the Records resource covering a trigger's period.
func UsageRecordURI(apiPrefix string, t *usagev1.Trigger, periodStartMS int64, now time.Time) string {
	base := apiPrefix + "/Accounts/" + t.GetAccountSid() + "/Usage/Records"
	q := url.Values{}
	q.Set("Category", t.GetUsageCategory())
	period, err := usagev1.PeriodOf(t.GetRecurring())
	if err == nil && period != usagev1.PeriodAll {
		start := time.UnixMilli(periodStartMS).UTC()
		end := usagev1.PeriodEnd(period, start).AddDate(0, 0, -1)
		q.Set("StartDate", start.Format(time.DateOnly))
		q.Set("EndDate", end.Format(time.DateOnly))
		return base + ".json?" + q.Encode()
	}
	return base + "/AllTime.json?" + q.Encode()
}

func (d *Deliverer) deliver(ctx context.Context, e *usagev1.OutboxEntry) error {
	t := e.GetTrigger()
	switch t.GetAction() {
	case usagev1.ActionNone:
	case usagev1.ActionSuspendAccount, usagev1.ActionLimitAdmission:
		if d.opts.Actions == nil {
			return errors.New("trigger action configured but no action handler is wired")
		}
		var err error
		if t.GetAction() == usagev1.ActionSuspendAccount {
			err = d.opts.Actions.SuspendAccount(ctx, t.GetAccountSid())
		} else {
			err = d.opts.Actions.LimitAdmission(ctx, t.GetAccountSid(), t.GetActionResource(), t.GetActionLimit())
		}
		if err != nil {
			return fmt.Errorf("trigger action %s: %w", t.GetAction(), err)
		}
		d.log.Info("usage trigger action done", "trigger", t.GetSid(), "account", t.GetAccountSid(), "action", t.GetAction())
	default:
		return fmt.Errorf("unknown trigger action %q", t.GetAction())
	}
	if t.GetCallbackUrl() == "" {
		return nil
	}
	if d.opts.Accounts == nil {
		return errors.New("no account store wired to sign callbacks")
	}
	token, err := d.opts.Accounts.AuthToken(ctx, t.GetAccountSid())
	if err != nil {
		return fmt.Errorf("auth token of %s: %w", t.GetAccountSid(), err)
	}
	_, err = d.opts.Webhook.Do(ctx, webhook.Request{URL: normalizeURL(t.GetCallbackUrl()), Method: t.GetCallbackMethod(), Params: CallbackParams(e, d.opts.APIPrefix), AuthToken: token})
	return err
}

// normalizeURL gives a URL without a path the "/" that its request line
// will carry, so that the signed URL is the one the receiver reconstructs.
func normalizeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Path != "" || u.Opaque != "" {
		return raw
	}
	u.Path = "/"
	return u.String()
}
