package messaging

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

// callbacks delivers message status callbacks off the delivery path: a few
// bounded queues (one message's callbacks always use the same one, so they
// arrive in order), retries with back-off, signed with the account's token.
type callbacks struct {
	hooks    *webhook.Client
	resolver Resolver
	log      *slog.Logger
	retries  int
	backoff  time.Duration
	queues   []chan Message
	wg       sync.WaitGroup
	once     sync.Once
}

func newCallbacks(hooks *webhook.Client, r Resolver, log *slog.Logger) *callbacks {
	c := &callbacks{hooks: hooks, resolver: r, log: log, retries: 3, backoff: time.Second, queues: make([]chan Message, 4)}
	for i := range c.queues {
		c.queues[i] = make(chan Message, 1024)
	}
	return c
}

// status queues the callback for m's current status, if m asked for one.
func (c *callbacks) status(m Message) {
	if m.StatusCallback == "" {
		return
	}
	h := fnv.New32a()
	h.Write([]byte(m.Sid))
	select {
	case c.queues[int(h.Sum32())%len(c.queues)] <- m:
	default:
		c.log.Error("message status callback queue full; callback dropped", "message", m.Sid, "status", m.Status)
	}
}

func (c *callbacks) run(ctx context.Context) {
	for _, q := range c.queues {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-q:
					c.deliver(ctx, m)
				}
			}
		}()
	}
}

func (c *callbacks) close() { c.once.Do(c.wg.Wait) }

// Params are the parameters of a message's status callback.
func Params(m Message) url.Values {
	p := url.Values{
		"MessageSid": {m.Sid}, "SmsSid": {m.Sid}, "SmsMessageSid": {m.Sid}, "AccountSid": {m.AccountSid},
		"From": {m.From}, "To": {m.To}, "MessageStatus": {m.Status}, "SmsStatus": {m.Status}, "ApiVersion": {"2010-04-01"},
	}
	if m.ErrorCode != 0 {
		p.Set("ErrorCode", strconv.Itoa(m.ErrorCode))
	}
	return p
}

func (c *callbacks) deliver(ctx context.Context, m Message) {
	token, err := c.resolver.AuthToken(ctx, m.AccountSid)
	if err != nil {
		c.log.Warn("message status callback: no auth token", "message", m.Sid, "err", err)
		return
	}
	req := webhook.Request{URL: m.StatusCallback, Method: m.StatusCallbackMethod, Params: Params(m), AuthToken: token}
	delay := c.backoff
	for attempt := 0; ; attempt++ {
		_, err := c.hooks.Do(ctx, req)
		if err == nil {
			return
		}
		if attempt >= c.retries || ctx.Err() != nil {
			c.log.Warn("message status callback failed", "message", m.Sid, "status", m.Status, "attempts", attempt+1, "err", err)
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
