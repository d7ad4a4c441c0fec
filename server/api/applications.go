package api

import (
	"net/http"
	"net/url"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/store"
)

// ApplicationResource is an application as the API shows it. sms_* are the
// well-known API's names for the messaging webhook; messaging_* say the same.
type ApplicationResource struct {
	Sid                  string `json:"sid"`
	AccountSid           string `json:"account_sid"`
	FriendlyName         string `json:"friendly_name"`
	APIVersion           string `json:"api_version"`
	VoiceURL             string `json:"voice_url"`
	VoiceMethod          string `json:"voice_method"`
	VoiceFallbackURL     string `json:"voice_fallback_url"`
	VoiceFallbackMethod  string `json:"voice_fallback_method"`
	StatusCallback       string `json:"status_callback"`
	StatusCallbackMethod string `json:"status_callback_method"`
	SmsURL               string `json:"sms_url"`
	SmsMethod            string `json:"sms_method"`
	MessagingURL         string `json:"messaging_url"`
	MessagingMethod      string `json:"messaging_method"`
	DateCreated          string `json:"date_created"`
	DateUpdated          string `json:"date_updated"`
	URI                  string `json:"uri"`
}

// NewApplicationResource renders an application.
func NewApplicationResource(a store.Application) ApplicationResource {
	return ApplicationResource{
		Sid:                  a.Sid,
		AccountSid:           a.AccountSid,
		FriendlyName:         a.FriendlyName,
		APIVersion:           "2010-04-01",
		VoiceURL:             a.VoiceURL,
		VoiceMethod:          a.VoiceMethod,
		VoiceFallbackURL:     a.VoiceFallbackURL,
		VoiceFallbackMethod:  a.VoiceFallbackMethod,
		StatusCallback:       a.StatusCallback,
		StatusCallbackMethod: a.StatusCallbackMethod,
		SmsURL:               a.MessagingURL,
		SmsMethod:            a.MessagingMethod,
		MessagingURL:         a.MessagingURL,
		MessagingMethod:      a.MessagingMethod,
		DateCreated:          rfc2822(a.DateCreated),
		DateUpdated:          rfc2822(a.DateUpdated),
		URI:                  Prefix + "/Accounts/" + a.AccountSid + "/Applications/" + a.Sid + ".json",
	}
}

type appField struct {
	param string
	kind  byte // 'n' name, 'u' URL, 'm' method
	field func(*store.Application) *string
}

var appFields = []appField{
	{"FriendlyName", 'n', func(a *store.Application) *string { return &a.FriendlyName }},
	{"VoiceUrl", 'u', func(a *store.Application) *string { return &a.VoiceURL }},
	{"VoiceMethod", 'm', func(a *store.Application) *string { return &a.VoiceMethod }},
	{"VoiceFallbackUrl", 'u', func(a *store.Application) *string { return &a.VoiceFallbackURL }},
	{"VoiceFallbackMethod", 'm', func(a *store.Application) *string { return &a.VoiceFallbackMethod }},
	{"StatusCallback", 'u', func(a *store.Application) *string { return &a.StatusCallback }},
	{"StatusCallbackMethod", 'm', func(a *store.Application) *string { return &a.StatusCallbackMethod }},
	{"SmsUrl", 'u', func(a *store.Application) *string { return &a.MessagingURL }},
	{"SmsMethod", 'm', func(a *store.Application) *string { return &a.MessagingMethod }},
	{"MessagingUrl", 'u', func(a *store.Application) *string { return &a.MessagingURL }},
	{"MessagingMethod", 'm', func(a *store.Application) *string { return &a.MessagingMethod }},
}

// ApplyApplicationParams validates v (parameters named as in the REST API) and
// writes the given fields into app. The CLI uses it too, so both validate alike.
func ApplyApplicationParams(v url.Values, app *store.Application) error {
	allowed := []string{"ApiVersion"}
	for _, f := range appFields {
		allowed = append(allowed, f.param)
	}
	if err := onlyParams(v, allowed...); err != nil {
		return err
	}
	if ver, ok := param(v, "ApiVersion"); ok && ver != "2010-04-01" {
		return badParam("ApiVersion %q: only 2010-04-01 is supported", ver)
	}
	for _, pair := range [][2]string{{"SmsUrl", "MessagingUrl"}, {"SmsMethod", "MessagingMethod"}} {
		a, okA := param(v, pair[0])
		b, okB := param(v, pair[1])
		if okA && okB && a != b {
			return badParam("%s and %s name the same setting and differ", pair[0], pair[1])
		}
	}
	for _, f := range appFields {
		val, ok := param(v, f.param)
		if !ok {
			continue
		}
		var err error
		switch f.kind {
		case 'n':
			err = CheckFriendlyName(val)
		case 'u':
			err = checkURL(f.param, val)
		case 'm':
			val, err = checkMethod(f.param, val)
		}
		if err != nil {
			return err
		}
		*f.field(app) = val
	}
	return nil
}

func (a *API) applicationOf(r *http.Request, p principal) (store.Application, error) {
	return owned(a, r, p, "app", sid.Application, a.store.Application, func(app store.Application) string { return app.AccountSid })
}

func (a *API) listApplications(r *http.Request, p principal) (int, any, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	return pagedList(r, "applications", func(pg store.Page) ([]store.Application, bool, error) {
		return a.store.ListApplications(r.Context(), acct.Sid, r.URL.Query().Get("FriendlyName"), pg)
	}, NewApplicationResource)
}

func (a *API) createApplication(r *http.Request, p principal) (int, any, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	app := store.Application{AccountSid: acct.Sid}
	if err := ApplyApplicationParams(v, &app); err != nil {
		return 0, nil, err
	}
	app, err = a.store.CreateApplication(r.Context(), app)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, NewApplicationResource(app), nil
}

func (a *API) fetchApplication(r *http.Request, p principal) (int, any, error) {
	app, err := a.applicationOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NewApplicationResource(app), nil
}

func (a *API) updateApplication(r *http.Request, p principal) (int, any, error) {
	app, err := a.applicationOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := ApplyApplicationParams(v, &app); err != nil {
		return 0, nil, err
	}
	app, err = a.store.UpdateApplication(r.Context(), app)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NewApplicationResource(app), nil
}

func (a *API) deleteApplication(r *http.Request, p principal) (int, any, error) {
	app, err := a.applicationOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	if err := a.store.DeleteApplication(r.Context(), app.Sid); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
