package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/store"
)

// principal is who made a request: an account, directly or through one of its keys.
type principal struct {
	Account store.Account
	KeySid  string // "" when the account's own auth token was used
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

var errAuthFailed = errorf(http.StatusUnauthorized, CodeAuthFailed, "Authentication failed: wrong credentials")

// authenticate checks HTTP Basic credentials: AccountSid:AuthToken or KeySid:KeySecret.
func (a *API) authenticate(r *http.Request) (principal, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return principal{}, errorf(http.StatusUnauthorized, CodeAuthFailed,
			"Authentication required: HTTP Basic with AccountSid:AuthToken or KeySid:KeySecret")
	}
	ctx := r.Context()
	var p principal
	switch {
	case sid.Valid(sid.Account, user):
		acct, err := a.store.Account(ctx, user)
		if errors.Is(err, store.ErrNotFound) {
			return principal{}, errAuthFailed
		}
		if err != nil {
			return principal{}, err
		}
		if !equal(pass, acct.AuthToken) {
			return principal{}, errAuthFailed
		}
		p.Account = acct
	case sid.Valid(sid.Key, user):
		key, err := a.store.Key(ctx, user)
		if errors.Is(err, store.ErrNotFound) {
			return principal{}, errAuthFailed
		}
		if err != nil {
			return principal{}, err
		}
		if !equal(pass, key.Secret) {
			return principal{}, errAuthFailed
		}
		if key.Revoked() {
			return principal{}, errorf(http.StatusUnauthorized, CodeAuthFailed, "Authentication failed: API key %s was revoked", key.Sid)
		}
		acct, err := a.store.Account(ctx, key.AccountSid)
		if err != nil {
			return principal{}, err
		}
		p.Account, p.KeySid = acct, key.Sid
	default:
		return principal{}, errorf(http.StatusUnauthorized, CodeAuthFailed,
			"Authentication failed: the user name must be an account sid (AC…) or an API key sid (SK…)")
	}
	switch p.Account.Status {
	case store.StatusClosed:
		return principal{}, errorf(http.StatusUnauthorized, CodeAuthFailed, "Authentication failed: account %s is closed", p.Account.Sid)
	case store.StatusSuspended:
		return principal{}, errorf(http.StatusForbidden, CodeAccountNotActive, "Account %s is suspended", p.Account.Sid)
	}
	return p, nil
}

// account returns the account named in the path if the principal may see it:
// itself or one of its subaccounts. Anything else is "not found".
func (a *API) account(ctx context.Context, r *http.Request, p principal, accountSid string) (store.Account, error) {
	accountSid = strings.TrimSuffix(accountSid, ".json")
	if !sid.Valid(sid.Account, accountSid) {
		return store.Account{}, notFound(r)
	}
	if accountSid == p.Account.Sid {
		return p.Account, nil
	}
	acct, err := a.store.Account(ctx, accountSid)
	if errors.Is(err, store.ErrNotFound) || (err == nil && acct.OwnerAccountSid != p.Account.Sid) {
		return store.Account{}, notFound(r)
	}
	return acct, err
}

// requireAccountCredentials refuses API keys on the resources that manage
// accounts and keys: a leaked key must not be able to mint more keys or read
// auth tokens.
func requireAccountCredentials(p principal) error {
	if p.KeySid != "" {
		return errorf(http.StatusForbidden, CodeForbidden,
			"API keys cannot manage accounts or keys; use the account sid and auth token")
	}
	return nil
}
