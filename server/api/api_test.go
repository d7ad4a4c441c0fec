package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/server/api"
	"github.com/parleyhq/parley/store"
)

type env struct {
	t      *testing.T
	st     *store.Store
	srv    *httptest.Server
	parent store.Account
}

func newEnv(t *testing.T, opts api.Options) *env {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(st, opts))
	t.Cleanup(func() { srv.Close(); st.Close() })
	parent, err := st.CreateAccount(context.Background(), store.NewAccount{FriendlyName: "Parent"})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, st: st, srv: srv, parent: parent}
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r resp) str(k string) string { s, _ := r.body[k].(string); return s }

// do sends a request with Basic credentials user:pass ("" user: none). A
// url.Values body is form-encoded; a string body is sent as is with ctype.
func (e *env) do(method, path, user, pass string, body any, ctype string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case url.Values:
		rd = strings.NewReader(b.Encode())
		if ctype == "" {
			ctype = "application/x-www-form-urlencoded"
		}
	case string:
		rd = strings.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			e.t.Fatalf("%s %s: non-JSON body %q", method, path, raw)
		}
	}
	return out
}

func (e *env) as(a store.Account) (string, string) { return a.Sid, a.AuthToken }

type rawResp struct {
	status      int
	ctype, body string
}

// raw fetches a non-JSON resource.
func (e *env) raw(method, path, user, pass string) rawResp {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, nil)
	req.SetBasicAuth(user, pass)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return rawResp{res.StatusCode, res.Header.Get("Content-Type"), string(b)}
}

func acctPath(sid string) string { return api.Prefix + "/Accounts/" + sid }

func wantStatus(t *testing.T, r resp, status, code int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if code != 0 {
		if got, _ := r.body["code"].(float64); int(got) != code {
			t.Fatalf("code %v, want %d: %s", r.body["code"], code, r.raw)
		}
		if r.str("message") == "" || r.str("more_info") == "" {
			t.Fatalf("error body lacks message/more_info: %s", r.raw)
		}
	}
}

func TestAccountsLifecycle(t *testing.T) {
	e := newEnv(t, api.Options{})
	u, p := e.as(e.parent)

	r := e.do("POST", api.Prefix+"/Accounts.json", u, p, url.Values{"FriendlyName": {"Sub one"}}, "")
	wantStatus(t, r, 201, 0)
	subSid, subToken := r.str("sid"), r.str("auth_token")
	if r.str("owner_account_sid") != e.parent.Sid || r.str("status") != "active" || r.str("friendly_name") != "Sub one" {
		t.Fatalf("created %s", r.raw)
	}
	if !strings.HasSuffix(r.str("date_created"), "+0000") || r.str("uri") != acctPath(subSid)+".json" {
		t.Fatalf("date/uri shape: %s", r.raw)
	}

	r = e.do("GET", api.Prefix+"/Accounts.json", u, p, nil, "")
	wantStatus(t, r, 200, 0)
	if accts := r.body["accounts"].([]any); len(accts) != 2 {
		t.Fatalf("parent lists %d accounts", len(accts))
	}
	// A subaccount sees only itself.
	r = e.do("GET", api.Prefix+"/Accounts.json", subSid, subToken, nil, "")
	if accts := r.body["accounts"].([]any); len(accts) != 1 {
		t.Fatalf("subaccount lists %d accounts", len(accts))
	}
	wantStatus(t, e.do("POST", api.Prefix+"/Accounts.json", subSid, subToken, nil, ""), 403, api.CodeForbidden)

	r = e.do("POST", acctPath(subSid)+".json", u, p, url.Values{"FriendlyName": {"Renamed"}, "Status": {"suspended"}}, "")
	wantStatus(t, r, 200, 0)
	if r.str("friendly_name") != "Renamed" || r.str("status") != "suspended" {
		t.Fatalf("update: %s", r.raw)
	}
	wantStatus(t, e.do("GET", acctPath(subSid)+".json", subSid, subToken, nil, ""), 403, api.CodeAccountNotActive)

	wantStatus(t, e.do("POST", acctPath(subSid)+".json", u, p, url.Values{"Status": {"closed"}}, ""), 200, 0)
	wantStatus(t, e.do("GET", acctPath(subSid)+".json", subSid, subToken, nil, ""), 401, api.CodeAuthFailed)
	wantStatus(t, e.do("POST", acctPath(subSid)+".json", u, p, url.Values{"Status": {"active"}}, ""), 409, api.CodeConflict)

	wantStatus(t, e.do("POST", acctPath(e.parent.Sid)+".json", u, p, url.Values{"Status": {"suspended"}}, ""), 403, api.CodeForbidden)
	wantStatus(t, e.do("POST", acctPath(e.parent.Sid)+".json", u, p, url.Values{"Status": {"asleep"}}, ""), 400, api.CodeInvalidParameter)
	wantStatus(t, e.do("GET", api.Prefix+"/Accounts.json?Status=asleep", u, p, nil, ""), 400, api.CodeInvalidParameter)
}

func TestAuth(t *testing.T) {
	e := newEnv(t, api.Options{})
	ctx := context.Background()
	other, _ := e.st.CreateAccount(ctx, store.NewAccount{FriendlyName: "Other"})
	sub, _ := e.st.CreateAccount(ctx, store.NewAccount{FriendlyName: "Sub", OwnerAccountSid: e.parent.Sid})
	key, _ := e.st.CreateKey(ctx, e.parent.Sid, "k")
	revoked, _ := e.st.CreateKey(ctx, e.parent.Sid, "r")
	if err := e.st.RevokeKey(ctx, revoked.Sid); err != nil {
		t.Fatal(err)
	}
	susp, _ := e.st.CreateAccount(ctx, store.NewAccount{FriendlyName: "Suspended"})
	s := store.StatusSuspended
	e.st.UpdateAccount(ctx, susp.Sid, store.AccountUpdate{Status: &s})

	parentApps := acctPath(e.parent.Sid) + "/Applications.json"
	tests := []struct {
		name, user, pass, path string
		status, code           int
	}{
		{"no credentials", "", "", parentApps, 401, api.CodeAuthFailed},
		{"wrong token", e.parent.Sid, "nope", parentApps, 401, api.CodeAuthFailed},
		{"unknown account", "AC00000000000000000000000000000000", "x", parentApps, 401, api.CodeAuthFailed},
		{"not a sid", "alice", "x", parentApps, 401, api.CodeAuthFailed},
		{"own account", e.parent.Sid, e.parent.AuthToken, parentApps, 200, 0},
		{"own subaccount", e.parent.Sid, e.parent.AuthToken, acctPath(sub.Sid) + "/Applications.json", 200, 0},
		{"other account's sid", e.parent.Sid, e.parent.AuthToken, acctPath(other.Sid) + "/Applications.json", 404, api.CodeNotFound},
		{"subaccount reads parent", sub.Sid, sub.AuthToken, parentApps, 404, api.CodeNotFound},
		{"malformed account sid", e.parent.Sid, e.parent.AuthToken, acctPath("ACxyz") + "/Applications.json", 404, api.CodeNotFound},
		{"api key", key.Sid, key.Secret, parentApps, 200, 0},
		{"api key wrong secret", key.Sid, "nope", parentApps, 401, api.CodeAuthFailed},
		{"api key on Accounts", key.Sid, key.Secret, api.Prefix + "/Accounts.json", 403, api.CodeForbidden},
		{"api key on Keys", key.Sid, key.Secret, acctPath(e.parent.Sid) + "/Keys.json", 403, api.CodeForbidden},
		{"revoked key", revoked.Sid, revoked.Secret, parentApps, 401, api.CodeAuthFailed},
		{"suspended account", susp.Sid, susp.AuthToken, acctPath(susp.Sid) + "/Applications.json", 403, api.CodeAccountNotActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("GET", tt.path, tt.user, tt.pass, nil, "")
			wantStatus(t, r, tt.status, tt.code)
			if tt.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
}

func TestKeys(t *testing.T) {
	e := newEnv(t, api.Options{})
	u, p := e.as(e.parent)
	keys := acctPath(e.parent.Sid) + "/Keys"
	r := e.do("POST", keys+".json", u, p, url.Values{"FriendlyName": {"ci"}}, "")
	wantStatus(t, r, 201, 0)
	keySid, secret := r.str("sid"), r.str("secret")
	if !strings.HasPrefix(keySid, "SK") || len(secret) != 32 {
		t.Fatalf("created key %s", r.raw)
	}
	r = e.do("GET", keys+"/"+keySid+".json", u, p, nil, "")
	wantStatus(t, r, 200, 0)
	if _, shown := r.body["secret"]; shown {
		t.Fatal("secret shown after creation")
	}
	r = e.do("POST", keys+"/"+keySid+".json", u, p, url.Values{"FriendlyName": {"renamed"}}, "")
	if r.str("friendly_name") != "renamed" {
		t.Fatalf("rename: %s", r.raw)
	}
	r = e.do("GET", keys+".json", u, p, nil, "")
	if n := len(r.body["keys"].([]any)); n != 1 {
		t.Fatalf("%d keys listed", n)
	}
	// The key authenticates until it is deleted (revoked).
	wantStatus(t, e.do("GET", acctPath(e.parent.Sid)+"/Applications.json", keySid, secret, nil, ""), 200, 0)
	wantStatus(t, e.do("DELETE", keys+"/"+keySid+".json", u, p, nil, ""), 204, 0)
	wantStatus(t, e.do("GET", acctPath(e.parent.Sid)+"/Applications.json", keySid, secret, nil, ""), 401, api.CodeAuthFailed)
	wantStatus(t, e.do("GET", keys+"/"+keySid+".json", u, p, nil, ""), 404, api.CodeNotFound)
	wantStatus(t, e.do("DELETE", keys+"/"+keySid+".json", u, p, nil, ""), 404, api.CodeNotFound)
	if n := len(e.do("GET", keys+".json", u, p, nil, "").body["keys"].([]any)); n != 0 {
		t.Fatalf("%d keys listed after revoke", n)
	}
}

func TestApplications(t *testing.T) {
	e := newEnv(t, api.Options{})
	u, p := e.as(e.parent)
	apps := acctPath(e.parent.Sid) + "/Applications"
	r := e.do("POST", apps+".json", u, p, url.Values{
		"FriendlyName": {"IVR"}, "VoiceUrl": {"https://example.test/voice"}, "VoiceMethod": {"get"},
		"StatusCallback": {"http://127.0.0.1:9/status"}, "SmsUrl": {"http://127.0.0.1:9/sms"}, "ApiVersion": {"2010-04-01"},
	}, "")
	wantStatus(t, r, 201, 0)
	appSid := r.str("sid")
	if r.str("voice_method") != "GET" || r.str("messaging_url") != "http://127.0.0.1:9/sms" || r.str("sms_url") != r.str("messaging_url") ||
		r.str("voice_fallback_method") != "POST" || r.str("account_sid") != e.parent.Sid {
		t.Fatalf("created %s", r.raw)
	}
	// JSON bodies work too.
	r = e.do("POST", apps+"/"+appSid+".json", u, p, `{"VoiceUrl":"http://127.0.0.1:9/v2","VoiceFallbackUrl":"http://127.0.0.1:9/fb"}`, "application/json")
	wantStatus(t, r, 200, 0)
	if r.str("voice_url") != "http://127.0.0.1:9/v2" || r.str("friendly_name") != "IVR" || r.str("voice_fallback_url") != "http://127.0.0.1:9/fb" {
		t.Fatalf("update: %s", r.raw)
	}
	e.do("POST", apps+".json", u, p, url.Values{"FriendlyName": {"Other"}}, "")
	r = e.do("GET", apps+".json?FriendlyName=IVR", u, p, nil, "")
	if l := r.body["applications"].([]any); len(l) != 1 {
		t.Fatalf("filter returned %d", len(l))
	}

	bad := []struct {
		name string
		form url.Values
		msg  string
	}{
		{"relative url", url.Values{"VoiceUrl": {"/voice"}}, "VoiceUrl"},
		{"ftp url", url.Values{"VoiceUrl": {"ftp://x/y"}}, "VoiceUrl"},
		{"bad method", url.Values{"VoiceMethod": {"PUT"}}, "VoiceMethod"},
		{"unknown param", url.Values{"VoiceUrll": {"http://x"}}, "VoiceUrll"},
		{"repeated param", url.Values{"VoiceUrl": {"http://x", "http://y"}}, "VoiceUrl"},
		{"conflicting aliases", url.Values{"SmsUrl": {"http://a"}, "MessagingUrl": {"http://b"}}, "SmsUrl"},
		{"api version", url.Values{"ApiVersion": {"2008-08-01"}}, "ApiVersion"},
		{"long name", url.Values{"FriendlyName": {strings.Repeat("x", 65)}}, "FriendlyName"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			r := e.do("POST", apps+".json", u, p, b.form, "")
			wantStatus(t, r, 400, api.CodeInvalidParameter)
			if !strings.Contains(r.str("message"), b.msg) {
				t.Fatalf("message %q does not name %q", r.str("message"), b.msg)
			}
		})
	}
	wantStatus(t, e.do("DELETE", apps+"/"+appSid+".json", u, p, nil, ""), 204, 0)
	wantStatus(t, e.do("GET", apps+"/"+appSid+".json", u, p, nil, ""), 404, api.CodeNotFound)
	// An application of another account is invisible.
	other, _ := e.st.CreateAccount(context.Background(), store.NewAccount{})
	oa, _ := e.st.CreateApplication(context.Background(), store.Application{AccountSid: other.Sid})
	wantStatus(t, e.do("GET", apps+"/"+oa.Sid+".json", u, p, nil, ""), 404, api.CodeNotFound)
}

func TestPaging(t *testing.T) {
	e := newEnv(t, api.Options{})
	u, p := e.as(e.parent)
	apps := acctPath(e.parent.Sid) + "/Applications.json"
	for i := 0; i < 5; i++ {
		wantStatus(t, e.do("POST", apps, u, p, url.Values{"FriendlyName": {"a"}}, ""), 201, 0)
	}
	seen := map[string]bool{}
	next := apps + "?PageSize=2&FriendlyName=a"
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("paging does not end")
		}
		r := e.do("GET", next, u, p, nil, "")
		wantStatus(t, r, 200, 0)
		for _, a := range r.body["applications"].([]any) {
			sid := a.(map[string]any)["sid"].(string)
			if seen[sid] {
				t.Fatalf("%s seen twice", sid)
			}
			seen[sid] = true
		}
		if r.body["page_size"].(float64) != 2 || !strings.Contains(r.str("first_page_uri"), "FriendlyName=a") {
			t.Fatalf("envelope %s", r.raw)
		}
		if pages > 0 && r.body["previous_page_uri"] == nil {
			t.Fatal("no previous_page_uri after page 0")
		}
		next = r.str("next_page_uri")
	}
	if len(seen) != 5 {
		t.Fatalf("paged through %d of 5", len(seen))
	}
	for _, q := range []string{"PageSize=0", "PageSize=1001", "PageSize=x", "Page=-1"} {
		wantStatus(t, e.do("GET", apps+"?"+q, u, p, nil, ""), 400, api.CodeInvalidParameter)
	}
}

func TestMalformedRequests(t *testing.T) {
	e := newEnv(t, api.Options{})
	u, p := e.as(e.parent)
	apps := acctPath(e.parent.Sid) + "/Applications.json"
	tests := []struct {
		name, body, ctype string
		status, code      int
	}{
		{"bad percent escape", "FriendlyName=%zz", "application/x-www-form-urlencoded", 400, api.CodeMalformedBody},
		{"invalid utf-8", "FriendlyName=%ff%fe", "application/x-www-form-urlencoded", 400, api.CodeMalformedBody},
		{"json syntax", `{"FriendlyName":`, "application/json", 400, api.CodeMalformedBody},
		{"json nested", `{"FriendlyName":{"a":1}}`, "application/json", 400, api.CodeMalformedBody},
		{"json array top", `["a"]`, "application/json", 400, api.CodeMalformedBody},
		{"json trailing", `{"FriendlyName":"a"} {}`, "application/json", 400, api.CodeMalformedBody},
		{"json null", `null`, "application/json", 400, api.CodeMalformedBody},
		{"xml", `<a/>`, "application/xml", 415, api.CodeUnsupportedMedia},
		{"bad content type", `a=b`, "text/;;", 415, api.CodeUnsupportedMedia},
		{"too large", "FriendlyName=" + strings.Repeat("a", api.MaxBodyBytes), "application/x-www-form-urlencoded", 413, api.CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, e.do("POST", apps, u, p, tt.body, tt.ctype), tt.status, tt.code)
		})
	}
	// Nothing was stored by the failed requests.
	if l := e.do("GET", apps, u, p, nil, "").body["applications"].([]any); len(l) != 0 {
		t.Fatalf("%d applications stored by bad requests", len(l))
	}
	wantStatus(t, e.do("GET", api.Prefix+"/Nope.json", u, p, nil, ""), 404, api.CodeNotFound)
	r := e.do("DELETE", acctPath(e.parent.Sid)+".json", u, p, nil, "")
	wantStatus(t, r, 405, api.CodeMethodNotAllowed)
	if r.header.Get("Allow") != "GET, POST" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}
	wantStatus(t, e.do("GET", acctPath(e.parent.Sid), u, p, nil, ""), 404, api.CodeNotFound) // no .json
}
