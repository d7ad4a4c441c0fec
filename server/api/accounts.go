package api

import (
	"errors"
	"net/http"

	"github.com/parleyhq/parley/store"
)

// AccountResource is an account as the API shows it.
type AccountResource struct {
	Sid             string            `json:"sid"`
	FriendlyName    string            `json:"friendly_name"`
	Status          string            `json:"status"`
	AuthToken       string            `json:"auth_token"`
	OwnerAccountSid string            `json:"owner_account_sid"`
	Type            string            `json:"type"`
	DateCreated     string            `json:"date_created"`
	DateUpdated     string            `json:"date_updated"`
	URI             string            `json:"uri"`
	SubresourceURIs map[string]string `json:"subresource_uris"`
}

// NewAccountResource renders an account.
func NewAccountResource(a store.Account) AccountResource {
	base := Prefix + "/Accounts/" + a.Sid
	owner := a.OwnerAccountSid
	if owner == "" {
		owner = a.Sid // a top-level account owns itself, as in the well-known API
	}
	return AccountResource{
		Sid:             a.Sid,
		FriendlyName:    a.FriendlyName,
		Status:          a.Status,
		AuthToken:       a.AuthToken,
		OwnerAccountSid: owner,
		Type:            "Full",
		DateCreated:     rfc2822(a.DateCreated),
		DateUpdated:     rfc2822(a.DateUpdated),
		URI:             base + ".json",
		SubresourceURIs: map[string]string{
			"keys":             base + "/Keys.json",
			"applications":     base + "/Applications.json",
			"incoming_numbers": base + "/IncomingNumbers.json",
		},
	}
}

// ValidStatus reports whether s is an account status.
func ValidStatus(s string) bool {
	return s == store.StatusActive || s == store.StatusSuspended || s == store.StatusClosed
}

func (a *API) listAccounts(r *http.Request, p principal) (int, any, error) {
	if err := requireAccountCredentials(p); err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	f := store.AccountFilter{Family: p.Account.Sid, FriendlyName: q.Get("FriendlyName"), Status: q.Get("Status")}
	if f.Status != "" && !ValidStatus(f.Status) {
		return 0, nil, badParam("Status %q must be active, suspended or closed", f.Status)
	}
	return pagedList(r, "accounts", func(pg store.Page) ([]store.Account, bool, error) {
		return a.store.ListAccounts(r.Context(), f, pg)
	}, NewAccountResource)
}

// createAccount creates a subaccount of the authenticated account.
func (a *API) createAccount(r *http.Request, p principal) (int, any, error) {
	if err := requireAccountCredentials(p); err != nil {
		return 0, nil, err
	}
	if p.Account.OwnerAccountSid != "" {
		return 0, nil, errorf(http.StatusForbidden, CodeForbidden, "Subaccounts cannot create subaccounts")
	}
	name, _, err := friendlyNameOnly(r)
	if err != nil {
		return 0, nil, err
	}
	acct, err := a.store.CreateAccount(r.Context(), store.NewAccount{
		FriendlyName:    name,
		OwnerAccountSid: p.Account.Sid,
		OwnerPartnerSid: p.Account.OwnerPartnerSid,
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, NewAccountResource(acct), nil
}

func (a *API) fetchAccount(r *http.Request, p principal) (int, any, error) {
	if err := requireAccountCredentials(p); err != nil {
		return 0, nil, err
	}
	s, ok := leaf(r, "account")
	if !ok {
		return 0, nil, notFound(r)
	}
	acct, err := a.account(r.Context(), r, p, s)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NewAccountResource(acct), nil
}

func (a *API) updateAccount(r *http.Request, p principal) (int, any, error) {
	if err := requireAccountCredentials(p); err != nil {
		return 0, nil, err
	}
	s, ok := leaf(r, "account")
	if !ok {
		return 0, nil, notFound(r)
	}
	acct, err := a.account(r.Context(), r, p, s)
	if err != nil {
		return 0, nil, err
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := onlyParams(v, "FriendlyName", "Status"); err != nil {
		return 0, nil, err
	}
	var u store.AccountUpdate
	if name, ok := param(v, "FriendlyName"); ok {
		if err := CheckFriendlyName(name); err != nil {
			return 0, nil, err
		}
		u.FriendlyName = &name
	}
	if status, ok := param(v, "Status"); ok {
		if !ValidStatus(status) {
			return 0, nil, badParam("Status %q must be active, suspended or closed", status)
		}
		if acct.Sid == p.Account.Sid && status != store.StatusActive {
			return 0, nil, errorf(http.StatusForbidden, CodeForbidden,
				"An account cannot suspend or close itself; its owner or the operator can")
		}
		u.Status = &status
	}
	updated, err := a.store.UpdateAccount(r.Context(), acct.Sid, u)
	if errors.Is(err, store.ErrClosed) {
		return 0, nil, errorf(http.StatusConflict, CodeConflict, "Account %s is closed and cannot be changed", acct.Sid)
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NewAccountResource(updated), nil
}
