package admission

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	admissionv1 "github.com/parleyhq/parley/plugins/proto/admission/v1"
	"github.com/parleyhq/parley/plugins/sdk"
)

// Backend gives the client the admission plugin currently running and the
// on_failure setting. *plugins.Supervisor implements it.
type Backend interface {
	Admission(ctx context.Context) (admissionv1.AdmissionClient, error)
	FailOpen(kind sdk.Kind) bool
}

// key names one pool: an account's capacity of one resource.
type key struct {
	account  string
	resource Resource
}

// Limit is one resource's limit and usage for an account.
type Limit struct {
	Resource Resource `json:"resource"`
	Limit    int64    `json:"limit"`   // -1: unlimited
	Current  int64    `json:"current"` // slots in use (calls-cps: setups this second)
	Default  bool     `json:"default"` // no account-specific value stored
}

// ClientOptions are the client's collaborators.
type ClientOptions struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: no metrics exported
}

// Client is the host side of admission: REST middleware and call setup call
// Acquire. See the package documentation for the leased-block fast path.
type Client struct {
	backend Backend
	cfg     Config
	holder  string
	log     *slog.Logger

	decisions *prometheus.CounterVec
	counters  map[Resource]map[string]prometheus.Counter // pre-resolved decisions

	mu    sync.Mutex
	pools map[key]*pool

	cancel context.CancelFunc
	done   chan struct{}
}

// pool is the capacity this host leases from the plugin for one account and
// resource, and the part of it in use.
type pool struct {
	mu      sync.Mutex
	leaseID string
	held    int64 // slots leased from the plugin
	inUse   int64 // slots admitted and not yet released
	slots   map[uint64]int64
	next    uint64
	idle    int  // consecutive maintenance ticks with nothing in use
	dead    bool // dropped from Client.pools; look it up again
	// uncertain: an Acquire on the lease failed in transit (the plugin died
	// or the connection broke), so the plugin may have granted slots we never
	// heard of. The lease is dropped and what is in use re-leased before the
	// pool asks for more (see resync).
	uncertain bool
}

// NewClient builds the client; call Start before use and Close at shutdown.
func NewClient(backend Backend, cfg Config, opts ClientOptions) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Holder == "" {
		cfg.Holder = defaultHolder()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		backend: backend, cfg: cfg, holder: cfg.Holder, log: log.With("component", "admission"), pools: map[key]*pool{},
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "parley", Subsystem: "admission", Name: "decisions_total",
			Help: "Admission decisions by resource and outcome (local: from leased capacity; plugin: after a plugin call; denied; fail_open; fail_closed).",
		}, []string{"resource", "outcome"}),
	}
	c.counters = map[Resource]map[string]prometheus.Counter{}
	for _, r := range Resources() {
		c.counters[r] = map[string]prometheus.Counter{}
		for _, o := range []string{"local", "plugin", "denied", "fail_open", "fail_closed"} {
			c.counters[r][o] = c.decisions.WithLabelValues(string(r), o)
		}
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(c.decisions); err != nil {
			return nil, fmt.Errorf("admission metrics: %w", err)
		}
	}
	return c, nil
}

// Start drops the leases this holder kept from a previous life (best
// effort: the plugin may still be starting; they expire anyway) and starts
// the maintenance loop (renewals, idle trimming, leaked-slot reclaim).
func (c *Client) Start(ctx context.Context) {
	if cl, err := c.backend.Admission(ctx); err == nil {
		if _, err := cl.Release(ctx, &admissionv1.ReleaseRequest{Holder: c.holder}); err != nil {
			c.log.Warn("could not drop leases of a previous run", "holder", c.holder, "err", err)
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.done = make(chan struct{})
	go c.run(runCtx)
}

// Close stops maintenance and gives all leased capacity back.
func (c *Client) Close(ctx context.Context) error {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
	cl, err := c.backend.Admission(ctx)
	if err != nil {
		return nil // the leases expire on their own
	}
	if _, err := cl.Release(ctx, &admissionv1.ReleaseRequest{Holder: c.holder}); err != nil {
		return fmt.Errorf("admission: release leases: %w", err)
	}
	return nil
}

func noop() {}

// Acquire admits one request of resource r for the account. On success the
// caller must call release when the work ends (calling it more than once is
// harmless; for calls-cps it does nothing). Over the limit it returns a
// *Denial; if the plugin is unavailable it follows on_failure: open admits
// (untracked), closed returns a *Denial with Unavailable set.
func (c *Client) Acquire(ctx context.Context, accountSid string, r Resource) (release func(), err error) {
	if accountSid == "" {
		return nil, errors.New("admission: account sid is required")
	}
	if !r.Valid() {
		return nil, fmt.Errorf("admission: unknown resource %q", r)
	}
	if r.IsRate() {
		return c.acquireRate(ctx, accountSid, r)
	}
	k := key{accountSid, r}
	for {
		p := c.pool(k)
		p.mu.Lock()
		if p.dead {
			p.mu.Unlock()
			continue
		}
		if p.inUse < p.held {
			id := p.take(c.slotTTL(r))
			p.mu.Unlock()
			c.counters[r]["local"].Inc()
			return (&slot{p: p, id: id}).release, nil
		}
		err := c.grow(ctx, k, p, 1)
		if err == nil {
			id := p.take(c.slotTTL(r))
			p.mu.Unlock()
			c.counters[r]["plugin"].Inc()
			return (&slot{p: p, id: id}).release, nil
		}
		p.mu.Unlock()
		return c.failure(r, err)
	}
}

func (c *Client) slotTTL(r Resource) time.Duration { return c.cfg.SlotTTL[r] }

// failure turns a grow/rate error into the caller's answer.
func (c *Client) failure(r Resource, err error) (func(), error) {
	var d *Denial
	if errors.As(err, &d) {
		c.counters[r]["denied"].Inc()
		return nil, d
	}
	var bad *badRequest
	if errors.As(err, &bad) {
		return nil, bad.err
	}
	if c.backend.FailOpen(sdk.KindAdmission) {
		c.counters[r]["fail_open"].Inc()
		c.log.Debug("admission plugin unavailable; failing open", "resource", r, "err", err)
		return noop, nil
	}
	c.counters[r]["fail_closed"].Inc()
	c.log.Debug("admission plugin unavailable; failing closed", "resource", r, "err", err)
	return nil, &Denial{Resource: r, Wait: c.cfg.RetryAfter, Unavailable: true}
}

type badRequest struct{ err error }

func (b *badRequest) Error() string { return b.err.Error() }

func classify(err error) error {
	if status.Code(err) == codes.InvalidArgument {
		return &badRequest{fmt.Errorf("admission: %w", err)}
	}
	return err
}

func (c *Client) pool(k key) *pool {
	c.mu.Lock()
	p := c.pools[k]
	if p == nil {
		p = &pool{slots: map[uint64]int64{}}
		c.pools[k] = p
	}
	c.mu.Unlock()
	return p
}

// take records one admitted request (caller holds p.mu).
func (p *pool) take(ttl time.Duration) uint64 {
	p.next++
	exp := int64(0)
	if ttl > 0 {
		exp = time.Now().Add(ttl).UnixNano()
	}
	p.slots[p.next] = exp
	p.inUse++
	p.idle = 0
	return p.next
}

type slot struct {
	p    *pool
	id   uint64
	done atomic.Bool
}

func (s *slot) release() {
	if s.done.Swap(true) {
		return
	}
	s.p.mu.Lock()
	if _, ok := s.p.slots[s.id]; ok { // absent when reclaimed after its SlotTTL
		delete(s.p.slots, s.id)
		s.p.inUse--
	}
	s.p.mu.Unlock()
}

// grow leases more capacity so that held >= inUse + extra (caller holds
// p.mu): extra is 1 to admit one more request, 0 to re-lease what is in use
// after a lost lease. It returns a *Denial when the plugin refuses, a *badRequest for invalid
// input, or another error when the plugin cannot be reached.
func (c *Client) grow(ctx context.Context, k key, p *pool, extra int64) error {
	cl, err := c.backend.Admission(ctx)
	if err != nil {
		return err
	}
	if p.uncertain {
		if err := c.resync(ctx, cl, p); err != nil {
			return err
		}
	}
	for range 3 {
		need := max(p.inUse-p.held+extra, 1) // more than 1 only after a lost lease
		resp, err := cl.Acquire(ctx, &admissionv1.AcquireRequest{
			AccountSid: k.account, Resource: string(k.resource), Holder: c.holder,
			LeaseId: p.leaseID, MinCount: need, MaxCount: need + c.cfg.Block - 1,
			TtlMs: c.cfg.LeaseTTL.Milliseconds(),
		})
		if err != nil {
			err = classify(err)
			var bad *badRequest
			if !errors.As(err, &bad) && p.leaseID != "" {
				p.uncertain = true
			}
			return err
		}
		if !resp.GetGranted() {
			return &Denial{
				Resource: k.resource,
				Current:  max(resp.GetCurrent()-p.held+p.inUse, p.inUse),
				Limit:    resp.GetLimit(),
				Wait:     time.Duration(resp.GetRetryAfterMs()) * time.Millisecond,
			}
		}
		if resp.GetLeaseId() != p.leaseID && p.leaseID != "" {
			// Our lease was gone (expired while we could not renew it): the
			// plugin only counts the new one.
			c.log.Warn("admission lease was lost; re-leased", "account", k.account, "resource", k.resource)
			p.held = resp.GetLeaseCount()
		} else {
			p.held += resp.GetCount()
		}
		p.leaseID = resp.GetLeaseId()
		if p.inUse+extra <= p.held {
			return nil
		}
	}
	return fmt.Errorf("admission: could not re-lease lost capacity")
}

func (c *Client) acquireRate(ctx context.Context, account string, r Resource) (func(), error) {
	cl, err := c.backend.Admission(ctx)
	if err != nil {
		return c.failure(r, err)
	}
	resp, err := cl.Acquire(ctx, &admissionv1.AcquireRequest{AccountSid: account, Resource: string(r), Holder: c.holder, MinCount: 1, MaxCount: 1})
	if err != nil {
		return c.failure(r, classify(err))
	}
	if !resp.GetGranted() {
		return c.failure(r, &Denial{Resource: r, Current: resp.GetCurrent(), Limit: resp.GetLimit(),
			Wait: time.Duration(resp.GetRetryAfterMs()) * time.Millisecond})
	}
	c.counters[r]["plugin"].Inc()
	return noop, nil
}

// run renews leases, trims idle capacity and reclaims leaked slots every
// LeaseTTL/3 until ctx ends.
func (c *Client) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.maintain(ctx)
		}
	}
}

func (c *Client) maintain(ctx context.Context) {
	c.mu.Lock()
	keys := make([]key, 0, len(c.pools))
	pools := make([]*pool, 0, len(c.pools))
	for k, p := range c.pools {
		keys = append(keys, k)
		pools = append(pools, p)
	}
	c.mu.Unlock()
	cl, err := c.backend.Admission(ctx)
	if err != nil {
		c.log.Debug("admission maintenance skipped: plugin unavailable", "err", err)
		cl = nil
	}
	now := time.Now().UnixNano()
	var renew []string
	for i, p := range pools {
		k := keys[i]
		p.mu.Lock()
		for id, exp := range p.slots {
			if exp != 0 && exp <= now {
				delete(p.slots, id)
				p.inUse--
				c.log.Warn("admission slot was never released; reclaimed after its TTL", "account", k.account, "resource", k.resource)
			}
		}
		if p.inUse == 0 {
			p.idle++
		}
		if cl != nil && p.uncertain {
			if err := c.resync(ctx, cl, p); err != nil {
				c.log.Warn("admission could not drop an uncertain lease", "err", err)
			} else if p.inUse > 0 {
				if err := c.grow(ctx, k, p, 0); err != nil {
					c.log.Warn("admission could not re-lease capacity in use", "err", err)
				}
			}
		}
		if cl != nil && p.leaseID != "" {
			spare := p.held - p.inUse
			switch {
			case p.inUse == 0 && p.idle >= 2:
				c.giveBack(ctx, cl, p, spare) // drops the lease
			case spare > c.cfg.Block:
				c.giveBack(ctx, cl, p, spare-c.cfg.Block)
			}
		}
		if p.leaseID != "" {
			renew = append(renew, p.leaseID)
		}
		p.mu.Unlock()
	}
	c.collect()
	if cl == nil || len(renew) == 0 {
		return
	}
	resp, err := cl.Renew(ctx, &admissionv1.RenewRequest{LeaseIds: renew, TtlMs: c.cfg.LeaseTTL.Milliseconds(), Holder: c.holder})
	if err != nil {
		c.log.Warn("admission lease renewal failed", "err", err)
		return
	}
	if len(resp.GetMissing()) == 0 {
		return
	}
	missing := map[string]bool{}
	for _, id := range resp.GetMissing() {
		missing[id] = true
	}
	for i, p := range pools {
		p.mu.Lock()
		if missing[p.leaseID] {
			c.log.Warn("admission lease expired in the plugin; re-leasing what is in use", "account", keys[i].account, "resource", keys[i].resource, "in_use", p.inUse)
			p.leaseID, p.held = "", 0
			if p.inUse > 0 {
				if err := c.grow(ctx, keys[i], p, 0); err != nil {
					c.log.Warn("admission could not re-lease capacity in use", "err", err)
				}
			}
		}
		p.mu.Unlock()
	}
}

// resync drops a lease whose size is uncertain (caller holds p.mu): the
// plugin forgets it, and grow leases what is in use again, so that the
// plugin counts exactly this host's requests once more.
func (c *Client) resync(ctx context.Context, cl admissionv1.AdmissionClient, p *pool) error {
	if p.leaseID != "" {
		if _, err := cl.Release(ctx, &admissionv1.ReleaseRequest{LeaseId: p.leaseID, Holder: c.holder}); err != nil {
			return classify(err)
		}
	}
	p.leaseID, p.held, p.uncertain = "", 0, false
	return nil
}

// giveBack returns n spare slots of p's lease (caller holds p.mu).
func (c *Client) giveBack(ctx context.Context, cl admissionv1.AdmissionClient, p *pool, n int64) {
	if n <= 0 {
		return
	}
	resp, err := cl.Release(ctx, &admissionv1.ReleaseRequest{LeaseId: p.leaseID, Count: n, Holder: c.holder})
	if err != nil {
		c.log.Warn("admission could not return spare capacity", "err", err)
		return
	}
	p.held -= n
	if !resp.GetFound() || resp.GetLeaseCount() == 0 {
		p.leaseID, p.held = "", 0
	}
}

// collect drops pools with nothing leased and nothing in use.
func (c *Client) collect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, p := range c.pools {
		p.mu.Lock()
		if p.inUse == 0 && p.held == 0 && p.leaseID == "" {
			p.dead = true
			delete(c.pools, k)
		}
		p.mu.Unlock()
	}
}

// Limits returns the account's limit and current usage per resource.
func (c *Client) Limits(ctx context.Context, accountSid string) ([]Limit, error) {
	cl, err := c.backend.Admission(ctx)
	if err != nil {
		return nil, fmt.Errorf("admission limits: %w", err)
	}
	// Counts are only right once uncertain leases of the account are settled.
	c.mu.Lock()
	var mine []key
	for k, p := range c.pools {
		if k.account == accountSid && p != nil {
			mine = append(mine, k)
		}
	}
	c.mu.Unlock()
	for _, k := range mine {
		p := c.pool(k)
		p.mu.Lock()
		if p.uncertain && !p.dead {
			if err := c.resync(ctx, cl, p); err == nil && p.inUse > 0 {
				if err := c.grow(ctx, k, p, 0); err != nil {
					c.log.Warn("admission could not re-lease capacity in use", "err", err)
				}
			}
		}
		p.mu.Unlock()
	}
	resp, err := cl.GetLimits(ctx, &admissionv1.GetLimitsRequest{AccountSid: accountSid})
	if err != nil {
		return nil, fmt.Errorf("admission limits: %w", err)
	}
	out := make([]Limit, 0, len(resp.GetLimits()))
	for _, l := range resp.GetLimits() {
		out = append(out, c.overlay(accountSid, l))
	}
	return out, nil
}

// overlay replaces the plugin's count of this host's leased capacity with
// what is actually in use here.
func (c *Client) overlay(account string, l *admissionv1.Limit) Limit {
	out := Limit{Resource: Resource(l.GetResource()), Limit: l.GetLimit(), Current: l.GetCurrent(), Default: l.GetIsDefault()}
	if out.Resource.IsRate() {
		return out
	}
	c.mu.Lock()
	p := c.pools[key{account, out.Resource}]
	c.mu.Unlock()
	if p != nil {
		p.mu.Lock()
		out.Current = max(out.Current-p.held, 0) + p.inUse
		p.mu.Unlock()
	}
	return out
}

// SetLimit stores an account's limit for r (-1: unlimited) and returns the
// spare capacity this host holds for it, so a lowered limit applies at once.
func (c *Client) SetLimit(ctx context.Context, accountSid string, r Resource, limit int64) (Limit, error) {
	return c.setLimit(ctx, &admissionv1.SetLimitRequest{AccountSid: accountSid, Resource: string(r), Limit: limit})
}

// ClearLimit removes the account's own limit for r; the default applies.
func (c *Client) ClearLimit(ctx context.Context, accountSid string, r Resource) (Limit, error) {
	return c.setLimit(ctx, &admissionv1.SetLimitRequest{AccountSid: accountSid, Resource: string(r), Clear: true})
}

func (c *Client) setLimit(ctx context.Context, req *admissionv1.SetLimitRequest) (Limit, error) {
	if req.AccountSid == "" || !Resource(req.Resource).Valid() {
		return Limit{}, fmt.Errorf("admission: invalid account %q or resource %q", req.AccountSid, req.Resource)
	}
	cl, err := c.backend.Admission(ctx)
	if err != nil {
		return Limit{}, fmt.Errorf("admission set limit: %w", err)
	}
	c.mu.Lock()
	p := c.pools[key{req.AccountSid, Resource(req.Resource)}]
	c.mu.Unlock()
	if p != nil {
		p.mu.Lock()
		if p.leaseID != "" {
			c.giveBack(ctx, cl, p, p.held-p.inUse)
		}
		p.mu.Unlock()
	}
	resp, err := cl.SetLimit(ctx, req)
	if err != nil {
		return Limit{}, fmt.Errorf("admission set limit: %w", err)
	}
	return c.overlay(req.AccountSid, resp.GetLimit()), nil
}
