package calls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/webhook"
	"github.com/parleyhq/parley/signaling/twiml"
)

// Recording is one finished <Record>.
type Recording struct {
	Sid        string
	AccountSid string
	CallSid    string
	Path       string // the WAV file
	Duration   time.Duration
	Created    time.Time
}

// Events receives what happens to calls: status changes (for status
// callbacks and the REST API) and recordings. Implementations must not block.
type Events interface {
	CallStatus(call *Call, status string)
	RecordingDone(rec Recording)
}

// Config wires an Engine.
type Config struct {
	Webhooks *webhook.Client
	Dialer   Dialer
	Events   Events // optional
	Log      *slog.Logger
	Now      func() time.Time

	// TTSCommand runs text-to-speech for <Say>: argv with {text}, {voice},
	// {language} and {out} (a WAV path) substituted. Empty: Say is refused
	// with a logged error and the call goes on.
	TTSCommand []string
	// RecordingsDir holds <Record> WAV files; RecordingURL(sid) is the URL
	// sent as RecordingUrl.
	RecordingsDir string
	RecordingURL  func(accountSid, recordingSid string) string

	MaxDocuments int // instruction documents one call may fetch (default 100)

	// Fetched, when set, is told of each instruction fetch (usage events)
	// with its ordinal in the call (1, 2, …); it must not block.
	Fetched func(c *Call, n int)

	// Messages, when set, sends the <Message> verbs of a call's instructions;
	// without it they are logged and skipped.
	Messages Messenger
}

// OutboundMessage is a <Message> of a call's instructions, with its
// defaults applied: To is the caller, From the number or address called.
type OutboundMessage struct {
	AccountSid, To, From, Body string
	StatusCallback, Method     string // the verb's action, resolved
}

// Messenger sends messages for calls (the server adapts messaging.Service).
type Messenger interface {
	SendMessage(ctx context.Context, m OutboundMessage) error
}

// Engine runs calls.
type Engine struct {
	cfg   Config
	audio *audioCache

	mu   sync.Mutex
	live map[string]*Call // running calls by sid
}

// New builds an engine.
func New(cfg Config) *Engine {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Webhooks == nil {
		cfg.Webhooks = &webhook.Client{}
	}
	if cfg.MaxDocuments <= 0 {
		cfg.MaxDocuments = 100
	}
	return &Engine{cfg: cfg, audio: newAudioCache(64<<20, cfg.Webhooks.EgressPolicy()), live: map[string]*Call{}}
}

// ErrNotLive means the call is not running on this engine (it ended, or
// never existed here).
var ErrNotLive = errors.New("call is not in progress")

func (e *Engine) lookup(callSid string) (*Call, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.live[callSid]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotLive, callSid)
	}
	return c, nil
}

func (e *Engine) send(callSid string, ctl control) error {
	c, err := e.lookup(callSid)
	if err != nil {
		return err
	}
	select {
	case c.control <- ctl:
		return nil
	default:
		return fmt.Errorf("call %s is already being changed; try again", callSid)
	}
}

// Redirect makes a running call drop what it is doing and fetch new
// instructions from rawURL (REST: POST …/Calls/{sid} with Url).
func (e *Engine) Redirect(callSid, rawURL, method string) error {
	return e.send(callSid, control{req: request{URL: rawURL, Method: method}})
}

// Hangup ends a running call (REST: POST …/Calls/{sid} with Status=completed).
func (e *Engine) Hangup(callSid string) error {
	return e.send(callSid, control{hangup: true})
}

// Active is how many calls the engine is running.
func (e *Engine) Active() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.live)
}

// HangupAll ends every running call (the end of a graceful shutdown).
func (e *Engine) HangupAll() {
	e.mu.Lock()
	sids := make([]string, 0, len(e.live))
	for sid := range e.live {
		sids = append(sids, sid)
	}
	e.mu.Unlock()
	for _, sid := range sids {
		_ = e.Hangup(sid)
	}
}

// Live returns the running call with the given sid.
func (e *Engine) Live(callSid string) (*Call, bool) {
	c, err := e.lookup(callSid)
	return c, err == nil
}

func (e *Engine) status(c *Call, s string) {
	if c.setStatus(s, e.cfg.Now()) && e.cfg.Events != nil {
		e.cfg.Events.CallStatus(c, s)
	}
}

// request is an instruction fetch.
type request struct {
	URL, Method string
	Params      url.Values
}

// baseParams are the parameters every voice webhook of a call carries.
func baseParams(c *Call) url.Values {
	v := url.Values{}
	for k, vs := range c.Params {
		v[k] = append([]string(nil), vs...)
	}
	v.Set("CallSid", c.Sid)
	v.Set("AccountSid", c.AccountSid)
	v.Set("From", c.From)
	v.Set("To", c.To)
	v.Set("Caller", c.From)
	v.Set("Called", c.To)
	v.Set("CallStatus", c.Status())
	v.Set("Direction", c.Direction)
	v.Set("ApiVersion", "2010-04-01")
	v.Set("CallerName", c.CallerName)
	if c.ApplicationSid != "" {
		v.Set("ApplicationSid", c.ApplicationSid)
	}
	if c.ParentCallSid != "" {
		v.Set("ParentCallSid", c.ParentCallSid)
	}
	return v
}

// ErrInstructions means no usable instructions could be fetched.
var ErrInstructions = errors.New("no usable call instructions")

// fetch gets and parses one instruction document. Any failure — transport,
// status, size, content or TwiML — is returned as an error naming it.
func (e *Engine) fetch(ctx context.Context, c *Call, req request) (*twiml.Document, error) {
	if e.cfg.Fetched != nil {
		e.cfg.Fetched(c, int(c.fetches.Add(1)))
	}
	params := baseParams(c)
	for k, v := range req.Params {
		params[k] = v
	}
	res, err := e.cfg.Webhooks.Do(ctx, webhook.Request{URL: req.URL, Method: req.Method, Params: params, AuthToken: c.AuthToken})
	if err != nil {
		return nil, err
	}
	ct := strings.ToLower(res.ContentType)
	if ct != "" && !strings.Contains(ct, "xml") && !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("%s answered Content-Type %q, want XML", req.URL, res.ContentType)
	}
	doc, err := twiml.Parse(res.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.URL, err)
	}
	return doc, nil
}

// fetchWithFallback tries the request, then the call's fallback URL.
func (e *Engine) fetchWithFallback(ctx context.Context, c *Call, req request) (*twiml.Document, string, error) {
	doc, err := e.fetch(ctx, c, req)
	if err == nil {
		return doc, req.URL, nil
	}
	e.cfg.Log.Warn("instruction fetch failed", "call", c.Sid, "url", redactURL(req.URL), "err", err)
	if c.FallbackURL == "" || ctx.Err() != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrInstructions, err)
	}
	fb := request{URL: c.FallbackURL, Method: c.FallbackMethod, Params: url.Values{
		"ErrorCode": {strconv.Itoa(webhook.Code(err))}, "ErrorUrl": {req.URL}}}
	for k, v := range req.Params {
		fb.Params[k] = v
	}
	doc, ferr := e.fetch(ctx, c, fb)
	if ferr != nil {
		e.cfg.Log.Warn("fallback fetch failed", "call", c.Sid, "url", redactURL(c.FallbackURL), "err", ferr)
		return nil, "", fmt.Errorf("%w: %w; fallback: %w", ErrInstructions, err, ferr)
	}
	return doc, c.FallbackURL, nil
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}

// resolve makes ref absolute against the document it came from.
func resolve(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("base URL %q: %w", base, err)
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("URL %q: %w", ref, err)
	}
	out := b.ResolveReference(r)
	if out.Scheme != "http" && out.Scheme != "https" {
		return "", fmt.Errorf("URL %q is not http(s)", ref)
	}
	return out.String(), nil
}

// Run carries out an inbound call from its first instruction fetch to its
// end, and returns why it ended (nil for a normal end).
func (e *Engine) Run(ctx context.Context, c *Call, leg Leg) error {
	return e.run(ctx, c, leg, false)
}

// RunAnswered carries out a call Parley placed, on a leg that is already
// connected: the call is in progress from its first instruction fetch.
func (e *Engine) RunAnswered(ctx context.Context, c *Call, leg Leg) error {
	return e.run(ctx, c, leg, true)
}

// Status moves a call that the engine does not run yet (an outbound call
// being dialled) to a new status, reporting it like any other change.
func (e *Engine) Status(c *Call, status string) { e.status(c, status) }

func (e *Engine) run(ctx context.Context, c *Call, leg Leg, answered bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-leg.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	c.control = make(chan control, 1)
	e.mu.Lock()
	e.live[c.Sid] = c
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.live, c.Sid)
		e.mu.Unlock()
	}()
	r := &run{e: e, call: c, leg: leg}
	var err error
	if answered {
		err = r.answer(ctx, nil)
	} else {
		e.status(c, StatusRinging)
	}
	if err == nil {
		err = r.loop(ctx, request{URL: c.VoiceURL, Method: c.VoiceMethod})
	}
	r.finish(err)
	if errors.Is(err, ErrHungUp) {
		return nil
	}
	return err
}
