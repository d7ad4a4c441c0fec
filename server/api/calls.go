package api

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/server/store"
	"github.com/parleyhq/parley/signaling/calls"
)

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
	page, err := pageParams(q)
	if err != nil {
		return 0, nil, err
	}
	f := store.CallFilter{Status: q.Get("Status"), To: q.Get("To"), From: q.Get("From"), ParentCallSid: q.Get("ParentCallSid")}
	list, more, err := a.store.ListCalls(r.Context(), acct.Sid, f, page)
	if err != nil {
		return 0, nil, err
	}
	out := make([]CallResource, len(list))
	for i, c := range list {
		out[i] = NewCallResource(c)
	}
	return http.StatusOK, listBody(r, "calls", out, page, more), nil
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
	q := r.URL.Query()
	page, err := pageParams(q)
	if err != nil {
		return 0, nil, err
	}
	callSid := q.Get("CallSid")
	if c := r.PathValue("call"); c != "" {
		cr, err := a.callOf(r, p)
		if err != nil {
			return 0, nil, err
		}
		callSid = cr.Sid
	}
	list, more, err := a.store.ListRecordings(r.Context(), acct.Sid, callSid, page)
	if err != nil {
		return 0, nil, err
	}
	out := make([]RecordingResource, len(list))
	for i, rec := range list {
		out[i] = NewRecordingResource(rec)
	}
	return http.StatusOK, listBody(r, "recordings", out, page, more), nil
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
