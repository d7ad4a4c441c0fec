package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/internal/sid"
	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
	"github.com/parleyhq/parley/store"
	"github.com/parleyhq/parley/usage"
)

// Usage is what the REST API needs from the usage-trigger subsystem
// (*usage.Client implements it). Errors: usage.ErrNotFound,
// *usage.InvalidError (the message is for the caller), usage.ErrUnavailable.
type Usage interface {
	Records(ctx context.Context, q usage.RecordsQuery) ([]usage.Record, error)
	CreateTrigger(ctx context.Context, t usage.Trigger) (usage.Trigger, error)
	ListTriggers(ctx context.Context, accountSid string, f usage.TriggerFilter) ([]usage.Trigger, error)
	Trigger(ctx context.Context, accountSid, sid string) (usage.Trigger, error)
	UpdateTrigger(ctx context.Context, accountSid, sid string, u usage.TriggerUpdate) (usage.Trigger, error)
	DeleteTrigger(ctx context.Context, accountSid, sid string) error
}

// UsageRecordResource is a usage record as the API shows it (count and
// usage are strings, as in the well-known API).
type UsageRecordResource struct {
	AccountSid      string            `json:"account_sid"`
	APIVersion      string            `json:"api_version"`
	AsOf            string            `json:"as_of"`
	Category        string            `json:"category"`
	Count           string            `json:"count"`
	CountUnit       string            `json:"count_unit"`
	Description     string            `json:"description"`
	StartDate       string            `json:"start_date"`
	EndDate         string            `json:"end_date"`
	Price           string            `json:"price"`
	PriceUnit       string            `json:"price_unit"`
	Usage           string            `json:"usage"`
	UsageUnit       string            `json:"usage_unit"`
	URI             string            `json:"uri"`
	SubresourceURIs map[string]string `json:"subresource_uris"`
}

// UsageTriggerResource is a usage trigger as the API shows it. action,
// action_resource and action_limit are Parley's: what the trigger does
// besides calling back (suspend-account, limit-admission).
type UsageTriggerResource struct {
	Sid            string  `json:"sid"`
	AccountSid     string  `json:"account_sid"`
	APIVersion     string  `json:"api_version"`
	FriendlyName   string  `json:"friendly_name"`
	UsageCategory  string  `json:"usage_category"`
	TriggerBy      string  `json:"trigger_by"`
	TriggerValue   string  `json:"trigger_value"`
	CurrentValue   string  `json:"current_value"`
	Recurring      string  `json:"recurring"`
	CallbackURL    string  `json:"callback_url"`
	CallbackMethod string  `json:"callback_method"`
	Action         string  `json:"action"`
	ActionResource string  `json:"action_resource"`
	ActionLimit    *int64  `json:"action_limit"`
	DateCreated    string  `json:"date_created"`
	DateUpdated    string  `json:"date_updated"`
	DateFired      *string `json:"date_fired"`
	UsageRecordURI string  `json:"usage_record_uri"`
	URI            string  `json:"uri"`
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// NewUsageTriggerResource renders a trigger.
func NewUsageTriggerResource(t usage.Trigger) UsageTriggerResource {
	res := UsageTriggerResource{
		Sid: t.Sid, AccountSid: t.AccountSid, APIVersion: "2010-04-01", FriendlyName: t.FriendlyName,
		UsageCategory: t.UsageCategory, TriggerBy: t.TriggerBy, TriggerValue: t.TriggerValue, CurrentValue: fmtNum(t.CurrentValue),
		Recurring: t.Recurring, CallbackURL: t.CallbackURL, CallbackMethod: t.CallbackMethod,
		Action: t.Action, ActionResource: t.ActionResource,
		DateCreated: rfc2822(t.DateCreated), DateUpdated: rfc2822(t.DateUpdated),
		UsageRecordURI: Prefix + "/Accounts/" + t.AccountSid + "/Usage/Records.json?Category=" + url.QueryEscape(t.UsageCategory),
		URI:            Prefix + "/Accounts/" + t.AccountSid + "/Usage/Triggers/" + t.Sid + ".json",
	}
	if t.Action != "" {
		l := t.ActionLimit
		res.ActionLimit = &l
	}
	if !t.DateFired.IsZero() {
		s := rfc2822(t.DateFired)
		res.DateFired = &s
	}
	return res
}

func (a *API) usageRoutes() {
	a.handle("GET "+Prefix+"/Accounts/{account}/Usage/Records.json", a.listUsageRecords)
	a.handle("GET "+Prefix+"/Accounts/{account}/Usage/Records/{sub}", a.listUsageRecords)
	a.handle("GET "+Prefix+"/Accounts/{account}/Usage/Triggers.json", a.listUsageTriggers)
	a.handle("POST "+Prefix+"/Accounts/{account}/Usage/Triggers.json", a.createUsageTrigger)
	a.handle("GET "+Prefix+"/Accounts/{account}/Usage/Triggers/{trigger}", a.fetchUsageTrigger)
	a.handle("POST "+Prefix+"/Accounts/{account}/Usage/Triggers/{trigger}", a.updateUsageTrigger)
	a.handle("DELETE "+Prefix+"/Accounts/{account}/Usage/Triggers/{trigger}", a.deleteUsageTrigger)
}

// usageErr maps the usage subsystem's errors to API errors.
func usageErr(r *http.Request, err error) error {
	var inv *usage.InvalidError
	switch {
	case errors.As(err, &inv):
		return badParam("%s", inv.Msg)
	case errors.Is(err, usage.ErrNotFound):
		return notFound(r)
	case errors.Is(err, usage.ErrUnavailable):
		return errorf(http.StatusServiceUnavailable, CodeServiceUnavailable, "Usage service unavailable, try again shortly: %v", err)
	}
	return err
}

func (a *API) usageAccount(r *http.Request, p principal) (store.Account, error) {
	if a.usage == nil {
		return store.Account{}, errorf(http.StatusServiceUnavailable, CodeServiceUnavailable, "Usage records and triggers are not enabled on this server (no usage plugin configured)")
	}
	return a.account(r.Context(), r, p, r.PathValue("account"))
}

var usageSubresources = []string{"Daily", "Monthly", "Yearly", "AllTime", "Today", "Yesterday", "ThisMonth", "LastMonth"}

func parseUsageDate(name, s string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, badParam("%s %q must be a date YYYY-MM-DD", name, s)
	}
	return t, nil
}

func (a *API) listUsageRecords(r *http.Request, p principal) (int, any, error) {
	acct, err := a.usageAccount(r, p)
	if err != nil {
		return 0, nil, err
	}
	sub := ""
	if r.PathValue("sub") != "" {
		s, ok := leaf(r, "sub")
		if !ok || !contains(usageSubresources, s) {
			return 0, nil, notFound(r)
		}
		sub = s
	}
	q := r.URL.Query()
	if err := onlyParams(q, "Category", "StartDate", "EndDate", "IncludeSubaccounts", "Page", "PageSize", "PageToken"); err != nil {
		return 0, nil, err
	}
	page, err := pageParams(q)
	if err != nil {
		return 0, nil, err
	}
	query := usage.RecordsQuery{AccountSid: acct.Sid, Category: q.Get("Category")}
	if c := query.Category; c != "" && !usageCategory(c) {
		return 0, nil, badParam("Category %q is not one of %s", c, strings.Join(usageCategories(), ", "))
	}
	if s := q.Get("StartDate"); s != "" {
		if query.Start, err = parseUsageDate("StartDate", s); err != nil {
			return 0, nil, err
		}
	}
	if s := q.Get("EndDate"); s != "" {
		end, err := parseUsageDate("EndDate", s)
		if err != nil {
			return 0, nil, err
		}
		query.End = end.AddDate(0, 0, 1) // EndDate is inclusive
	}
	if !query.Start.IsZero() && !query.End.IsZero() && query.End.Before(query.Start) {
		return 0, nil, badParam("EndDate is before StartDate")
	}
	now := a.usageNow().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	switch sub {
	case "Daily":
		query.Granularity = "daily"
	case "Monthly":
		query.Granularity = "monthly"
	case "Yearly":
		query.Granularity = "yearly"
	case "AllTime":
		query.Granularity, query.Start, query.End = "alltime", time.Time{}, time.Time{}
	case "Today":
		query.Start, query.End = today, today.AddDate(0, 0, 1)
	case "Yesterday":
		query.Start, query.End = today.AddDate(0, 0, -1), today
	case "ThisMonth":
		query.Start, query.End = month, month.AddDate(0, 1, 0)
	case "LastMonth":
		query.Start, query.End = month.AddDate(0, -1, 0), month
	}
	recs, err := a.usage.Records(r.Context(), query)
	if err != nil {
		return 0, nil, usageErr(r, err)
	}
	from := acct.DateCreated.UTC()
	from = time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	base := Prefix + "/Accounts/" + acct.Sid + "/Usage/Records"
	out := make([]UsageRecordResource, 0, len(recs))
	for _, rec := range recs {
		start, end := rec.Start, rec.End
		if start.IsZero() || start.Unix() == 0 {
			start = from
		}
		if end.IsZero() {
			end = today.AddDate(0, 0, 1)
		}
		uq := url.Values{"Category": {rec.Category}, "StartDate": {start.Format(time.DateOnly)}, "EndDate": {end.AddDate(0, 0, -1).Format(time.DateOnly)}}
		subs := map[string]string{}
		for _, s := range usageSubresources {
			subs[strings.ToLower(s[:1])+s[1:]] = base + "/" + s + ".json?Category=" + url.QueryEscape(rec.Category)
		}
		out = append(out, UsageRecordResource{
			AccountSid: acct.Sid, APIVersion: "2010-04-01", AsOf: now.Format(time.RFC3339), Category: rec.Category,
			Count: strconv.FormatInt(rec.Count, 10), CountUnit: rec.CountUnit, Description: rec.Category,
			StartDate: start.Format(time.DateOnly), EndDate: end.AddDate(0, 0, -1).Format(time.DateOnly),
			Price: "0", PriceUnit: "usd", Usage: fmtNum(rec.Usage), UsageUnit: rec.UsageUnit,
			URI: base + ".json?" + uq.Encode(), SubresourceURIs: subs,
		})
	}
	lo := min(page.Page*page.Size, len(out))
	hi := min(lo+page.Size, len(out))
	return http.StatusOK, listBody(r, "usage_records", out[lo:hi], page, hi < len(out)), nil
}

func (a *API) usageNow() time.Time { return time.Now() }

func usageCategories() []string {
	return []string{usage.Calls, usage.CallsInbound, usage.CallsOutbound, usage.CallsClient, usage.CallsSIP, usage.CallsNumber,
		usage.SIPRegistrations, usage.APIRequests, usage.Messages, usage.MessagesInbound, usage.MessagesOutbound,
		usage.Recordings, usage.TwiMLFetches}
}

func usageCategory(c string) bool { return contains(usageCategories(), c) }

func (a *API) listUsageTriggers(r *http.Request, p principal) (int, any, error) {
	acct, err := a.usageAccount(r, p)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	if err := onlyParams(q, "Recurring", "TriggerBy", "UsageCategory", "Page", "PageSize", "PageToken"); err != nil {
		return 0, nil, err
	}
	page, err := pageParams(q)
	if err != nil {
		return 0, nil, err
	}
	ts, err := a.usage.ListTriggers(r.Context(), acct.Sid, usage.TriggerFilter{UsageCategory: q.Get("UsageCategory"), Recurring: q.Get("Recurring"), TriggerBy: q.Get("TriggerBy")})
	if err != nil {
		return 0, nil, usageErr(r, err)
	}
	out := make([]UsageTriggerResource, 0, len(ts))
	for _, t := range ts {
		out = append(out, NewUsageTriggerResource(t))
	}
	lo := min(page.Page*page.Size, len(out))
	hi := min(lo+page.Size, len(out))
	return http.StatusOK, listBody(r, "usage_triggers", out[lo:hi], page, hi < len(out)), nil
}

func (a *API) createUsageTrigger(r *http.Request, p principal) (int, any, error) {
	acct, err := a.usageAccount(r, p)
	if err != nil {
		return 0, nil, err
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := onlyParams(v, "UsageCategory", "TriggerValue", "TriggerBy", "Recurring", "CallbackUrl", "CallbackMethod", "FriendlyName",
		"Action", "ActionResource", "ActionLimit"); err != nil {
		return 0, nil, err
	}
	t := usage.Trigger{AccountSid: acct.Sid}
	t.UsageCategory, _ = param(v, "UsageCategory")
	t.TriggerValue, _ = param(v, "TriggerValue")
	t.TriggerBy, _ = param(v, "TriggerBy")
	t.Recurring, _ = param(v, "Recurring")
	t.CallbackURL, _ = param(v, "CallbackUrl")
	t.FriendlyName, _ = param(v, "FriendlyName")
	t.Action, _ = param(v, "Action")
	t.ActionResource, _ = param(v, "ActionResource")
	switch {
	case t.UsageCategory == "":
		return 0, nil, badParam("UsageCategory is required")
	case !usageCategory(t.UsageCategory):
		return 0, nil, badParam("UsageCategory %q is not one of %s", t.UsageCategory, strings.Join(usageCategories(), ", "))
	case t.TriggerValue == "":
		return 0, nil, badParam("TriggerValue is required (a number; a leading + means relative to the current value)")
	case t.CallbackURL == "" && t.Action == "":
		return 0, nil, badParam("CallbackUrl is required")
	}
	if err := checkURL("CallbackUrl", t.CallbackURL); err != nil {
		return 0, nil, err
	}
	if err := CheckFriendlyName(t.FriendlyName); err != nil {
		return 0, nil, err
	}
	if m, ok := param(v, "CallbackMethod"); ok {
		if t.CallbackMethod, err = checkMethod("CallbackMethod", m); err != nil {
			return 0, nil, err
		}
	}
	switch t.Action {
	case "", usagev1.ActionSuspendAccount:
	case usagev1.ActionLimitAdmission:
		if !admission.Resource(t.ActionResource).Valid() {
			var names []string
			for _, r := range admission.Resources() {
				names = append(names, string(r))
			}
			return 0, nil, badParam("ActionResource %q must be one of %s", t.ActionResource, strings.Join(names, ", "))
		}
		if _, ok := param(v, "ActionLimit"); !ok {
			return 0, nil, badParam("ActionLimit is required with Action %s", t.Action)
		}
	default:
		return 0, nil, badParam("Action %q must be %s or %s", t.Action, usagev1.ActionSuspendAccount, usagev1.ActionLimitAdmission)
	}
	if s, ok := param(v, "ActionLimit"); ok {
		if t.ActionLimit, err = strconv.ParseInt(s, 10, 64); err != nil || t.ActionLimit < 0 {
			return 0, nil, badParam("ActionLimit %q must be a whole number from 0", s)
		}
	}
	t, err = a.usage.CreateTrigger(r.Context(), t)
	if err != nil {
		return 0, nil, usageErr(r, err)
	}
	return http.StatusCreated, NewUsageTriggerResource(t), nil
}

func (a *API) triggerSid(r *http.Request) (string, error) {
	s, ok := leaf(r, "trigger")
	if !ok || !sid.Valid(sid.UsageTrigger, s) {
		return "", notFound(r)
	}
	return s, nil
}

func (a *API) fetchUsageTrigger(r *http.Request, p principal) (int, any, error) {
	acct, err := a.usageAccount(r, p)
	if err != nil {
		return 0, nil, err
	}
	ts, err := a.triggerSid(r)
	if err != nil {
		return 0, nil, err
	}
	t, err := a.usage.Trigger(r.Context(), acct.Sid, ts)
	if err != nil {
		return 0, nil, usageErr(r, err)
	}
	return http.StatusOK, NewUsageTriggerResource(t), nil
}

func (a *API) updateUsageTrigger(r *http.Request, p principal) (int, any, error) {
	acct, err := a.usageAccount(r, p)
	if err != nil {
		return 0, nil, err
	}
	ts, err := a.triggerSid(r)
	if err != nil {
		return 0, nil, err
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := onlyParams(v, "CallbackUrl", "CallbackMethod", "FriendlyName"); err != nil {
		return 0, nil, err
	}
	var u usage.TriggerUpdate
	if s, ok := param(v, "CallbackUrl"); ok {
		if err := checkURL("CallbackUrl", s); err != nil {
			return 0, nil, err
		}
		u.CallbackURL = &s
	}
	if s, ok := param(v, "CallbackMethod"); ok {
		m, err := checkMethod("CallbackMethod", s)
		if err != nil {
			return 0, nil, err
		}
		if m == "" {
			m = "POST"
		}
		u.CallbackMethod = &m
	}
	if s, ok := param(v, "FriendlyName"); ok {
		if err := CheckFriendlyName(s); err != nil {
			return 0, nil, err
		}
		u.FriendlyName = &s
	}
	t, err := a.usage.UpdateTrigger(r.Context(), acct.Sid, ts, u)
	if err != nil {
		return 0, nil, usageErr(r, err)
	}
	return http.StatusOK, NewUsageTriggerResource(t), nil
}

func (a *API) deleteUsageTrigger(r *http.Request, p principal) (int, any, error) {
	acct, err := a.usageAccount(r, p)
	if err != nil {
		return 0, nil, err
	}
	ts, err := a.triggerSid(r)
	if err != nil {
		return 0, nil, err
	}
	if err := a.usage.DeleteTrigger(r.Context(), acct.Sid, ts); err != nil {
		return 0, nil, usageErr(r, err)
	}
	return http.StatusNoContent, nil, nil
}
