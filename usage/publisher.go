package usage

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

	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
)

// Backend gives the running usage plugin. *plugins.Supervisor implements it.
type Backend interface {
	Usage(ctx context.Context) (usagev1.UsageClient, error)
}

// PublisherOptions are the publisher's collaborators.
type PublisherOptions struct {
	// SpoolDir holds events the plugin could not take yet
	// (e.g. <data_dir>/usage-spool). Required.
	SpoolDir   string
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics kept, not exported
}

// Stats counts events by what happened to them.
type Stats struct {
	Published int64 // accepted by Publish
	Sent      int64 // acknowledged by the plugin from the queue
	Spooled   int64 // written to the spool (queue full or plugin down)
	Replayed  int64 // acknowledged by the plugin from the spool
	Dropped   int64 // lost: invalid, or the spool could not be written
}

// Publisher takes usage events from the hot path and gets them to the plugin:
// Publish puts an event on a bounded queue and never waits for the plugin;
// one sender batches the queue over a gRPC stream; what the plugin cannot
// take (down, slow, queue full) goes to a disk spool and is replayed.
type Publisher struct {
	backend Backend
	cfg     Config
	log     *slog.Logger
	spool   *spool

	mu     sync.RWMutex // Publish holds it shared; Close exclusively
	closed bool
	queue  chan *usagev1.Event

	published, sent, spooled, replayed, dropped atomic.Int64

	stop chan struct{}
	done chan struct{}

	// sender state (sender goroutine only)
	stream    usagev1.Usage_IngestClient
	streamEnd context.CancelFunc
	seq       uint64
	downUntil time.Time
}

// NewPublisher opens the spool; call Start, and Close at shutdown.
func NewPublisher(backend Backend, cfg Config, opts PublisherOptions) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.SpoolDir == "" {
		return nil, errors.New("usage publisher: spool dir is required")
	}
	sp, err := openSpool(opts.SpoolDir, cfg.SpoolSegment, cfg.SpoolMax)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{
		backend: backend, cfg: cfg, log: log.With("component", "usage"), spool: sp,
		queue: make(chan *usagev1.Event, cfg.QueueSize), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if opts.Registerer != nil {
		for name, v := range map[string]*atomic.Int64{"published": &p.published, "sent": &p.sent, "spooled": &p.spooled, "replayed": &p.replayed, "dropped": &p.dropped} {
			c := prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: "parley", Subsystem: "usage", Name: "events_" + name + "_total",
				Help: "Usage events " + name + " (published: accepted by Publish; sent: acknowledged by the plugin; spooled: written to disk; replayed: acknowledged from disk; dropped: lost).",
			}, func() float64 { return float64(v.Load()) })
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("usage metrics: %w", err)
			}
		}
		q := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "parley", Subsystem: "usage", Name: "queue_length", Help: "Usage events waiting in memory."},
			func() float64 { return float64(len(p.queue)) })
		if err := opts.Registerer.Register(q); err != nil {
			return nil, fmt.Errorf("usage metrics: %w", err)
		}
	}
	return p, nil
}

// Start runs the sender until Close.
func (p *Publisher) Start() {
	go p.run()
}

// Stats returns the counters.
func (p *Publisher) Stats() Stats {
	return Stats{Published: p.published.Load(), Sent: p.sent.Load(), Spooled: p.spooled.Load(), Replayed: p.replayed.Load(), Dropped: p.dropped.Load()}
}

// Publish queues one event; it never waits for the plugin. It fails only for
// an invalid event (ErrInvalidEvent), which is counted as dropped.
func (p *Publisher) Publish(ev Event) error {
	if err := ev.check(); err != nil {
		p.dropped.Add(1)
		return err
	}
	if ev.ID == "" {
		ev.ID = newEventID()
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	pe := &usagev1.Event{Id: ev.ID, AccountSid: ev.AccountSid, Category: ev.Category, Count: ev.Count, Usage: ev.Usage, TimeUnixMs: ev.Time.UnixMilli()}
	p.published.Add(1)
	p.mu.RLock()
	if !p.closed {
		select {
		case p.queue <- pe:
			p.mu.RUnlock()
			return nil
		default:
		}
	}
	closed := p.closed
	p.mu.RUnlock()
	p.toSpool([]*usagev1.Event{pe})
	if closed {
		// Nobody syncs the spool after Close: make this event durable now.
		if err := p.spool.sync(); err != nil {
			p.log.Error("usage spool sync failed", "err", err)
		}
	}
	return nil
}

// PublishAll publishes several events (e.g. CallEnded's).
func (p *Publisher) PublishAll(evs []Event) error {
	var errs []error
	for _, e := range evs {
		if err := p.Publish(e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *Publisher) toSpool(evs []*usagev1.Event) {
	if err := p.spool.append(evs); err != nil {
		p.dropped.Add(int64(len(evs)))
		p.log.Error("usage events lost: spool write failed", "events", len(evs), "err", err)
		return
	}
	p.spooled.Add(int64(len(evs)))
}

// Close stops taking events into the queue, sends what is queued (or spools
// it), makes the spool durable and closes the stream. Events published
// after Close go straight to the spool.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	if !already {
		close(p.stop)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("usage publisher: close: %w", ctx.Err())
	}
	return p.spool.close()
}

func (p *Publisher) run() {
	defer close(p.done)
	defer p.closeStream()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	batch := make([]*usagev1.Event, 0, p.cfg.BatchSize)
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	for {
		batch = batch[:0]
		stopping := false
		// Wait for the first event (or housekeeping), then fill the batch
		// for up to FlushInterval.
		select {
		case e := <-p.queue:
			batch = append(batch, e)
		case <-tick.C:
			p.housekeeping()
			continue
		case <-p.stop:
			stopping = true
		}
		if !stopping {
			flush.Reset(p.cfg.FlushInterval)
		fill:
			for len(batch) < p.cfg.BatchSize {
				select {
				case e := <-p.queue:
					batch = append(batch, e)
				case <-flush.C:
					break fill
				case <-p.stop:
					stopping = true
					break fill
				}
			}
			flush.Stop()
			p.deliver(batch)
		}
		if stopping {
			p.drain(batch[:0])
			return
		}
	}
}

// drain sends (or spools) everything left in the queue at Close.
func (p *Publisher) drain(batch []*usagev1.Event) {
	for {
		select {
		case e := <-p.queue:
			batch = append(batch, e)
			if len(batch) < p.cfg.BatchSize {
				continue
			}
		default:
		}
		if len(batch) == 0 {
			return
		}
		p.deliver(batch)
		batch = batch[:0]
	}
}

// housekeeping makes spooled events durable and replays the spool while the
// plugin is up.
func (p *Publisher) housekeeping() {
	if err := p.spool.sync(); err != nil {
		p.log.Error("usage spool sync failed", "err", err)
	}
	if time.Now().Before(p.downUntil) || !p.spool.pending() {
		return
	}
	p.replay()
}

// replay sends the oldest spool segment and deletes it once all of it is
// acknowledged; it stops at the first failure (the segment stays).
func (p *Publisher) replay() {
	name, evs, err := p.spool.oldest()
	if err != nil {
		p.log.Error("usage spool unreadable", "file", name, "err", err)
		return
	}
	if name == "" {
		return
	}
	for i := 0; i < len(evs); i += p.cfg.BatchSize {
		chunk := evs[i:min(i+p.cfg.BatchSize, len(evs))]
		if err := p.send(chunk); err != nil {
			p.markDown(err)
			return
		}
		// Events from a previous run's spool were not counted as spooled
		// by this process; replayed counts every event re-sent from disk.
		p.replayed.Add(int64(len(chunk)))
	}
	if err := p.spool.done(name); err != nil {
		p.log.Error("usage spool", "err", err)
	}
	if len(evs) > 0 {
		p.log.Info("replayed spooled usage events", "events", len(evs), "file", name)
	}
}

// deliver sends a batch from the queue, spooling it when the plugin is down.
func (p *Publisher) deliver(batch []*usagev1.Event) {
	if len(batch) == 0 {
		return
	}
	if time.Now().Before(p.downUntil) {
		p.toSpool(batch)
		return
	}
	if err := p.send(batch); err != nil {
		p.markDown(err)
		p.toSpool(batch)
		return
	}
	p.sent.Add(int64(len(batch)))
	if p.spool.pending() {
		p.replay()
	}
}

func (p *Publisher) markDown(err error) {
	p.closeStream()
	p.downUntil = time.Now().Add(p.cfg.RetryInterval)
	p.log.Warn("usage plugin unavailable; spooling events", "err", err, "retry_in", p.cfg.RetryInterval)
}

func (p *Publisher) closeStream() {
	if p.stream != nil {
		_ = p.stream.CloseSend()
		p.streamEnd()
		p.stream, p.streamEnd = nil, nil
	}
}

// send puts one batch on the stream and waits for its acknowledgement.
func (p *Publisher) send(batch []*usagev1.Event) error {
	if p.stream == nil {
		cl, err := p.backend.Usage(context.Background())
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		st, err := cl.Ingest(ctx)
		if err != nil {
			cancel()
			return fmt.Errorf("open ingest stream: %w", err)
		}
		p.stream, p.streamEnd = st, cancel
	}
	p.seq++
	seq := p.seq
	// A stuck plugin must not stall the sender: cancel the stream when the
	// acknowledgement is late.
	timer := time.AfterFunc(p.cfg.BatchTimeout, p.streamEnd)
	defer timer.Stop()
	if err := p.stream.Send(&usagev1.RecordRequest{Events: batch, Seq: seq}); err != nil {
		return fmt.Errorf("send batch: %w", err)
	}
	res, err := p.stream.Recv()
	if err != nil {
		if status.Code(err) == codes.InvalidArgument {
			// Publish validated every event, so this is a version mismatch:
			// keep the events on disk rather than lose them.
			return fmt.Errorf("plugin refused batch: %w", err)
		}
		return fmt.Errorf("batch acknowledgement: %w", err)
	}
	if res.GetSeq() != seq {
		return fmt.Errorf("batch acknowledgement for seq %d, want %d", res.GetSeq(), seq)
	}
	return nil
}
