package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/usage"
)

// Prefix is the base path of the REST API.
const Prefix = "/2010-04-01"

// Admitter gates each authenticated REST request by the account's concurrency
// limit for the "api" resource (SPEC §4a). Acquire returns a release function
// when the request may proceed, or an *admission.Denial.
type Admitter interface {
	Acquire(ctx context.Context, accountSid string, r admission.Resource) (release func(), err error)
}

// Limits reads and changes accounts' admission limits (SPEC §4a).
type Limits interface {
	Limits(ctx context.Context, accountSid string) ([]admission.Limit, error)
	SetLimit(ctx context.Context, accountSid string, r admission.Resource, limit int64) (admission.Limit, error)
	ClearLimit(ctx context.Context, accountSid string, r admission.Resource) (admission.Limit, error)
}

// Options configures the API.
type Options struct {
	Log *slog.Logger
	// Admission, when set, gates every authenticated request.
	Admission Admitter
	// Limits, when set, serves …/Limits.json.
	Limits Limits
	// Usage serves …/Usage/Records and …/Usage/Triggers; nil answers 503.
	Usage Usage
	// Calls, when set, lets POST …/Calls/{sid}.json change live calls.
	Calls CallControl
	// SIP configures the SIP domain, credential and presence resources.
	SIP SIPAdmin
	// Originator, when set, serves POST …/Calls.json.
	Originator Originator
	// Events, when set, receives an api-requests usage event per admitted request.
	Events UsageEvents
	// Messages, when set, serves POST …/Messages.json.
	Messages MessageSender
	// Partners configures /v1/Partners (partner delegation); nil Partners answers 503.
	Partners PartnerOptions
}

// UsageEvents takes usage events (usage.Publisher implements it).
type UsageEvents interface {
	Publish(usage.Event) error
}

// API is the REST API handler.
type API struct {
	store      Store
	log        *slog.Logger
	admit      Admitter
	limits     Limits
	calls      CallControl
	sip        SIPAdmin
	originator Originator
	events     UsageEvents
	usage      Usage
	messages   MessageSender
	partners   PartnerOptions
	mux        *http.ServeMux
}

// New builds the REST API over st (a *store.Store, or any Store).
func New(st Store, opts Options) *API {
	a := &API{store: st, log: opts.Log, admit: opts.Admission, limits: opts.Limits, calls: opts.Calls, sip: opts.SIP, originator: opts.Originator, events: opts.Events, usage: opts.Usage, messages: opts.Messages, partners: opts.Partners, mux: http.NewServeMux()}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.routes()
	return a
}

// handlerFunc is an authenticated handler: it returns the status and body to
// send, or an error.
type handlerFunc func(r *http.Request, p principal) (int, any, error)

func (a *API) handle(pattern string, h handlerFunc) {
	a.handleRaw(pattern, func(w http.ResponseWriter, r *http.Request, p principal) error {
		status, body, err := h(r, p)
		if err != nil {
			return err
		}
		if body == nil {
			w.WriteHeader(status)
			return nil
		}
		writeJSON(w, status, body)
		return nil
	})
}

// handleStream registers an authenticated handler for a long-lived
// response. It holds no admission slot: a stream is not a request in flight.
func (a *API) handleStream(pattern string, h func(w http.ResponseWriter, r *http.Request, p principal) error) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		p, err := a.authenticate(r)
		if err == nil {
			err = h(w, r, p)
		}
		if err != nil {
			writeError(w, r, a.log, err)
		}
	})
}

// handleRaw registers an authenticated, admitted handler that writes its
// own response (a file, say); a returned error is answered as JSON.
func (a *API) handleRaw(pattern string, h func(w http.ResponseWriter, r *http.Request, p principal) error) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		p, err := a.authenticate(r)
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		if a.admit != nil {
			release, err := a.admit.Acquire(r.Context(), p.Account.Sid, admission.ResourceAPI)
			var denial *admission.Denial
			if errors.As(err, &denial) {
				a.writeDenial(w, r, p, denial)
				return
			}
			if err != nil {
				writeError(w, r, a.log, errorf(http.StatusServiceUnavailable, CodeServiceUnavailable, "Admission unavailable: %v", err))
				return
			}
			defer release()
		}
		if a.events != nil {
			_ = a.events.Publish(usage.APIRequest(p.Account.Sid, time.Now()))
		}
		if err := h(w, r, p); err != nil {
			var denial *admission.Denial
			if errors.As(err, &denial) {
				a.writeDenial(w, r, p, denial)
				return
			}
			writeError(w, r, a.log, err)
		}
	})
}

func (a *API) routes() {
	a.handle("GET "+Prefix+"/Accounts.json", a.listAccounts)
	a.handle("POST "+Prefix+"/Accounts.json", a.createAccount)
	a.handle("GET "+Prefix+"/Accounts/{account}", a.fetchAccount)
	a.handle("POST "+Prefix+"/Accounts/{account}", a.updateAccount)

	a.handle("GET "+Prefix+"/Accounts/{account}/Keys.json", a.listKeys)
	a.handle("POST "+Prefix+"/Accounts/{account}/Keys.json", a.createKey)
	a.handle("GET "+Prefix+"/Accounts/{account}/Keys/{key}", a.fetchKey)
	a.handle("POST "+Prefix+"/Accounts/{account}/Keys/{key}", a.updateKey)
	a.handle("DELETE "+Prefix+"/Accounts/{account}/Keys/{key}", a.deleteKey)

	a.handle("GET "+Prefix+"/Accounts/{account}/Applications.json", a.listApplications)
	a.handle("POST "+Prefix+"/Accounts/{account}/Applications.json", a.createApplication)
	a.handle("GET "+Prefix+"/Accounts/{account}/Applications/{app}", a.fetchApplication)
	a.handle("POST "+Prefix+"/Accounts/{account}/Applications/{app}", a.updateApplication)
	a.handle("DELETE "+Prefix+"/Accounts/{account}/Applications/{app}", a.deleteApplication)

	a.handle("GET "+Prefix+"/Accounts/{account}/Calls.json", a.listCalls)
	a.handle("POST "+Prefix+"/Accounts/{account}/Calls.json", a.createCall)
	a.handle("GET "+Prefix+"/Accounts/{account}/Calls/{call}", a.fetchCall)
	a.handle("POST "+Prefix+"/Accounts/{account}/Calls/{call}", a.updateCall)
	a.handle("GET "+Prefix+"/Accounts/{account}/Calls/{call}/Recordings.json", a.listRecordings)
	a.handle("GET "+Prefix+"/Accounts/{account}/Recordings.json", a.listRecordings)
	a.handleRaw("GET "+Prefix+"/Accounts/{account}/Recordings/{recording}", a.fetchRecording)

	a.handle("GET "+Prefix+"/Accounts/{account}/Messages.json", a.listMessages)
	a.handle("POST "+Prefix+"/Accounts/{account}/Messages.json", a.createMessage)
	a.handle("GET "+Prefix+"/Accounts/{account}/Messages/{message}", a.fetchMessage)

	a.handle("GET "+Prefix+"/Accounts/{account}/Limits.json", a.listLimits)
	a.handle("POST "+Prefix+"/Accounts/{account}/Limits.json", a.setLimit)

	a.routeNumbers()
	a.usageRoutes()

	a.sipRoutes()
	a.partnerRoutes()
	a.mux.HandleFunc(Prefix+"/", a.unrouted)
}

// unrouted answers paths no route matched: 405 with Allow when the path exists
// for other methods, 404 otherwise — both as JSON errors.
func (a *API) unrouted(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := a.mux.Handler(probe); pattern != "" && pattern != Prefix+"/" && pattern != "/v1/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, r, a.log, errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed,
			"Method %s not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", ")))
		return
	}
	writeError(w, r, a.log, notFound(r))
}

// ServeHTTP serves the API, turning a panic in a handler into a 500.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			writeError(w, r, a.log, fmt.Errorf("panic: %v", v))
		}
	}()
	a.mux.ServeHTTP(w, r)
}

// leaf strips the .json suffix of the last path segment; ok is false without it.
// owned fetches the resource whose sid (of kind prefix) is the path value
// param, and answers 404 unless it belongs to the account in the path: the
// one lookup behind applications, numbers and keys.
func owned[T any](a *API, r *http.Request, p principal, param, prefix string,
	fetch func(context.Context, string) (T, error), account func(T) string) (T, error) {
	var zero T
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return zero, err
	}
	id, ok := leaf(r, param)
	if !ok || !sid.Valid(prefix, id) {
		return zero, notFound(r)
	}
	v, err := fetch(r.Context(), id)
	if err != nil {
		return zero, err
	}
	if account(v) != acct.Sid {
		return zero, notFound(r)
	}
	return v, nil
}

func leaf(r *http.Request, name string) (string, bool) {
	v := r.PathValue(name)
	s, ok := strings.CutSuffix(v, ".json")
	return s, ok
}

// writeDenial answers an admission denial: 429 with the concurrency headers,
// or 503 when admission is down and fails closed; Retry-After either way.
func (a *API) writeDenial(w http.ResponseWriter, r *http.Request, p principal, d *admission.Denial) {
	w.Header().Set("Retry-After", strconv.Itoa(admission.RetryAfterSeconds(d)))
	if d.Unavailable {
		writeError(w, r, a.log, errorf(http.StatusServiceUnavailable, CodeServiceUnavailable,
			"Admission is unavailable and configured to fail closed; retry shortly"))
		return
	}
	w.Header().Set("Parley-Concurrent-Requests", strconv.FormatInt(d.Current, 10))
	w.Header().Set("Parley-Concurrency-Limit", strconv.FormatInt(d.Limit, 10))
	writeError(w, r, a.log, errorf(http.StatusTooManyRequests, CodeTooManyConcurrent,
		"Too many concurrent %s for account %s: %d of %d", d.Resource, p.Account.Sid, d.Current, d.Limit))
}
