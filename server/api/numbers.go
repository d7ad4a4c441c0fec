package api

import (
	"net/http"
	"net/url"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/store"
)

// IncomingNumberResource is an incoming number as the API shows it.
// voice_application_sid and sms_application_sid repeat application_sid under
// the well-known API's names: one application takes both calls and messages.
type IncomingNumberResource struct {
	Sid                 string `json:"sid"`
	AccountSid          string `json:"account_sid"`
	PhoneNumber         string `json:"phone_number"`
	FriendlyName        string `json:"friendly_name"`
	ApplicationSid      string `json:"application_sid"`
	VoiceApplicationSid string `json:"voice_application_sid"`
	SmsApplicationSid   string `json:"sms_application_sid"`
	DateCreated         string `json:"date_created"`
	DateUpdated         string `json:"date_updated"`
	URI                 string `json:"uri"`
}

func newIncomingNumberResource(n store.IncomingNumber) IncomingNumberResource {
	return IncomingNumberResource{Sid: n.Sid, AccountSid: n.AccountSid, PhoneNumber: n.PhoneNumber, FriendlyName: n.FriendlyName,
		ApplicationSid: n.ApplicationSid, VoiceApplicationSid: n.ApplicationSid, SmsApplicationSid: n.ApplicationSid,
		DateCreated: rfc2822(n.DateCreated), DateUpdated: rfc2822(n.DateUpdated),
		URI: Prefix + "/Accounts/" + n.AccountSid + "/IncomingNumbers/" + n.Sid + ".json"}
}

func (a *API) routeNumbers() {
	base := Prefix + "/Accounts/{account}/IncomingNumbers"
	a.handle("GET "+base+".json", a.listNumbers)
	a.handle("POST "+base+".json", a.createNumber)
	a.handle("GET "+base+"/{number}", a.fetchNumber)
	a.handle("POST "+base+"/{number}", a.updateNumber)
	a.handle("DELETE "+base+"/{number}", a.deleteNumber)
}

// numberParams applies FriendlyName and ApplicationSid (or its alias
// VoiceApplicationSid) to n; the application must belong to the number's account.
func (a *API) numberParams(r *http.Request, v url.Values, n *store.IncomingNumber) error {
	if name, ok := param(v, "FriendlyName"); ok {
		if err := CheckFriendlyName(name); err != nil {
			return err
		}
		n.FriendlyName = name
	}
	app, okA := param(v, "ApplicationSid")
	voice, okV := param(v, "VoiceApplicationSid")
	if okA && okV && app != voice {
		return badParam("ApplicationSid and VoiceApplicationSid name the same setting and differ")
	}
	if okV {
		app, okA = voice, true
	}
	if !okA {
		return nil
	}
	if app != "" {
		if !sid.Valid(sid.Application, app) {
			return badParam("ApplicationSid %q is not an application sid", app)
		}
		got, err := a.store.Application(r.Context(), app)
		if err != nil || got.AccountSid != n.AccountSid {
			return badParam("ApplicationSid %s is not an application of account %s", app, n.AccountSid)
		}
	}
	n.ApplicationSid = app
	return nil
}

func (a *API) numberOf(r *http.Request, p principal) (store.IncomingNumber, error) {
	return owned(a, r, p, "number", sid.Number, a.store.IncomingNumber, func(n store.IncomingNumber) string { return n.AccountSid })
}

func (a *API) listNumbers(r *http.Request, p principal) (int, any, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	return pagedList(r, "incoming_numbers", func(pg store.Page) ([]store.IncomingNumber, bool, error) {
		return a.store.ListIncomingNumbers(r.Context(), acct.Sid, r.URL.Query().Get("PhoneNumber"), pg)
	}, newIncomingNumberResource)
}

func (a *API) createNumber(r *http.Request, p principal) (int, any, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := onlyParams(v, "PhoneNumber", "FriendlyName", "ApplicationSid", "VoiceApplicationSid"); err != nil {
		return 0, nil, err
	}
	num, ok := param(v, "PhoneNumber")
	if !ok || num == "" {
		return 0, nil, badParam("PhoneNumber is required")
	}
	n := store.IncomingNumber{AccountSid: acct.Sid, PhoneNumber: num}
	if err := a.numberParams(r, v, &n); err != nil {
		return 0, nil, err
	}
	n, err = a.store.CreateIncomingNumber(r.Context(), n)
	if err != nil {
		return 0, nil, storeError(err)
	}
	return http.StatusCreated, newIncomingNumberResource(n), nil
}

func (a *API) fetchNumber(r *http.Request, p principal) (int, any, error) {
	n, err := a.numberOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, newIncomingNumberResource(n), nil
}

func (a *API) updateNumber(r *http.Request, p principal) (int, any, error) {
	n, err := a.numberOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := onlyParams(v, "FriendlyName", "ApplicationSid", "VoiceApplicationSid"); err != nil {
		return 0, nil, err
	}
	if err := a.numberParams(r, v, &n); err != nil {
		return 0, nil, err
	}
	n, err = a.store.UpdateIncomingNumber(r.Context(), n)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, newIncomingNumberResource(n), nil
}

func (a *API) deleteNumber(r *http.Request, p principal) (int, any, error) {
	n, err := a.numberOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	if err := a.store.DeleteIncomingNumber(r.Context(), n.Sid); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
