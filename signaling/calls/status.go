package calls

import (
	"context"
	"hash/fnv"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/webhook"
)

// eventOf maps a call status to the status-callback event that reports it.
func eventOf(status string) string {
	switch status {
	case StatusQueued:
		return "initiated"
	case StatusRinging:
		return "ringing"
	case StatusInProgress:
		return "answered"
	}
	if isFinal(status) {
		return "completed"
	}
	return ""
}

func (c *Call) wants(event string) bool {
	if c.StatusCallback == "" || event == "" {
		return false
	}
	if len(c.StatusCallbackEvents) == 0 {
		return event == "completed"
	}
	for _, e := range c.StatusCallbackEvents {
		if e == event {
			return true
		}
	}
	return false
}

// StatusCallbacks delivers call status callbacks off the call's path:
// bounded queues, a few workers, retries with back-off. Each call's
// callbacks go through one worker, so they arrive in order. A full queue
// drops the callback (and logs it) rather than ever stalling a call.
type StatusCallbacks struct {
	Webhooks *webhook.Client
	Log      *slog.Logger
	Retries  int           // attempts after the first (default 3)
	Backoff  time.Duration // first retry delay, doubled each time (default 1s)
	Workers  int           // default 4

	once   sync.Once
	queues []chan statusJob
}

type statusJob struct {
	req    webhook.Request
	callID string
}

func (s *StatusCallbacks) init() {
	s.once.Do(func() {
		if s.Workers <= 0 {
			s.Workers = 4
		}
		s.queues = make([]chan statusJob, s.Workers)
		for i := range s.queues {
			s.queues[i] = make(chan statusJob, 1024)
		}
		if s.Log == nil {
			s.Log = slog.New(slog.DiscardHandler)
		}
		if s.Webhooks == nil {
			s.Webhooks = &webhook.Client{}
		}
		if s.Retries == 0 {
			s.Retries = 3
		}
		if s.Backoff == 0 {
			s.Backoff = time.Second
		}
	})
}

// CallStatus queues the callback for a status change when the call asked for it.
func (s *StatusCallbacks) CallStatus(c *Call, status string) {
	s.init()
	event := eventOf(status)
	if !c.wants(event) {
		return
	}
	snap := c.Snapshot()
	c.mu.Lock()
	c.seq++
	seq := c.seq - 1
	c.mu.Unlock()
	p := url.Values{
		"CallSid": {c.Sid}, "AccountSid": {c.AccountSid}, "From": {c.From}, "To": {c.To},
		"Direction": {c.Direction}, "ApiVersion": {"2010-04-01"}, "CallStatus": {status},
		"CallbackSource": {"call-progress-events"}, "SequenceNumber": {strconv.Itoa(seq)},
		"Timestamp": {time.Now().UTC().Format(time.RFC1123Z)},
	}
	if c.ParentCallSid != "" {
		p.Set("ParentCallSid", c.ParentCallSid)
	}
	if event == "completed" {
		p.Set("CallDuration", strconv.Itoa(wholeSeconds(snap.Duration)))
	}
	job := statusJob{req: webhook.Request{URL: c.StatusCallback, Method: c.StatusCallbackMethod, Params: p, AuthToken: c.AuthToken}, callID: c.Sid}
	h := fnv.New32a()
	h.Write([]byte(c.Sid))
	select {
	case s.queues[int(h.Sum32())%len(s.queues)] <- job:
	default:
		s.Log.Error("status callback queue full; callback dropped", "call", c.Sid, "status", status)
	}
}

// RecordingDone is not a status callback.
func (s *StatusCallbacks) RecordingDone(Recording) {}

// Run delivers queued callbacks, one worker per queue, until ctx ends.
func (s *StatusCallbacks) Run(ctx context.Context) {
	s.init()
	var wg sync.WaitGroup
	for _, q := range s.queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case job := <-q:
					s.deliver(ctx, job)
				}
			}
		}()
	}
	wg.Wait()
}

func (s *StatusCallbacks) deliver(ctx context.Context, job statusJob) {
	delay := s.Backoff
	for attempt := 0; ; attempt++ {
		_, err := s.Webhooks.Do(ctx, job.req)
		if err == nil {
			return
		}
		if attempt >= s.Retries || ctx.Err() != nil {
			s.Log.Warn("status callback failed", "call", job.callID, "status", job.req.Params.Get("CallStatus"), "attempts", attempt+1, "err", err)
			return
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		delay *= 2
	}
}

// Fanout sends engine events to several receivers in order.
type Fanout []Events

// CallStatus implements Events.
func (f Fanout) CallStatus(c *Call, status string) {
	for _, e := range f {
		e.CallStatus(c, status)
	}
}

// RecordingDone implements Events.
func (f Fanout) RecordingDone(r Recording) {
	for _, e := range f {
		e.RecordingDone(r)
	}
}

// wholeSeconds rounds a duration up: a call that lasted 0.4 s lasted 1 s.
func wholeSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
