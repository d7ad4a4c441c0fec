package api

import (
	"net/http"
	"strconv"

	"github.com/parleyhq/parley/admission"
)

// LimitResource is one admission limit as the API shows it.
type LimitResource struct {
	AccountSid string `json:"account_sid"`
	Resource   string `json:"resource"`
	Limit      int64  `json:"limit"` // -1: unlimited
	Current    int64  `json:"current"`
	Default    bool   `json:"default"`
}

func limitResource(accountSid string, l admission.Limit) LimitResource {
	return LimitResource{AccountSid: accountSid, Resource: string(l.Resource), Limit: l.Limit, Current: l.Current, Default: l.Default}
}

func (a *API) limitsAvailable() error {
	if a.limits == nil {
		return errorf(http.StatusServiceUnavailable, CodeServiceUnavailable, "Admission limits are not available on this server")
	}
	return nil
}

// listLimits shows an account's limit and current concurrency per resource.
func (a *API) listLimits(r *http.Request, p principal) (int, any, error) {
	if err := a.limitsAvailable(); err != nil {
		return 0, nil, err
	}
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	ls, err := a.limits.Limits(r.Context(), acct.Sid)
	if err != nil {
		return 0, nil, errorf(http.StatusServiceUnavailable, CodeServiceUnavailable, "Admission plugin unavailable: %v", err)
	}
	out := make([]LimitResource, len(ls))
	for i, l := range ls {
		out[i] = limitResource(acct.Sid, l)
	}
	return http.StatusOK, map[string]any{"limits": out, "uri": r.URL.Path}, nil
}

// setLimit changes one resource's limit of a subaccount: Resource, and Limit
// (a whole number, -1 for unlimited) or Limit="" to return to the default.
// An account cannot change its own limits — its owner or the operator can.
func (a *API) setLimit(r *http.Request, p principal) (int, any, error) {
	if err := a.limitsAvailable(); err != nil {
		return 0, nil, err
	}
	if err := requireAccountCredentials(p); err != nil {
		return 0, nil, err
	}
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	if acct.Sid == p.Account.Sid {
		return 0, nil, errorf(http.StatusForbidden, CodeForbidden,
			"An account cannot change its own limits; its owner can, or the operator with `parley limits set`")
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := onlyParams(v, "Resource", "Limit"); err != nil {
		return 0, nil, err
	}
	res, _ := param(v, "Resource")
	if !admission.Resource(res).Valid() {
		return 0, nil, badParam("Resource %q must be one of api, calls, calls-cps, messages", res)
	}
	raw, ok := param(v, "Limit")
	if !ok {
		return 0, nil, badParam("Limit is required: a whole number, -1 for unlimited, or empty for the default")
	}
	var l admission.Limit
	if raw == "" {
		l, err = a.limits.ClearLimit(r.Context(), acct.Sid, admission.Resource(res))
	} else {
		n, perr := strconv.ParseInt(raw, 10, 64)
		if perr != nil || n < -1 || n > 1_000_000 {
			return 0, nil, badParam("Limit %q must be a whole number from -1 (unlimited) to 1000000", raw)
		}
		l, err = a.limits.SetLimit(r.Context(), acct.Sid, admission.Resource(res), n)
	}
	if err != nil {
		return 0, nil, errorf(http.StatusServiceUnavailable, CodeServiceUnavailable, "Admission plugin unavailable: %v", err)
	}
	return http.StatusOK, limitResource(acct.Sid, l), nil
}
