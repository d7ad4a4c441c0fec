package calls

import (
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Call statuses, as the REST API and status callbacks report them.
const (
	StatusQueued     = "queued"
	StatusRinging    = "ringing"
	StatusInProgress = "in-progress"
	StatusCompleted  = "completed"
	StatusBusy       = "busy"
	StatusFailed     = "failed"
	StatusNoAnswer   = "no-answer"
	StatusCanceled   = "canceled"
)

// Call is one call the engine runs: who, where its instructions come from,
// and its state.
type Call struct {
	Sid            string
	AccountSid     string
	ApplicationSid string
	ParentCallSid  string
	From, To       string
	CallerName     string
	Direction      string // inbound, outbound-api, outbound-dial
	AuthToken      string // signs the webhooks of the call's account
	// Params are extra parameters of every voice webhook of the call (a
	// browser's connect params); they never replace the standard ones.
	Params url.Values

	VoiceURL, VoiceMethod       string
	FallbackURL, FallbackMethod string

	// StatusCallback receives the events named in StatusCallbackEvents
	// (initiated, ringing, answered, completed; empty means completed only).
	StatusCallback       string
	StatusCallbackMethod string
	StatusCallbackEvents []string

	control chan control // live changes from the REST API; see Engine.Redirect and Engine.Hangup
	fetches atomic.Int64 // instruction fetches so far

	mu       sync.Mutex
	seq      int // status callbacks sent so far
	status   string
	started  time.Time
	answered time.Time
	ended    time.Time
}

// Snapshot is a call's state at one moment.
type Snapshot struct {
	Status                   string
	Started, Answered, Ended time.Time
	Duration                 time.Duration // answered → ended (or now)
}

// Snapshot returns the call's current state.
func (c *Call) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Snapshot{Status: c.status, Started: c.started, Answered: c.answered, Ended: c.ended}
	if !c.answered.IsZero() {
		end := c.ended
		if end.IsZero() {
			end = time.Now()
		}
		s.Duration = end.Sub(c.answered)
	}
	return s
}

// Status returns the current status.
func (c *Call) Status() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// setStatus moves the call to status and reports whether it changed. A final
// status is never left.
func (c *Call) setStatus(status string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status == status || isFinal(c.status) {
		return false
	}
	c.status = status
	switch {
	case c.started.IsZero():
		c.started = now
	}
	if status == StatusInProgress && c.answered.IsZero() {
		c.answered = now
	}
	if isFinal(status) {
		c.ended = now
	}
	return true
}

func isFinal(s string) bool {
	switch s {
	case StatusCompleted, StatusBusy, StatusFailed, StatusNoAnswer, StatusCanceled:
		return true
	}
	return false
}

// control is a live change to a running call.
type control struct {
	hangup bool
	req    request // redirect target when !hangup
}
