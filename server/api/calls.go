package api

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/store"
)

// OutboundCall is a call the REST API asks to place.
type OutboundCall struct {
	AccountSid, To, From                     string
	URL, Method, FallbackURL, FallbackMethod string
	ApplicationSid                           string
	StatusCallback, StatusCallbackMethod     string
	StatusCallbackEvents                     []string
	Timeout                                  time.Duration
}

// ErrBadTarget is wrapped by Originator errors that are the caller's to fix (400).
var ErrBadTarget = errors.New("cannot place this call")

// Originator places calls (POST …/Calls.json). It returns the new call as
// queued; an *admission.Denial means the account is at its limit.
type Originator interface {
	Originate(ctx context.Context, req OutboundCall) (store.CallRecord, error)
}

// CallControl changes running calls (the call engine implements it).
type CallControl interface {
	Redirect(callSid, rawURL, method string) error
	Hangup(callSid string) error
}

// CallResource is a call as the API shows it.
type CallResource struct {
	Sid             string            `json:"sid"`
	AccountSid      string            `json:"account_sid"`
	ParentCallSid   *string           `json:"parent_call_sid"`
	From            string            `json:"from"`
	To              string            `json:"to"`
	CallerName      string            `json:"caller_name"`
	Direction       string            `json:"direction"`
	Status          string            `json:"status"`
	StartTime       *string           `json:"start_time"`
	EndTime         *string           `json:"end_time"`
	Duration        *string           `json:"duration"` // whole seconds, once ended
	APIVersion      string            `json:"api_version"`
	DateCreated     string            `json:"date_created"`
	DateUpdated     string            `json:"date_updated"`
	URI             string            `json:"uri"`
	SubresourceURIs map[string]string `json:"subresource_uris"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// NewCallResource renders a call.
func NewCallResource(c store.CallRecord) CallResource {
	base := Prefix + "/Accounts/" + c.AccountSid + "/Calls/" + c.Sid
	out := CallResource{
		Sid: c.Sid, AccountSid: c.AccountSid, ParentCallSid: optional(c.ParentCallSid), From: c.From, To: c.To,
		CallerName: c.CallerName, Direction: c.Direction, Status: c.Status, APIVersion: "2010-04-01",
		DateCreated: rfc2822(c.DateCreated), DateUpdated: rfc2822(c.DateUpdated), URI: base + ".json",
		SubresourceURIs: map[string]string{"recordings": base + "/Recordings.json"},
	}
	if !c.Started.IsZero() {
		out.StartTime = optional(rfc2822(c.Started))
	}
	if !c.Ended.IsZero() {
		out.EndTime = optional(rfc2822(c.Ended))
		out.Duration = optional(strconv.Itoa(int((c.Duration + 999_999_999) / 1_000_000_000)))
	}
	return out
}

// RecordingResource is a recording as the API shows it.
type RecordingResource struct {
	Sid         string `json:"sid"`
	AccountSid  string `json:"account_sid"`
	CallSid     string `json:"call_sid"`
	Duration    string `json:"duration"` // whole seconds
	Channels    int    `json:"channels"`
	MediaURL    string `json:"media_url"`
	DateCreated string `json:"date_created"`
	URI         string `json:"uri"`
}

// NewRecordingResource renders a recording.
func NewRecordingResource(r store.RecordingRecord) RecordingResource {
	base := Prefix + "/Accounts/" + r.AccountSid + "/Recordings/" + r.Sid
	return RecordingResource{Sid: r.Sid, AccountSid: r.AccountSid, CallSid: r.CallSid,
		Duration: strconv.Itoa(int((r.Duration + 999_999_999) / 1_000_000_000)), Channels: 1,
		MediaURL: base + ".wav", DateCreated: rfc2822(r.DateCreated), URI: base + ".json"}
}

func (a *API) callOf(r *http.Request, p principal) (store.CallRecord, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return store.CallRecord{}, err
	}
	callSid := strings.TrimSuffix(r.PathValue("call"), ".json")
	if !sid.Valid(sid.Call, callSid) {
		return store.CallRecord{}, notFound(r)
	}
	c, err := a.store.Call(r.Context(), callSid)
	if err != nil {
		return store.CallRecord{}, err
	}
	if c.AccountSid != acct.Sid {
		return store.CallRecord{}, notFound(r)
	}
	return c, nil
}

func (a *API) listCalls(r *http.Request, p principal) (int, any, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	f := store.CallFilter{Status: q.Get("Status"), To: q.Get("To"), From: q.Get("From"), ParentCallSid: q.Get("ParentCallSid")}
	return pagedList(r, "calls", func(pg store.Page) ([]store.CallRecord, bool, error) {
		return a.store.ListCalls(r.Context(), acct.Sid, f, pg)
	}, NewCallResource)
}

func (a *API) fetchCall(r *http.Request, p principal) (int, any, error) {
	if !strings.HasSuffix(r.PathValue("call"), ".json") {
		return 0, nil, notFound(r)
	}
	c, err := a.callOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NewCallResource(c), nil
}

// updateCall changes a live call: Status=completed|canceled hangs it up; Url
// (with Method) makes it fetch new instructions now.
func (a *API) updateCall(r *http.Request, p principal) (int, any, error) {
	if !strings.HasSuffix(r.PathValue("call"), ".json") {
		return 0, nil, notFound(r)
	}
	c, err := a.callOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := onlyParams(v, "Status", "Url", "Method"); err != nil {
		return 0, nil, err
	}
	status, hasStatus := param(v, "Status")
	u, hasURL := param(v, "Url")
	if hasStatus == hasURL {
		return 0, nil, badParam("give either Status (completed or canceled) or Url")
	}
	if a.calls == nil {
		return 0, nil, errorf(http.StatusServiceUnavailable, CodeServiceUnavailable, "Live call control is not available on this server")
	}
	if hasStatus {
		if status != "completed" && status != "canceled" {
			return 0, nil, badParam("Status %q: a call can be set to completed or canceled", status)
		}
		err = a.calls.Hangup(c.Sid)
	} else {
		if err := checkURL("Url", u); err != nil || u == "" {
			return 0, nil, badParam("Url %q is not an absolute http(s) URL", u)
		}
		m, _ := param(v, "Method")
		method, merr := checkMethod("Method", m)
		if merr != nil {
			return 0, nil, merr
		}
		err = a.calls.Redirect(c.Sid, u, method)
	}
	if errors.Is(err, calls.ErrNotLive) {
		return 0, nil, errorf(http.StatusConflict, CodeConflict, "Call %s is not in progress (status %s)", c.Sid, c.Status)
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NewCallResource(c), nil
}

func (a *API) listRecordings(r *http.Request, p principal) (int, any, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	callSid := r.URL.Query().Get("CallSid")
	if r.PathValue("call") != "" {
		cr, err := a.callOf(r, p)
		if err != nil {
			return 0, nil, err
		}
		callSid = cr.Sid
	}
	return pagedList(r, "recordings", func(pg store.Page) ([]store.RecordingRecord, bool, error) {
		return a.store.ListRecordings(r.Context(), acct.Sid, callSid, pg)
	}, NewRecordingResource)
}

func (a *API) recordingOf(ctx context.Context, r *http.Request, p principal, recSid string) (store.RecordingRecord, error) {
	acct, err := a.account(ctx, r, p, r.PathValue("account"))
	if err != nil {
		return store.RecordingRecord{}, err
	}
	if !sid.Valid(sid.Recording, recSid) {
		return store.RecordingRecord{}, notFound(r)
	}
	rec, err := a.store.Recording(ctx, recSid)
	if err != nil {
		return store.RecordingRecord{}, err
	}
	if rec.AccountSid != acct.Sid {
		return store.RecordingRecord{}, notFound(r)
	}
	return rec, nil
}

// fetchRecording serves the recording's JSON (…/RE….json) or its audio (…/RE….wav).
func (a *API) fetchRecording(w http.ResponseWriter, r *http.Request, p principal) error {
	leafName := r.PathValue("recording")
	if recSid, ok := strings.CutSuffix(leafName, ".wav"); ok {
		rec, err := a.recordingOf(r.Context(), r, p, recSid)
		if err != nil {
			return err
		}
		f, err := os.Open(rec.Path)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "audio/wav")
		http.ServeContent(w, r, recSid+".wav", st.ModTime(), f)
		return nil
	}
	recSid, ok := strings.CutSuffix(leafName, ".json")
	if !ok {
		return notFound(r)
	}
	rec, err := a.recordingOf(r.Context(), r, p, recSid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, NewRecordingResource(rec))
	return nil
}

var statusCallbackEvents = map[string]bool{"initiated": true, "ringing": true, "answered": true, "completed": true}

// createCall places an outbound call: To (client:<identity> or a sip: URI),
// From, and Url or ApplicationSid for the instructions once it answers.
func (a *API) createCall(r *http.Request, p principal) (int, any, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	if a.originator == nil {
		return 0, nil, errorf(http.StatusServiceUnavailable, CodeServiceUnavailable, "Placing calls is not available on this server")
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	events := v["StatusCallbackEvent"]
	delete(v, "StatusCallbackEvent") // the one parameter that may repeat
	if err := onlyParams(v, "To", "From", "Url", "Method", "ApplicationSid", "FallbackUrl", "FallbackMethod",
		"StatusCallback", "StatusCallbackMethod", "Timeout", "CallerId"); err != nil {
		return 0, nil, err
	}
	req := OutboundCall{AccountSid: acct.Sid, Timeout: 60 * time.Second}
	req.To, _ = param(v, "To")
	req.From, _ = param(v, "From")
	if cid, ok := param(v, "CallerId"); ok && req.From == "" {
		req.From = cid
	}
	if req.To == "" || req.From == "" {
		return 0, nil, badParam("To and From are required")
	}
	req.URL, _ = param(v, "Url")
	req.ApplicationSid, _ = param(v, "ApplicationSid")
	if (req.URL == "") == (req.ApplicationSid == "") {
		return 0, nil, badParam("give exactly one of Url and ApplicationSid")
	}
	for _, f := range []struct {
		name string
		dst  *string
		url  bool
	}{{"Url", &req.URL, true}, {"FallbackUrl", &req.FallbackURL, true}, {"StatusCallback", &req.StatusCallback, true},
		{"Method", &req.Method, false}, {"FallbackMethod", &req.FallbackMethod, false}, {"StatusCallbackMethod", &req.StatusCallbackMethod, false}} {
		val, _ := param(v, f.name)
		if f.url {
			if err := checkURL(f.name, val); err != nil {
				return 0, nil, err
			}
			*f.dst = val
			continue
		}
		m, err := checkMethod(f.name, val)
		if err != nil {
			return 0, nil, err
		}
		if m == "" {
			m = "POST"
		}
		*f.dst = m
	}
	for _, e := range events {
		for _, ev := range strings.Fields(e) {
			if !statusCallbackEvents[ev] {
				return 0, nil, badParam("StatusCallbackEvent %q: want initiated, ringing, answered or completed", ev)
			}
			req.StatusCallbackEvents = append(req.StatusCallbackEvents, ev)
		}
	}
	if t, ok := param(v, "Timeout"); ok {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 600 {
			return 0, nil, badParam("Timeout %q must be a whole number of seconds from 1 to 600", t)
		}
		req.Timeout = time.Duration(n) * time.Second
	}
	rec, err := a.originator.Originate(r.Context(), req)
	if errors.Is(err, ErrBadTarget) {
		return 0, nil, badParam("%v", err)
	}
	if err != nil {
		return 0, nil, err
	}
	rec.DateCreated, rec.DateUpdated = time.Now(), time.Now()
	return http.StatusCreated, NewCallResource(rec), nil
}
