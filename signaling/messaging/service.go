package messaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/internal/webhook"
	"github.com/parleyhq/parley/presence"
)

// Config configures messaging (YAML key "messaging").
type Config struct {
	// MaxBodyBytes bounds a message body (default 32768: a MESSAGE with its
	// headers still fits one UDP datagram). Larger: SIP 413, REST 400.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// StoreFor is how long a message to an offline client is kept for
	// delivery when it registers again (default 24h); then it becomes
	// undelivered. Negative disables store-and-forward: SIP answers 480 and
	// REST messages become undelivered at once.
	StoreFor time.Duration `yaml:"store_for"`
	// DeliveryTimeout bounds one delivery attempt to one binding (default 10s).
	DeliveryTimeout time.Duration `yaml:"delivery_timeout"`
	// SweepInterval is how often expired messages are marked undelivered and
	// queued messages are retried for recipients that have bindings (default 10s).
	SweepInterval time.Duration `yaml:"sweep_interval"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 32 << 10, StoreFor: 24 * time.Hour, DeliveryTimeout: 10 * time.Second, SweepInterval: 10 * time.Second}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.StoreFor == 0 {
		c.StoreFor = d.StoreFor
	}
	if c.DeliveryTimeout <= 0 {
		c.DeliveryTimeout = d.DeliveryTimeout
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = d.SweepInterval
	}
	return c
}

// Deps are the service's collaborators.
type Deps struct {
	Store    Store
	Registry presence.Registry
	Resolver Resolver
	Webhooks *webhook.Client // default: a client with its defaults
	// Admit, when set, takes the account's "messages" admission slot for
	// each message while it is being accepted and first delivered; an
	// error (an *admission.Denial) refuses the message.
	Admit func(ctx context.Context, accountSid string) (release func(), err error)
	// Created, when set, is told of every message accepted (usage events);
	// it must not block.
	Created func(m Message)
	Log     *slog.Logger
	Now     func() time.Time
}

// Errors of Submit and Send.
var (
	ErrTooLarge = errors.New("messaging: message body too large")
	ErrEmpty    = errors.New("messaging: message body is empty")
	ErrFrom     = errors.New("messaging: From must be 1 to 256 characters without control characters")
)

// Service routes, delivers, stores and forwards messages. Run drives
// store-and-forward; Submit and Send may be called before Run (deliveries
// then start in the background).
type Service struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	now  func() time.Time
	cbs  *callbacks

	mu       sync.Mutex
	sinks    map[string]Sink
	flushing map[Recipient]*flushState
	ctx      context.Context // background work; cancelled when Run ends
	cancel   context.CancelFunc
	closed   bool // Run ended: no new background work
	wg       sync.WaitGroup
}

type flushState struct{ again bool }

// New creates a service.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Store == nil || deps.Registry == nil || deps.Resolver == nil {
		return nil, errors.New("messaging: Store, Registry and Resolver are required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Webhooks == nil {
		deps.Webhooks = &webhook.Client{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg.withDefaults(), deps: deps, log: deps.Log.With("component", "messaging"), now: deps.Now,
		sinks: map[string]Sink{}, flushing: map[Recipient]*flushState{}, ctx: ctx, cancel: cancel}
	s.cbs = newCallbacks(deps.Webhooks, deps.Resolver, s.log)
	return s, nil
}

// Config returns the configuration in force (defaults filled in).
func (s *Service) Config() Config { return s.cfg }

// SetSink makes sink deliver to bindings whose Transport is transport
// ("udp", "tcp", "tls", "ws", "wss" for SIP; TransportWebRTC for browser
// sessions). A binding with no sink for its transport is skipped.
func (s *Service) SetSink(transport string, sink Sink) {
	s.mu.Lock()
	s.sinks[strings.ToLower(transport)] = sink
	s.mu.Unlock()
}

func (s *Service) sink(transport string) Sink {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sinks[strings.ToLower(transport)]
}

// Outcome is what became of a message a client submitted.
type Outcome int

// Outcomes of Submit.
const (
	Delivered Outcome = iota // at least one binding took it (SIP 200)
	Queued                   // the recipient is offline: stored for later (SIP 202)
	Offline                  // offline and store-and-forward is off (SIP 480)
	Accepted                 // handed to an application (SIP 202)
)

// Inbound is a message a client sent (a SIP MESSAGE, a browser message).
type Inbound struct {
	AccountSid  string
	From        string // the sender's identity: client:alice, sip:alice@domain
	User, Host  string // the Request-URI's user and host
	ContentType string
	Body        []byte
}

func (s *Service) checkBody(body []byte) error {
	if len(body) > s.cfg.MaxBodyBytes {
		return fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLarge, len(body), s.cfg.MaxBodyBytes)
	}
	if len(body) == 0 {
		return ErrEmpty
	}
	return nil
}

// admit takes a "messages" slot; the release must be called.
func (s *Service) admit(ctx context.Context, accountSid string) (func(), error) {
	if s.deps.Admit == nil {
		return func() {}, nil
	}
	return s.deps.Admit(ctx, accountSid)
}

// Submit routes a message from a client and, for a client recipient, tries
// to deliver it before returning. Errors: ErrTooLarge, ErrEmpty, ErrNoRoute,
// *admission.Denial, or a storage failure.
func (s *Service) Submit(ctx context.Context, in Inbound) (Outcome, Message, error) {
	if err := s.checkBody(in.Body); err != nil {
		return 0, Message{}, err
	}
	route, err := s.deps.Resolver.Route(ctx, in.AccountSid, in.User, in.Host)
	if err != nil {
		return 0, Message{}, err
	}
	release, err := s.admit(ctx, in.AccountSid)
	if err != nil {
		return 0, Message{}, err
	}
	defer release()
	now := s.now().UTC().Truncate(time.Millisecond)
	m := Message{Sid: sid.New(sid.Message), AccountSid: in.AccountSid, From: in.From, To: route.To, Target: route.Identity,
		Body: in.Body, ContentType: contentType(in.ContentType), Direction: DirectionInbound, Status: StatusSending,
		DateCreated: now, DateUpdated: now}
	if route.App != nil {
		m.ApplicationSid, m.Status = route.App.Sid, StatusReceived
		if err := s.create(ctx, m); err != nil {
			return 0, Message{}, err
		}
		if !s.background(func(ctx context.Context) { s.toApplication(ctx, m, *route.App) }) {
			return 0, Message{}, errors.New("messaging: stopped")
		}
		return Accepted, m, nil
	}
	if err := s.create(ctx, m); err != nil {
		return 0, Message{}, err
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.DeliveryTimeout)
	err = s.deliver(dctx, m)
	cancel()
	if err == nil {
		s.setStatus(m, StatusDelivered, 0, "")
		return Delivered, m, nil
	}
	if s.cfg.StoreFor < 0 {
		s.setStatus(m, StatusUndelivered, ErrorUnreachable, err.Error())
		return Offline, m, nil
	}
	s.enqueue(&m)
	return Queued, m, nil
}

// SendRequest is a message the platform sends to a client: by REST or as a
// <Message> reply.
type SendRequest struct {
	AccountSid           string
	From, To             string
	Body                 string
	Direction            string // DirectionOutboundAPI (default) or DirectionOutboundReply
	StatusCallback       string
	StatusCallbackMethod string
}

// Send accepts a message to a client and returns it queued; delivery
// continues in the background (sending → delivered, or queued until the
// client registers, then undelivered when it expires). Errors: ErrTooLarge,
// ErrEmpty, ErrNoRoute, *admission.Denial, or a storage failure.
func (s *Service) Send(ctx context.Context, req SendRequest) (Message, error) {
	if err := s.checkBody([]byte(req.Body)); err != nil {
		return Message{}, err
	}
	if req.From == "" || len(req.From) > 256 || strings.ContainsFunc(req.From, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return Message{}, ErrFrom
	}
	route, err := s.deps.Resolver.Target(ctx, req.AccountSid, req.To)
	if err != nil {
		return Message{}, err
	}
	if route.App != nil {
		return Message{}, fmt.Errorf("%w: %s is an application, not a client", ErrNoRoute, req.To)
	}
	release, err := s.admit(ctx, req.AccountSid)
	if err != nil {
		return Message{}, err
	}
	if req.Direction == "" {
		req.Direction = DirectionOutboundAPI
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	// Stored as sending (so no flush of the recipient's queue picks it up
	// while this first attempt runs; a restart queues it again) and
	// returned as queued, the REST API's first status.
	m := Message{Sid: sid.New(sid.Message), AccountSid: req.AccountSid, From: req.From, To: route.To, Target: route.Identity,
		Body: []byte(req.Body), ContentType: "text/plain", Direction: req.Direction, Status: StatusSending,
		StatusCallback: req.StatusCallback, StatusCallbackMethod: req.StatusCallbackMethod, DateCreated: now, DateUpdated: now}
	if m.StatusCallbackMethod == "" {
		m.StatusCallbackMethod = "POST"
	}
	if err := s.create(ctx, m); err != nil {
		release()
		return Message{}, err
	}
	first := m // the goroutine's copy
	started := s.background(func(ctx context.Context) {
		defer release()
		m := first
		s.cbs.status(m) // sending
		dctx, cancel := context.WithTimeout(ctx, s.cfg.DeliveryTimeout)
		err := s.deliver(dctx, m)
		cancel()
		switch {
		case err == nil:
			s.setStatus(m, StatusDelivered, 0, "")
		case s.cfg.StoreFor < 0:
			s.setStatus(m, StatusUndelivered, ErrorUnreachable, err.Error())
		default:
			s.enqueue(&m)
		}
	})
	if !started {
		release() // stopping: the message stays "sending" and is queued again at the next start
	}
	m.Status = StatusQueued
	return m, nil
}

func (s *Service) create(ctx context.Context, m Message) error {
	if err := s.deps.Store.CreateMessage(ctx, m); err != nil {
		return fmt.Errorf("messaging: store message: %w", err)
	}
	if s.deps.Created != nil {
		s.deps.Created(m)
	}
	return nil
}

// background runs f with the service's context, tracked for Run's return;
// false (and f not run) once Run has ended.
func (s *Service) background(f func(ctx context.Context)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f(s.ctx)
	}()
	return true
}

// setStatus records a status change and queues its status callback.
func (s *Service) setStatus(m Message, status string, code int, reason string) Message {
	now := s.now().UTC().Truncate(time.Millisecond)
	m.Status, m.ErrorCode, m.ErrorMessage, m.DateUpdated = status, code, reason, now
	if status == StatusDelivered {
		m.DateSent = now
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.deps.Store.UpdateMessageStatus(ctx, m); err != nil {
		s.log.Error("saving message status", "message", m.Sid, "status", status, "err", err)
	}
	s.log.Debug("message status", "message", m.Sid, "to", m.To, "status", status)
	s.cbs.status(m)
	return m
}

// enqueue keeps a message for its recipient's next registration.
func (s *Service) enqueue(m *Message) {
	m.ExpiresAt = s.now().Add(s.cfg.StoreFor).UTC().Truncate(time.Millisecond)
	*m = s.setStatus(*m, StatusQueued, 0, "")
	// The recipient may have registered while this attempt was failing.
	s.kick(Recipient{AccountSid: m.AccountSid, Identity: m.Target})
}

// deliver sends m to every binding of its target at once; nil when at
// least one accepted it.
func (s *Service) deliver(ctx context.Context, m Message) error {
	bs, err := s.deps.Registry.Bindings(ctx, m.AccountSid, m.Target)
	if err != nil {
		return fmt.Errorf("bindings of %s: %w", m.Target, err)
	}
	d := Delivery{MessageSid: m.Sid, From: m.From, To: m.To, ContentType: m.ContentType, Body: m.Body}
	errs := make(chan error, len(bs))
	n := 0
	for _, b := range bs {
		sink := s.sink(b.Transport)
		if sink == nil {
			continue
		}
		n++
		go func() {
			err := sink.Deliver(ctx, b, d)
			if err != nil {
				err = fmt.Errorf("%s: %w", b.Contact, err)
			}
			errs <- err
		}()
	}
	if n == 0 {
		return fmt.Errorf("%s has no reachable binding", m.Target)
	}
	var all []error
	ok := false
	for range n {
		if err := <-errs; err != nil {
			all = append(all, err)
		} else {
			ok = true
		}
	}
	if ok {
		return nil
	}
	return errors.Join(all...)
}

// kick delivers r's queued messages in the background, once at a time per
// recipient (a kick during a flush makes it run again).
func (s *Service) kick(r Recipient) {
	if r.Identity == "" {
		return
	}
	s.mu.Lock()
	if st, ok := s.flushing[r]; ok {
		st.again = true
		s.mu.Unlock()
		return
	}
	st := &flushState{}
	s.flushing[r] = st
	s.mu.Unlock()
	started := s.background(func(ctx context.Context) {
		for {
			s.flush(ctx, r)
			s.mu.Lock()
			if !st.again || ctx.Err() != nil {
				delete(s.flushing, r)
				s.mu.Unlock()
				return
			}
			st.again = false
			s.mu.Unlock()
		}
	})
	if !started {
		s.mu.Lock()
		delete(s.flushing, r)
		s.mu.Unlock()
	}
}

// flush delivers r's queued messages in order while its bindings take them.
func (s *Service) flush(ctx context.Context, r Recipient) {
	bs, err := s.deps.Registry.Bindings(ctx, r.AccountSid, r.Identity)
	if err != nil || len(bs) == 0 {
		return
	}
	msgs, err := s.deps.Store.QueuedMessages(ctx, r.AccountSid, r.Identity)
	if err != nil {
		s.log.Error("loading queued messages", "identity", r.Identity, "err", err)
		return
	}
	now := s.now()
	for _, m := range msgs {
		if !m.ExpiresAt.IsZero() && !now.Before(m.ExpiresAt) {
			continue // the sweep marks it undelivered
		}
		dctx, cancel := context.WithTimeout(ctx, s.cfg.DeliveryTimeout)
		err := s.deliver(dctx, m)
		cancel()
		if err != nil {
			s.log.Info("queued message not delivered yet", "message", m.Sid, "to", m.To, "err", err)
			return
		}
		s.setStatus(m, StatusDelivered, 0, "")
	}
}

// Run drives store-and-forward until ctx ends: queued messages go out when
// their recipient registers (presence events) and at every sweep, expired
// ones become undelivered. It waits for background deliveries and status
// callbacks in flight before returning.
func (s *Service) Run(ctx context.Context) error {
	defer func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.wg.Wait()
		s.cbs.close()
	}()
	go s.cbs.run(s.ctx)
	if n, err := s.deps.Store.RequeueSending(ctx); err != nil {
		return fmt.Errorf("messaging: requeue: %w", err)
	} else if n > 0 {
		s.log.Info("messages interrupted by a restart queued again", "messages", n)
	}
	sub := s.deps.Registry.Events().Subscribe(1024, func(e presence.Event) bool {
		return e.Bindings > 0 && e.Status != presence.Offline
	})
	defer sub.Close()
	s.sweep(ctx)
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-sub.C:
			s.kick(Recipient{AccountSid: e.AccountSid, Identity: e.Identity})
		case <-t.C:
			s.sweep(ctx)
		}
	}
}

// sweep expires old queued messages and retries the others.
func (s *Service) sweep(ctx context.Context) {
	expired, err := s.deps.Store.ExpireMessages(ctx, s.now(), ErrorUnreachable, "the recipient did not register before the message expired")
	if err != nil {
		s.log.Error("expiring messages", "err", err)
	}
	for _, m := range expired {
		s.log.Info("message undelivered: expired", "message", m.Sid, "to", m.To)
		s.cbs.status(m)
	}
	targets, err := s.deps.Store.QueuedTargets(ctx)
	if err != nil {
		s.log.Error("listing queued messages", "err", err)
		return
	}
	for _, r := range targets {
		s.kick(r)
	}
}

// Expire runs one expiry pass now (tests and operators; Run does it every
// SweepInterval).
func (s *Service) Expire(ctx context.Context) { s.sweep(ctx) }

func contentType(ct string) string {
	ct = strings.TrimSpace(ct)
	if ct == "" {
		return "text/plain"
	}
	return ct
}
