package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/store"
)

// SIPAdmin is what the SIP resources need beyond the store.
type SIPAdmin struct {
	// Realm is the registrar's Digest realm: credentials are hashed with it.
	Realm string
	// CredentialsChanged is called after credentials or mappings change, so
	// the registrar stops using cached lookups.
	CredentialsChanged func()
	// Presence serves …/Presence and its live stream.
	Presence PresenceView
	// ReservedDomainNames are the server's own names (its SIP hostname,
	// public and media addresses): refused as SIP domain names.
	ReservedDomainNames []string
}

// PresenceView reads presence (presence.Registry implements it).
type PresenceView interface {
	List(ctx context.Context, accountSid string) ([]presence.Presence, error)
	Events() *presence.Bus
}

// SIPDomainResource is a SIP domain as the API shows it.
type SIPDomainResource struct {
	Sid             string            `json:"sid"`
	AccountSid      string            `json:"account_sid"`
	DomainName      string            `json:"domain_name"`
	FriendlyName    string            `json:"friendly_name"`
	VoiceURL        string            `json:"voice_url"`
	VoiceMethod     string            `json:"voice_method"`
	MessagingURL    string            `json:"messaging_url"`
	MessagingMethod string            `json:"messaging_method"`
	SipRegistration bool              `json:"sip_registration"`
	DateCreated     string            `json:"date_created"`
	DateUpdated     string            `json:"date_updated"`
	URI             string            `json:"uri"`
	SubresourceURIs map[string]string `json:"subresource_uris"`
}

func sipBase(acct string) string { return Prefix + "/Accounts/" + acct + "/SIP" }

func newSIPDomainResource(d store.SIPDomain) SIPDomainResource {
	base := sipBase(d.AccountSid) + "/Domains/" + d.Sid
	return SIPDomainResource{Sid: d.Sid, AccountSid: d.AccountSid, DomainName: d.DomainName, FriendlyName: d.FriendlyName,
		VoiceURL: d.VoiceURL, VoiceMethod: d.VoiceMethod, MessagingURL: d.MessagingURL, MessagingMethod: d.MessagingMethod,
		SipRegistration: d.RegistrationEnabled,
		DateCreated:     rfc2822(d.DateCreated), DateUpdated: rfc2822(d.DateUpdated), URI: base + ".json",
		SubresourceURIs: map[string]string{"credential_list_mappings": base + "/CredentialListMappings.json"}}
}

// CredentialListResource is a credential list as the API shows it.
type CredentialListResource struct {
	Sid             string            `json:"sid"`
	AccountSid      string            `json:"account_sid"`
	FriendlyName    string            `json:"friendly_name"`
	DateCreated     string            `json:"date_created"`
	DateUpdated     string            `json:"date_updated"`
	URI             string            `json:"uri"`
	SubresourceURIs map[string]string `json:"subresource_uris"`
}

func newCredentialListResource(l store.SIPCredentialList) CredentialListResource {
	base := sipBase(l.AccountSid) + "/CredentialLists/" + l.Sid
	return CredentialListResource{Sid: l.Sid, AccountSid: l.AccountSid, FriendlyName: l.FriendlyName,
		DateCreated: rfc2822(l.DateCreated), DateUpdated: rfc2822(l.DateUpdated), URI: base + ".json",
		SubresourceURIs: map[string]string{"credentials": base + "/Credentials.json"}}
}

// CredentialResource is a SIP credential: the username only, never the password.
type CredentialResource struct {
	Sid               string `json:"sid"`
	AccountSid        string `json:"account_sid"`
	CredentialListSid string `json:"credential_list_sid"`
	Username          string `json:"username"`
	DateCreated       string `json:"date_created"`
	DateUpdated       string `json:"date_updated"`
	URI               string `json:"uri"`
}

func newCredentialResource(c store.SIPCredential) CredentialResource {
	return CredentialResource{Sid: c.Sid, AccountSid: c.AccountSid, CredentialListSid: c.CredentialListSid, Username: c.Username,
		DateCreated: rfc2822(c.DateCreated), DateUpdated: rfc2822(c.DateUpdated),
		URI: sipBase(c.AccountSid) + "/CredentialLists/" + c.CredentialListSid + "/Credentials/" + c.Sid + ".json"}
}

func (a *API) sipRoutes() {
	d := Prefix + "/Accounts/{account}/SIP/Domains"
	a.handle("GET "+d+".json", a.listSIPDomains)
	a.handle("POST "+d+".json", a.createSIPDomain)
	a.handle("GET "+d+"/{domain}", a.fetchSIPDomain)
	a.handle("POST "+d+"/{domain}", a.updateSIPDomain)
	a.handle("DELETE "+d+"/{domain}", a.deleteSIPDomain)
	a.handle("GET "+d+"/{domain}/CredentialListMappings.json", a.listMappings)
	a.handle("POST "+d+"/{domain}/CredentialListMappings.json", a.createMapping)
	a.handle("DELETE "+d+"/{domain}/CredentialListMappings/{list}", a.deleteMapping)
	l := Prefix + "/Accounts/{account}/SIP/CredentialLists"
	a.handle("GET "+l+".json", a.listCredentialLists)
	a.handle("POST "+l+".json", a.createCredentialList)
	a.handle("GET "+l+"/{list}", a.fetchCredentialList)
	a.handle("DELETE "+l+"/{list}", a.deleteCredentialList)
	a.handle("GET "+l+"/{list}/Credentials.json", a.listCredentials)
	a.handle("POST "+l+"/{list}/Credentials.json", a.createCredential)
	a.handle("DELETE "+l+"/{list}/Credentials/{credential}", a.deleteCredential)

	a.handle("GET /v1/Accounts/{account}/Presence", a.listPresence)
	a.handleStream("GET /v1/Accounts/{account}/Presence/Stream", a.streamPresence)
	a.mux.HandleFunc("/v1/", a.unrouted)
}

func (a *API) credentialsChanged() {
	if a.sip.CredentialsChanged != nil {
		a.sip.CredentialsChanged()
	}
}

// storeError maps the store's input and uniqueness errors to 400 and 409.
func storeError(err error) error {
	if de := (*store.DomainNameError)(nil); errors.As(err, &de) {
		return errorf(http.StatusBadRequest, CodeDomainNameRefused, "%s", de.Error())
	}
	switch {
	case errors.Is(err, store.ErrInvalid):
		return badParam("%s", strings.TrimPrefix(strings.TrimPrefix(err.Error(), "create sip "), "create "))
	case err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed"):
		return errorf(http.StatusConflict, CodeConflict, "already exists")
	}
	return err
}

func (a *API) domainOf(r *http.Request, p principal) (store.SIPDomain, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return store.SIPDomain{}, err
	}
	sid := strings.TrimSuffix(r.PathValue("domain"), ".json")
	d, err := a.store.SIPDomain(r.Context(), acct.Sid, sid)
	if errors.Is(err, store.ErrNotFound) {
		return d, notFound(r)
	}
	return d, err
}

func (a *API) listOf(r *http.Request, p principal, name string) (store.SIPCredentialList, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return store.SIPCredentialList{}, err
	}
	l, err := a.store.SIPCredentialList(r.Context(), acct.Sid, strings.TrimSuffix(r.PathValue(name), ".json"))
	if errors.Is(err, store.ErrNotFound) {
		return l, notFound(r)
	}
	return l, err
}

func (a *API) listSIPDomains(r *http.Request, p principal) (int, any, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	return pagedList(r, "domains", func(pg store.Page) ([]store.SIPDomain, bool, error) {
		return a.store.ListSIPDomains(r.Context(), acct.Sid, pg)
	}, newSIPDomainResource)
}

// domainParams validates the writable fields of a domain.
func domainParams(v map[string][]string, u *store.SIPDomainUpdate) error {
	if name, ok := param(v, "FriendlyName"); ok {
		if err := CheckFriendlyName(name); err != nil {
			return err
		}
		u.FriendlyName = &name
	}
	for _, f := range []struct {
		url, method string
		dstURL      **string
		dstMethod   **string
	}{{"VoiceUrl", "VoiceMethod", &u.VoiceURL, &u.VoiceMethod}, {"MessagingUrl", "MessagingMethod", &u.MessagingURL, &u.MessagingMethod}} {
		if raw, ok := param(v, f.url); ok {
			if err := checkURL(f.url, raw); err != nil {
				return err
			}
			*f.dstURL = &raw
		}
		if m, ok := param(v, f.method); ok {
			method, err := checkMethod(f.method, m)
			if err != nil {
				return err
			}
			if method == "" {
				method = "POST"
			}
			*f.dstMethod = &method
		}
	}
	if reg, ok := param(v, "SipRegistration"); ok {
		switch strings.ToLower(reg) {
		case "true":
			t := true
			u.RegistrationEnabled = &t
		case "false":
			f := false
			u.RegistrationEnabled = &f
		default:
			return badParam("SipRegistration %q must be true or false", reg)
		}
	}
	return nil
}

func (a *API) createSIPDomain(r *http.Request, p principal) (int, any, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := onlyParams(v, "DomainName", "FriendlyName", "VoiceUrl", "VoiceMethod", "MessagingUrl", "MessagingMethod", "SipRegistration"); err != nil {
		return 0, nil, err
	}
	name, ok := param(v, "DomainName")
	if !ok || name == "" {
		return 0, nil, badParam("DomainName is required")
	}
	var u store.SIPDomainUpdate
	if err := domainParams(v, &u); err != nil {
		return 0, nil, err
	}
	in := store.NewSIPDomain{DomainName: name, RegistrationEnabled: true, VoiceMethod: "POST", ReservedNames: a.sip.ReservedDomainNames}
	if u.FriendlyName != nil {
		in.FriendlyName = *u.FriendlyName
	}
	if u.VoiceURL != nil {
		in.VoiceURL = *u.VoiceURL
	}
	if u.VoiceMethod != nil {
		in.VoiceMethod = *u.VoiceMethod
	}
	if u.MessagingURL != nil {
		in.MessagingURL = *u.MessagingURL
	}
	if u.MessagingMethod != nil {
		in.MessagingMethod = *u.MessagingMethod
	}
	if u.RegistrationEnabled != nil {
		in.RegistrationEnabled = *u.RegistrationEnabled
	}
	d, err := a.store.CreateSIPDomain(r.Context(), acct.Sid, in)
	if err != nil {
		return 0, nil, storeError(err)
	}
	a.credentialsChanged()
	return http.StatusCreated, newSIPDomainResource(d), nil
}

func (a *API) fetchSIPDomain(r *http.Request, p principal) (int, any, error) {
	d, err := a.domainOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, newSIPDomainResource(d), nil
}

func (a *API) updateSIPDomain(r *http.Request, p principal) (int, any, error) {
	d, err := a.domainOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := onlyParams(v, "FriendlyName", "VoiceUrl", "VoiceMethod", "MessagingUrl", "MessagingMethod", "SipRegistration"); err != nil {
		return 0, nil, err
	}
	var u store.SIPDomainUpdate
	if err := domainParams(v, &u); err != nil {
		return 0, nil, err
	}
	d, err = a.store.UpdateSIPDomain(r.Context(), d.AccountSid, d.Sid, u)
	if err != nil {
		return 0, nil, err
	}
	a.credentialsChanged()
	return http.StatusOK, newSIPDomainResource(d), nil
}

func (a *API) deleteSIPDomain(r *http.Request, p principal) (int, any, error) {
	d, err := a.domainOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	if err := a.store.DeleteSIPDomain(r.Context(), d.AccountSid, d.Sid); err != nil {
		return 0, nil, err
	}
	a.credentialsChanged()
	return http.StatusNoContent, nil, nil
}

func (a *API) listMappings(r *http.Request, p principal) (int, any, error) {
	d, err := a.domainOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	return pagedList(r, "credential_list_mappings", func(pg store.Page) ([]store.SIPCredentialList, bool, error) {
		return a.store.ListSIPDomainCredentialLists(r.Context(), d.AccountSid, d.Sid, pg)
	}, newCredentialListResource)
}

func (a *API) createMapping(r *http.Request, p principal) (int, any, error) {
	d, err := a.domainOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := onlyParams(v, "CredentialListSid"); err != nil {
		return 0, nil, err
	}
	listSid, _ := param(v, "CredentialListSid")
	l, err := a.store.SIPCredentialList(r.Context(), d.AccountSid, listSid)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, badParam("CredentialListSid %q is not a credential list of this account", listSid)
	}
	if err != nil {
		return 0, nil, err
	}
	if err := a.store.MapSIPCredentialList(r.Context(), d.AccountSid, d.Sid, l.Sid); err != nil {
		return 0, nil, storeError(err)
	}
	a.credentialsChanged()
	return http.StatusCreated, newCredentialListResource(l), nil
}

func (a *API) deleteMapping(r *http.Request, p principal) (int, any, error) {
	d, err := a.domainOf(r, p)
	if err != nil {
		return 0, nil, err
	}
	listSid := strings.TrimSuffix(r.PathValue("list"), ".json")
	if err := a.store.UnmapSIPCredentialList(r.Context(), d.AccountSid, d.Sid, listSid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return 0, nil, notFound(r)
		}
		return 0, nil, err
	}
	a.credentialsChanged()
	return http.StatusNoContent, nil, nil
}

func (a *API) listCredentialLists(r *http.Request, p principal) (int, any, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	return pagedList(r, "credential_lists", func(pg store.Page) ([]store.SIPCredentialList, bool, error) {
		return a.store.ListSIPCredentialLists(r.Context(), acct.Sid, pg)
	}, newCredentialListResource)
}

func (a *API) createCredentialList(r *http.Request, p principal) (int, any, error) {
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	name, _, err := friendlyNameOnly(r)
	if err != nil {
		return 0, nil, err
	}
	l, err := a.store.CreateSIPCredentialList(r.Context(), acct.Sid, name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, newCredentialListResource(l), nil
}

func (a *API) fetchCredentialList(r *http.Request, p principal) (int, any, error) {
	l, err := a.listOf(r, p, "list")
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, newCredentialListResource(l), nil
}

func (a *API) deleteCredentialList(r *http.Request, p principal) (int, any, error) {
	l, err := a.listOf(r, p, "list")
	if err != nil {
		return 0, nil, err
	}
	if err := a.store.DeleteSIPCredentialList(r.Context(), l.AccountSid, l.Sid); err != nil {
		return 0, nil, err
	}
	a.credentialsChanged()
	return http.StatusNoContent, nil, nil
}

func (a *API) listCredentials(r *http.Request, p principal) (int, any, error) {
	l, err := a.listOf(r, p, "list")
	if err != nil {
		return 0, nil, err
	}
	return pagedList(r, "credentials", func(pg store.Page) ([]store.SIPCredential, bool, error) {
		return a.store.ListSIPCredentials(r.Context(), l.AccountSid, l.Sid, pg)
	}, newCredentialResource)
}

func (a *API) createCredential(r *http.Request, p principal) (int, any, error) {
	l, err := a.listOf(r, p, "list")
	if err != nil {
		return 0, nil, err
	}
	v, err := decodeParams(r)
	if err != nil {
		return 0, nil, err
	}
	if err := onlyParams(v, "Username", "Password"); err != nil {
		return 0, nil, err
	}
	user, _ := param(v, "Username")
	pass, _ := param(v, "Password")
	c, err := a.store.CreateSIPCredential(r.Context(), l.AccountSid, l.Sid, user, pass, a.sip.Realm)
	if err != nil {
		return 0, nil, storeError(err)
	}
	a.credentialsChanged()
	return http.StatusCreated, newCredentialResource(c), nil
}

func (a *API) deleteCredential(r *http.Request, p principal) (int, any, error) {
	l, err := a.listOf(r, p, "list")
	if err != nil {
		return 0, nil, err
	}
	credSid := strings.TrimSuffix(r.PathValue("credential"), ".json")
	found, err := a.store.SIPCredentialInList(r.Context(), l.AccountSid, l.Sid, credSid)
	if err != nil {
		return 0, nil, err
	}
	if !found {
		return 0, nil, notFound(r)
	}
	if err := a.store.DeleteSIPCredential(r.Context(), l.AccountSid, credSid); err != nil {
		return 0, nil, err
	}
	a.credentialsChanged()
	return http.StatusNoContent, nil, nil
}

// PresenceResource is one identity's presence.
type PresenceResource struct {
	Identity string            `json:"identity"`
	Status   string            `json:"status"`
	Bindings []BindingResource `json:"bindings"`
}

// BindingResource is one way an identity is reachable.
type BindingResource struct {
	Transport string  `json:"transport"`
	Contact   string  `json:"contact"`
	Source    string  `json:"source"`
	ExpiresIn int     `json:"expires_in"` // seconds
	Q         float64 `json:"q"`
	UserAgent string  `json:"user_agent"`
}

func (a *API) presenceAvailable() error {
	if a.sip.Presence == nil {
		return errorf(http.StatusServiceUnavailable, CodeServiceUnavailable, "Presence is not available on this server")
	}
	return nil
}

func (a *API) listPresence(r *http.Request, p principal) (int, any, error) {
	if err := a.presenceAvailable(); err != nil {
		return 0, nil, err
	}
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return 0, nil, err
	}
	ps, err := a.sip.Presence.List(r.Context(), acct.Sid)
	if err != nil {
		return 0, nil, err
	}
	now := time.Now()
	out := make([]PresenceResource, 0, len(ps))
	for _, pr := range ps {
		res := PresenceResource{Identity: pr.Identity, Status: string(pr.Status), Bindings: []BindingResource{}}
		for _, b := range pr.Bindings {
			res.Bindings = append(res.Bindings, BindingResource{Transport: b.Transport, Contact: b.Contact, Source: b.Source,
				ExpiresIn: int(b.Remaining(now).Seconds()), Q: b.Q, UserAgent: b.UserAgent})
		}
		out = append(out, res)
	}
	return http.StatusOK, map[string]any{"account_sid": acct.Sid, "identities": out}, nil
}

// streamPresence sends presence changes of the account as Server-Sent Events
// ("event: presence", data {identity, status, previous, bindings, at}) until
// the client goes away; a comment line every 15 s keeps proxies from
// closing it.
func (a *API) streamPresence(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := a.presenceAvailable(); err != nil {
		return err
	}
	acct, err := a.account(r.Context(), r, p, r.PathValue("account"))
	if err != nil {
		return err
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		return errors.New("streaming unsupported by the response writer")
	}
	sub := a.sip.Presence.Events().Subscribe(256, func(e presence.Event) bool { return e.AccountSid == acct.Sid })
	defer sub.Close()
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": presence stream for "+acct.Sid+"\n\n")
	flusher.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-keepalive.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		case e := <-sub.C:
			data, _ := json.Marshal(map[string]any{"identity": e.Identity, "status": e.Status, "previous": e.Previous,
				"bindings": e.Bindings, "at": e.At.UTC().Format(time.RFC3339Nano)})
			fmt.Fprintf(w, "event: presence\ndata: %s\n\n", data)
		}
		flusher.Flush()
	}
}
