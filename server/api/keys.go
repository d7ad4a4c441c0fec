package api

import (
	"net/http"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/store"
)

// KeyResource is an API key as the API shows it. Secret is only set in the
// answer to the request that created the key.
type KeyResource struct {
	Sid          string `json:"sid"`
	AccountSid   string `json:"account_sid"`
	FriendlyName string `json:"friendly_name"`
	DateCreated  string `json:"date_created"`
	DateUpdated  string `json:"date_updated"`
	Secret       string `json:"secret,omitempty"`
	URI          string `json:"uri"`
}

// NewKeyResource renders a key, with its secret when withSecret.
func NewKeyResource(k store.APIKey, withSecret bool) KeyResource {
	out := KeyResource{
		Sid:          k.Sid,
		AccountSid:   k.AccountSid,
		FriendlyName: k.FriendlyName,
		DateCreated:  rfc2822(k.DateCreated),
		DateUpdated:  rfc2822(k.DateUpdated),
		URI:          Prefix + "/Accounts/" + k.AccountSid + "/Keys/" + k.Sid + ".json",
	}
	if withSecret {
		out.Secret = k.Secret
	}
	return out
}

// keyOf resolves the {account}/{key} path of a key request.
func (a *API) keyOf(r *http.Request, p principal) (store.APIKey, error) {
	if err := requireAccountCredentials(p); err != nil {
		return store.APIKey{}, err
	}
	k, err := owned(a, r, p, "key", sid.Key, a.store.Key, func(k store.APIKey) string { return k.AccountSid })
	if err == nil && k.Revoked() {
		return store.APIKey{}, notFound(r)
	}
	return k, err
}

func (a *API) listKeys(r *http.Request, p principal) (int, any, error) {
	if err := requireAccountCredentials(p); err != nil {
		return 0, nil, err
	}
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	return pagedList(r, "keys", func(pg store.Page) ([]store.APIKey, bool, error) {
		return a.store.ListKeys(r.Context(), acct.Sid, pg)
	}, func(k store.APIKey) KeyResource { return NewKeyResource(k, false) })
}

func (a *API) createKey(r *http.Request, p principal) (int, any, error) {
	if err := requireAccountCredentials(p); err != nil {
		return 0, nil, err
	}
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	name, _, err := friendlyNameOnly(r)
	if err != nil {
		return 0, nil, err
	}
	k, err := a.store.CreateKey(r.Context(), acct.Sid, name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, NewKeyResource(k, true), nil
}

func (a *API) fetchKey(r *http.Request, p principal) (int, any, error) {
	k, err := a.keyOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NewKeyResource(k, false), nil
}

func (a *API) updateKey(r *http.Request, p principal) (int, any, error) {
	k, err := a.keyOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	name, ok, err := friendlyNameOnly(r)
	if err != nil {
		return 0, nil, err
	}
	if !ok {
		return http.StatusOK, NewKeyResource(k, false), nil
	}
	k, err = a.store.RenameKey(r.Context(), k.Sid, name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NewKeyResource(k, false), nil
}

// deleteKey revokes the key: REST and tokens signed with it stop working.
func (a *API) deleteKey(r *http.Request, p principal) (int, any, error) {
	k, err := a.keyOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	if err := a.store.RevokeKey(r.Context(), k.Sid); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
