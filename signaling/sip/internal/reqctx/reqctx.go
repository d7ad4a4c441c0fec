package reqctx

import (
	"context"
	"sync"
	"time"
)

// Timeout bounds what one request's handling may wait for (the database,
// mostly).
const Timeout = 10 * time.Second

// Context is a request's context: it ends Timeout after the request
// arrived, or when Cancel is called. Unlike context.WithTimeout it
// makes its timer only when something waits on it (Done or Err): a REGISTER
// answered from memory (a cached signing key, the in-memory registry) never
// does, and the timer and its context were a tenth of such a registration's
// allocations, with a timer-heap insertion and deletion each.
type Context struct {
	deadline time.Time

	mu       sync.Mutex
	ctx      context.Context // nil until something waits
	stop     context.CancelFunc
	canceled bool
}

// New returns the context of a request that has just arrived.
func New() *Context {
	return &Context{deadline: time.Now().Add(Timeout)}
}

func (c *Context) started() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		c.ctx, c.stop = context.WithDeadline(context.Background(), c.deadline)
		if c.canceled {
			c.stop()
		}
	}
	return c.ctx
}

// Deadline implements context.Context.
func (c *Context) Deadline() (time.Time, bool) { return c.deadline, true }

// Done implements context.Context.
func (c *Context) Done() <-chan struct{} { return c.started().Done() }

// Err implements context.Context.
func (c *Context) Err() error { return c.started().Err() }

// Value implements context.Context: a request's context carries no values.
func (c *Context) Value(any) any { return nil }

// Cancel ends the context and releases its timer, if it made one.
func (c *Context) Cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.canceled = true
	if c.stop != nil {
		c.stop()
	}
}
