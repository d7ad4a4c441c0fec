package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/partners"
	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
	"github.com/parleyhq/parley/store"
)

// Partners is what the REST API needs from partner delegation
// (*partners.Client implements it).
type Partners interface {
	CreatePartner(ctx context.Context, req *partnersv1.CreatePartnerRequest) (*partnersv1.CreatePartnerResponse, error)
	Partner(ctx context.Context, partnerSid string) (*partnersv1.Partner, error)
	ListPartners(ctx context.Context) ([]*partnersv1.Partner, error)
	UpdatePartner(ctx context.Context, req *partnersv1.UpdatePartnerRequest) (*partnersv1.Partner, error)
	AddKey(ctx context.Context, req *partnersv1.AddKeyRequest) (*partnersv1.PartnerKey, error)
	RevokeKey(ctx context.Context, partnerSid, kid string) (*partnersv1.PartnerKey, error)
	Authenticate(ctx context.Context, partnerSid, secret string) (*partnersv1.Partner, error)
	ExchangeAssertion(ctx context.Context, accounts partners.Accounts, partnerSid, assertion, audience string, ttl time.Duration) (partners.PortalToken, error)
}

// PartnerOptions configures the partner resources.
type PartnerOptions struct {
	Partners Partners
	// Accounts looks up the account an assertion names, for the plugin.
	Accounts partners.Accounts
	// OperatorToken, when not empty, lets "operator:<token>" manage partners.
	OperatorToken string
	// PublicURL is this server's public base URL: assertions' audience and
	// the portal URLs' base.
	PublicURL func() string
	// URLTTL is how long a portal URL stays redeemable (≤ 60 s).
	URLTTL time.Duration
}

// PartnerKeyResource is a partner key as the API shows it (never its material).
type PartnerKeyResource struct {
	Kid         string  `json:"kid"`
	Type        string  `json:"type"`
	Revoked     bool    `json:"revoked"`
	DateRevoked *string `json:"date_revoked"`
	DateCreated string  `json:"date_created"`
	// Secret is the generated HMAC secret, present only in the answer that created it.
	Secret string `json:"secret,omitempty"`
}

// PartnerResource is a partner as the API shows it.
type PartnerResource struct {
	Sid            string               `json:"sid"`
	FriendlyName   string               `json:"friendly_name"`
	Status         string               `json:"status"`
	AllowedOrigins []string             `json:"allowed_origins"`
	Features       []string             `json:"features"`
	Keys           []PartnerKeyResource `json:"keys"`
	DateCreated    string               `json:"date_created"`
	DateUpdated    string               `json:"date_updated"`
	URL            string               `json:"url"`
	// APISecret is the partner's REST secret, present only when it was created.
	APISecret string `json:"api_secret,omitempty"`
}

func msRFC2822(ms int64) string { return rfc2822(time.UnixMilli(ms)) }

// NewPartnerKeyResource renders a key.
func NewPartnerKeyResource(k *partnersv1.PartnerKey) PartnerKeyResource {
	res := PartnerKeyResource{Kid: k.Kid, Type: k.Type, Revoked: k.RevokedMs != 0, DateCreated: msRFC2822(k.DateCreatedMs)}
	if k.RevokedMs != 0 {
		s := msRFC2822(k.RevokedMs)
		res.DateRevoked = &s
	}
	return res
}

// NewPartnerResource renders a partner.
func NewPartnerResource(p *partnersv1.Partner) PartnerResource {
	res := PartnerResource{Sid: p.Sid, FriendlyName: p.FriendlyName, Status: p.Status, AllowedOrigins: p.AllowedOrigins, Features: p.Features,
		Keys: []PartnerKeyResource{}, DateCreated: msRFC2822(p.DateCreatedMs), DateUpdated: msRFC2822(p.DateUpdatedMs), URL: "/v1/Partners/" + p.Sid}
	if res.AllowedOrigins == nil {
		res.AllowedOrigins = []string{}
	}
	for _, k := range p.Keys {
		res.Keys = append(res.Keys, NewPartnerKeyResource(k))
	}
	return res
}

// partnerPrincipal is who called a partner resource: the operator, or one partner.
type partnerPrincipal struct {
	Operator bool
	Partner  *partnersv1.Partner
}

type partnerHandler func(r *http.Request, p partnerPrincipal) (int, any, error)

// partnerErr maps the partners client's errors to API errors.
func partnerErr(r *http.Request, err error) error {
	var inv *partners.InvalidError
	var refused *partners.RefusedError
	switch {
	case errors.As(err, &refused):
		e := errorf(http.StatusUnauthorized, CodeAssertionRefused, "Assertion refused (%s): %s", refused.Reason, refused.Detail)
		e.Reason = refused.Reason
		return e
	case errors.As(err, &inv):
		return badParam("%s", inv.Msg)
	case errors.Is(err, partners.ErrNotFound):
		return notFound(r)
	case errors.Is(err, partners.ErrUnauthenticated):
		return errAuthFailed
	case errors.Is(err, partners.ErrForbidden):
		return errorf(http.StatusForbidden, CodeAccountNotActive, "Partner is suspended")
	case errors.Is(err, partners.ErrUnavailable):
		return errorf(http.StatusServiceUnavailable, CodeServiceUnavailable, "Partner service unavailable, try again shortly")
	}
	return err
}

// authenticatePartner checks HTTP Basic "operator:<token>" or "PN…:<secret>".
func (a *API) authenticatePartner(r *http.Request) (partnerPrincipal, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return partnerPrincipal{}, errorf(http.StatusUnauthorized, CodeAuthFailed,
			"Authentication required: HTTP Basic with PartnerSid:ApiSecret (or operator:<operator token>)")
	}
	switch {
	case user == "operator":
		tok := a.partners.OperatorToken
		if tok == "" || subtle.ConstantTimeCompare([]byte(pass), []byte(tok)) != 1 {
			return partnerPrincipal{}, errAuthFailed
		}
		return partnerPrincipal{Operator: true}, nil
	case sid.Valid(sid.Partner, user):
		p, err := a.partners.Partners.Authenticate(r.Context(), user, pass)
		if err != nil {
			return partnerPrincipal{}, partnerErr(r, err)
		}
		return partnerPrincipal{Partner: p}, nil
	}
	return partnerPrincipal{}, errorf(http.StatusUnauthorized, CodeAuthFailed,
		"Authentication failed: the user name must be a partner sid (PN…) or operator")
}

func (a *API) handlePartner(pattern string, h partnerHandler) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if a.partners.Partners == nil {
			writeError(w, r, a.log, errorf(http.StatusServiceUnavailable, CodeServiceUnavailable, "Partner delegation is not enabled on this server"))
			return
		}
		p, err := a.authenticatePartner(r)
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		status, body, err := h(r, p)
		if err != nil {
			writeError(w, r, a.log, partnerErr(r, err))
			return
		}
		if body == nil {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, body)
	})
}

func (a *API) partnerRoutes() {
	a.handlePartner("GET /v1/Partners", a.listPartners)
	a.handlePartner("POST /v1/Partners", a.createPartner)
	a.handlePartner("GET /v1/Partners/{partner}", a.fetchPartner)
	a.handlePartner("POST /v1/Partners/{partner}", a.updatePartner)
	a.handlePartner("POST /v1/Partners/{partner}/Keys", a.addPartnerKey)
	a.handlePartner("DELETE /v1/Partners/{partner}/Keys/{kid}", a.revokePartnerKey)
	a.handlePartner("GET /v1/Partners/{partner}/Accounts", a.listPartnerAccounts)
	a.handlePartner("POST /v1/Partners/{partner}/Accounts", a.createPartnerAccount)
	a.handlePartner("GET /v1/Partners/{partner}/Accounts/{account}", a.fetchPartnerAccount)
	a.handlePartner("POST /v1/Partners/{partner}/Accounts/{account}", a.updatePartnerAccount)
	a.handlePartner("POST /v1/Partners/{partner}/PortalSessions", a.createPortalSession)
}

func requireOperator(p partnerPrincipal) error {
	if !p.Operator {
		return errorf(http.StatusForbidden, CodeForbidden, "Only the operator manages partners and their keys")
	}
	return nil
}

// pathPartner is the partner in the path if the caller may act for it: the
// operator for any, a partner for itself only (another partner is "not found").
func pathPartner(r *http.Request, p partnerPrincipal) (string, error) {
	ps := r.PathValue("partner")
	if !sid.Valid(sid.Partner, ps) || (!p.Operator && ps != p.Partner.Sid) {
		return "", notFound(r)
	}
	return ps, nil
}

// listParam splits a list given as one comma- or space-separated value.
func listParam(v url.Values, k string) ([]string, bool) {
	s, ok := param(v, k)
	if !ok {
		return nil, false
	}
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }), true
}

func (a *API) listPartners(r *http.Request, p partnerPrincipal) (int, any, error) {
	if err := requireOperator(p); err != nil {
		return 0, nil, err
	}
	ps, err := a.partners.Partners.ListPartners(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := make([]PartnerResource, 0, len(ps))
	for _, pp := range ps {
		out = append(out, NewPartnerResource(pp))
	}
	return http.StatusOK, map[string]any{"partners": out}, nil
}

func (a *API) createPartner(r *http.Request, p partnerPrincipal) (int, any, error) {
	if err := requireOperator(p); err != nil {
		return 0, nil, err
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := onlyParams(v, "FriendlyName", "AllowedOrigins", "Features"); err != nil {
		return 0, nil, err
	}
	req := &partnersv1.CreatePartnerRequest{}
	req.FriendlyName, _ = param(v, "FriendlyName")
	req.AllowedOrigins, _ = listParam(v, "AllowedOrigins")
	req.Features, _ = listParam(v, "Features")
	res, err := a.partners.Partners.CreatePartner(r.Context(), req)
	if err != nil {
		return 0, nil, err
	}
	out := NewPartnerResource(res.Partner)
	out.APISecret = res.ApiSecret
	return http.StatusCreated, out, nil
}

func (a *API) fetchPartner(r *http.Request, p partnerPrincipal) (int, any, error) {
	ps, err := pathPartner(r, p)
	if err != nil {
		return 0, nil, err
	}
	pp, err := a.partners.Partners.Partner(r.Context(), ps)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NewPartnerResource(pp), nil
}

func (a *API) updatePartner(r *http.Request, p partnerPrincipal) (int, any, error) {
	if err := requireOperator(p); err != nil {
		return 0, nil, err
	}
	ps, err := pathPartner(r, p)
	if err != nil {
		return 0, nil, err
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := onlyParams(v, "FriendlyName", "Status", "AllowedOrigins", "Features"); err != nil {
		return 0, nil, err
	}
	req := &partnersv1.UpdatePartnerRequest{Sid: ps}
	if s, ok := param(v, "FriendlyName"); ok {
		req.FriendlyName = &s
	}
	if s, ok := param(v, "Status"); ok {
		req.Status = &s
	}
	req.AllowedOrigins, req.SetAllowedOrigins = listParam(v, "AllowedOrigins")
	req.Features, req.SetFeatures = listParam(v, "Features")
	pp, err := a.partners.Partners.UpdatePartner(r.Context(), req)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NewPartnerResource(pp), nil
}

func (a *API) addPartnerKey(r *http.Request, p partnerPrincipal) (int, any, error) {
	if err := requireOperator(p); err != nil {
		return 0, nil, err
	}
	ps, err := pathPartner(r, p)
	if err != nil {
		return 0, nil, err
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := onlyParams(v, "Kid", "Type", "PublicKey", "Secret"); err != nil {
		return 0, nil, err
	}
	req := &partnersv1.AddKeyRequest{PartnerSid: ps}
	req.Kid, _ = param(v, "Kid")
	req.Type, _ = param(v, "Type")
	pub, hasPub := param(v, "PublicKey")
	secret, hasSecret := param(v, "Secret")
	generated := ""
	switch req.Type {
	case "hmac":
		if hasPub {
			return 0, nil, badParam("PublicKey is for ed25519 and rsa keys; an hmac key takes Secret (or none to generate one)")
		}
		if !hasSecret {
			secret = sid.Secret(48)
			generated = secret
		}
		req.Material = []byte(secret)
	case "ed25519", "rsa":
		if hasSecret || !hasPub {
			return 0, nil, badParam("a %s key needs PublicKey (PEM) and no Secret", req.Type)
		}
		req.Material = []byte(pub)
	default:
		return 0, nil, badParam("Type %q must be hmac, ed25519 or rsa", req.Type)
	}
	k, err := a.partners.Partners.AddKey(r.Context(), req)
	if err != nil {
		return 0, nil, err
	}
	out := NewPartnerKeyResource(k)
	out.Secret = generated
	return http.StatusCreated, out, nil
}

func (a *API) revokePartnerKey(r *http.Request, p partnerPrincipal) (int, any, error) {
	if err := requireOperator(p); err != nil {
		return 0, nil, err
	}
	ps, err := pathPartner(r, p)
	if err != nil {
		return 0, nil, err
	}
	k, err := a.partners.Partners.RevokeKey(r.Context(), ps, r.PathValue("kid"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NewPartnerKeyResource(k), nil
}

// partnerAccount is the account in the path if it was created within the partner.
func (a *API) partnerAccount(r *http.Request, partnerSid string) (store.Account, error) {
	as := r.PathValue("account")
	if !sid.Valid(sid.Account, as) {
		return store.Account{}, notFound(r)
	}
	acct, err := a.store.Account(r.Context(), as)
	if errors.Is(err, store.ErrNotFound) || (err == nil && acct.OwnerPartnerSid != partnerSid) {
		return store.Account{}, notFound(r)
	}
	return acct, err
}

func (a *API) listPartnerAccounts(r *http.Request, p partnerPrincipal) (int, any, error) {
	ps, err := pathPartner(r, p)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	f := store.AccountFilter{Partner: ps, FriendlyName: q.Get("FriendlyName"), Status: q.Get("Status")}
	if f.Status != "" && !ValidStatus(f.Status) {
		return 0, nil, badParam("Status %q must be active, suspended or closed", f.Status)
	}
	return pagedList(r, "accounts", func(pg store.Page) ([]store.Account, bool, error) {
		return a.store.ListAccounts(r.Context(), f, pg)
	}, NewAccountResource)
}

func (a *API) createPartnerAccount(r *http.Request, p partnerPrincipal) (int, any, error) {
	ps, err := pathPartner(r, p)
	if err != nil {
		return 0, nil, err
	}
	if p.Operator {
		if _, err := a.partners.Partners.Partner(r.Context(), ps); err != nil {
			return 0, nil, err
		}
	}
	name, _, err := friendlyNameOnly(r)
	if err != nil {
		return 0, nil, err
	}
	acct, err := a.store.CreateAccount(r.Context(), store.NewAccount{FriendlyName: name, OwnerPartnerSid: ps})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, NewAccountResource(acct), nil
}

func (a *API) fetchPartnerAccount(r *http.Request, p partnerPrincipal) (int, any, error) {
	ps, err := pathPartner(r, p)
	if err != nil {
		return 0, nil, err
	}
	acct, err := a.partnerAccount(r, ps)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NewAccountResource(acct), nil
}

// updatePartnerAccount renames, suspends, reactivates or closes an account
// of the partner.
func (a *API) updatePartnerAccount(r *http.Request, p partnerPrincipal) (int, any, error) {
	ps, err := pathPartner(r, p)
	if err != nil {
		return 0, nil, err
	}
	acct, err := a.partnerAccount(r, ps)
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

// PortalSessionResource is a single-use portal URL.
type PortalSessionResource struct {
	URL        string `json:"url"`
	ExpiresAt  string `json:"expires_at"`
	AccountSid string `json:"account_sid"`
}

// createPortalSession exchanges a partner assertion for a single-use portal URL.
func (a *API) createPortalSession(r *http.Request, p partnerPrincipal) (int, any, error) {
	ps, err := pathPartner(r, p)
	if err != nil {
		return 0, nil, err
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := onlyParams(v, "Assertion"); err != nil {
		return 0, nil, err
	}
	assertion, ok := param(v, "Assertion")
	if !ok || assertion == "" {
		return 0, nil, badParam("Assertion is required: a JWT signed with one of the partner's keys")
	}
	base := strings.TrimRight(a.partners.PublicURL(), "/")
	tok, err := a.partners.Partners.ExchangeAssertion(r.Context(), a.partners.Accounts, ps, assertion, base, a.partners.URLTTL)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, PortalSessionResource{URL: base + "/portal/?token=" + url.QueryEscape(tok.Token),
		ExpiresAt: tok.ExpiresAt.Format(time.RFC3339), AccountSid: tok.AccountSid}, nil
}
