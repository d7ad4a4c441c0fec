package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/server/api"
	"github.com/parleyhq/parley/store"
)

func TestSIPDomainsAndCredentials(t *testing.T) {
	forgot := 0
	e := newEnv(t, api.Options{SIP: api.SIPAdmin{Realm: "parley", CredentialsChanged: func() { forgot++ }}})
	u, p := e.as(e.parent)
	base := acctPath(e.parent.Sid) + "/SIP"

	r := e.do("POST", base+"/Domains.json", u, p, url.Values{"DomainName": {"PBX.Example.test"}, "VoiceUrl": {"http://127.0.0.1:9/voice"}}, "")
	wantStatus(t, r, 201, 0)
	dom := r.str("sid")
	if r.str("domain_name") != "pbx.example.test" || r.body["sip_registration"] != true || r.str("voice_method") != "POST" {
		t.Fatalf("domain %s", r.raw)
	}
	wantStatus(t, e.do("POST", base+"/Domains.json", u, p, url.Values{"DomainName": {"pbx.example.test"}}, ""), 409, api.CodeConflict)
	wantStatus(t, e.do("POST", base+"/Domains.json", u, p, url.Values{"DomainName": {"bad domain"}}, ""), 400, api.CodeDomainNameRefused)
	wantStatus(t, e.do("POST", base+"/Domains.json", u, p, url.Values{}, ""), 400, api.CodeInvalidParameter)
	r = e.do("POST", base+"/Domains/"+dom+".json", u, p, url.Values{"SipRegistration": {"false"}, "VoiceMethod": {"get"}}, "")
	if r.status != 200 || r.body["sip_registration"] != false || r.str("voice_method") != "GET" || r.str("voice_url") != "http://127.0.0.1:9/voice" {
		t.Fatalf("update: %s", r.raw)
	}
	wantStatus(t, e.do("POST", base+"/Domains/"+dom+".json", u, p, url.Values{"SipRegistration": {"maybe"}}, ""), 400, api.CodeInvalidParameter)
	wantStatus(t, e.do("POST", base+"/Domains/"+dom+".json", u, p, url.Values{"SipRegistration": {"true"}}, ""), 200, 0)

	r = e.do("POST", base+"/CredentialLists.json", u, p, url.Values{"FriendlyName": {"staff"}}, "")
	wantStatus(t, r, 201, 0)
	list := r.str("sid")
	r = e.do("POST", base+"/CredentialLists/"+list+"/Credentials.json", u, p, url.Values{"Username": {"alice"}, "Password": {"long-enough-1"}}, "")
	wantStatus(t, r, 201, 0)
	cred := r.str("sid")
	if _, leaked := r.body["password"]; leaked || r.str("username") != "alice" {
		t.Fatalf("credential %s", r.raw)
	}
	wantStatus(t, e.do("POST", base+"/CredentialLists/"+list+"/Credentials.json", u, p, url.Values{"Username": {"bob"}, "Password": {"short"}}, ""), 400, api.CodeInvalidParameter)
	wantStatus(t, e.do("POST", base+"/CredentialLists/"+list+"/Credentials.json", u, p, url.Values{"Username": {"alice"}, "Password": {"long-enough-2"}}, ""), 409, api.CodeConflict)
	wantStatus(t, e.do("POST", base+"/Domains/"+dom+"/CredentialListMappings.json", u, p, url.Values{"CredentialListSid": {list}}, ""), 201, 0)
	wantStatus(t, e.do("POST", base+"/Domains/"+dom+"/CredentialListMappings.json", u, p, url.Values{"CredentialListSid": {"CLnope"}}, ""), 400, api.CodeInvalidParameter)

	// The registrar finds the credential through the mapping.
	dc, err := e.st.DigestCredential(context.Background(), "pbx.example.test", "alice")
	if err != nil || dc.AccountSid != e.parent.Sid || dc.Realm != "parley" {
		t.Fatalf("digest credential %+v %v", dc, err)
	}
	if l := e.do("GET", base+"/Domains/"+dom+"/CredentialListMappings.json", u, p, nil, "").body["credential_list_mappings"].([]any); len(l) != 1 {
		t.Fatalf("mappings %v", l)
	}
	if l := e.do("GET", base+"/CredentialLists/"+list+"/Credentials.json", u, p, nil, "").body["credentials"].([]any); len(l) != 1 {
		t.Fatalf("credentials %v", l)
	}
	// Another account sees none of it.
	other, _ := e.st.CreateAccount(context.Background(), store.NewAccount{})
	wantStatus(t, e.do("GET", acctPath(other.Sid)+"/SIP/Domains/"+dom+".json", other.Sid, other.AuthToken, nil, ""), 404, api.CodeNotFound)
	wantStatus(t, e.do("GET", acctPath(e.parent.Sid)+"/SIP/Domains/"+dom+".json", other.Sid, other.AuthToken, nil, ""), 404, api.CodeNotFound)

	wantStatus(t, e.do("DELETE", base+"/CredentialLists/"+list+"/Credentials/"+cred+".json", u, p, nil, ""), 204, 0)
	if _, err := e.st.DigestCredential(context.Background(), "pbx.example.test", "alice"); err == nil {
		t.Fatal("deleted credential still found")
	}
	wantStatus(t, e.do("DELETE", base+"/Domains/"+dom+"/CredentialListMappings/"+list+".json", u, p, nil, ""), 204, 0)
	wantStatus(t, e.do("DELETE", base+"/Domains/"+dom+".json", u, p, nil, ""), 204, 0)
	wantStatus(t, e.do("GET", base+"/Domains/"+dom+".json", u, p, nil, ""), 404, api.CodeNotFound)
	if forgot < 5 {
		t.Fatalf("credential cache told of %d changes", forgot)
	}
}

func TestPresenceListAndStream(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg, err := presence.NewMemory(ctx, presence.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	go reg.Run(ctx)
	e := newEnv(t, api.Options{SIP: api.SIPAdmin{Realm: "parley", Presence: reg}})
	u, p := e.as(e.parent)

	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/Accounts/"+e.parent.Sid+"/Presence/Stream", nil)
	req.SetBasicAuth(u, p)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	now := time.Now()
	other, _ := e.st.CreateAccount(ctx, store.NewAccount{})
	for _, acct := range []string{other.Sid, e.parent.Sid} { // the other account's change must not be streamed
		if _, err := reg.Apply(ctx, presence.Update{AccountSid: acct, Identity: "client:alice", CallID: "c1", CSeq: 1, Now: now,
			Contacts: []presence.Binding{{Key: "k", Contact: "sip:alice@127.0.0.1:5060", Expires: now.Add(time.Minute), Transport: "udp", Source: "127.0.0.1:5060", UserAgent: "test"}}}); err != nil {
			t.Fatal(err)
		}
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(3 * time.Second)
	var event map[string]any
	for event == nil {
		select {
		case l := <-lines:
			if d, ok := strings.CutPrefix(l, "data: "); ok {
				json.Unmarshal([]byte(d), &event)
			}
		case <-deadline:
			t.Fatal("no presence event streamed")
		}
	}
	if event["identity"] != "client:alice" || event["status"] != "available" {
		t.Fatalf("event %v", event)
	}
	r := e.do("GET", "/v1/Accounts/"+e.parent.Sid+"/Presence", u, p, nil, "")
	wantStatus(t, r, 200, 0)
	ids := r.body["identities"].([]any)
	if len(ids) != 1 {
		t.Fatalf("presence %s", r.raw)
	}
	b := ids[0].(map[string]any)["bindings"].([]any)[0].(map[string]any)
	if b["transport"] != "udp" || b["user_agent"] != "test" || b["expires_in"].(float64) < 50 {
		t.Fatalf("binding %v", b)
	}
	wantStatus(t, e.do("GET", "/v1/Accounts/"+other.Sid+"/Presence", u, p, nil, ""), 404, api.CodeNotFound)
	wantStatus(t, e.do("GET", "/v1/Nope", u, p, nil, ""), 404, api.CodeNotFound)
}

func TestSIPDomainNamesRefused(t *testing.T) {
	e := newEnv(t, api.Options{SIP: api.SIPAdmin{Realm: "parley", ReservedDomainNames: []string{"sip.parley.example", "Parley.Example."}}})
	u, p := e.as(e.parent)
	base := acctPath(e.parent.Sid) + "/SIP/Domains.json"
	for _, name := range []string{
		"127.0.0.1", "0.0.0.0", "10.1.2.3", "::1", "[::1]", "[::ffff:127.0.0.1]", "fe80::1", "2130706433", "127.1",
		"localhost", "LOCALHOST.", "pbx.localhost", "bad domain", "under_score.example", "-pbx.example", "pbx-.example",
		"a..example", ".example", strings.Repeat("a", 64) + ".example", strings.Repeat("abcdefghi.", 26) + "example",
		"pbx.example/evil", "pbx.example:5060", "SIP.Parley.Example", "parley.example", "parley.example.",
	} {
		r := e.do("POST", base, u, p, url.Values{"DomainName": {name}}, "")
		wantStatus(t, r, 400, api.CodeDomainNameRefused)
		if !strings.Contains(r.str("message"), "DomainName") {
			t.Errorf("%q: message %q does not name the parameter", name, r.str("message"))
		}
	}
	r := e.do("POST", base, u, p, url.Values{"DomainName": {"PBX.Tenant.Example."}}, "")
	wantStatus(t, r, 201, 0)
	if r.str("domain_name") != "pbx.tenant.example" {
		t.Fatalf("domain_name %q, want the trailing dot and case normalised", r.str("domain_name"))
	}
	// A domain's name cannot be changed, so an update cannot bring a refused name in.
	upd := acctPath(e.parent.Sid) + "/SIP/Domains/" + r.str("sid") + ".json"
	wantStatus(t, e.do("POST", upd, u, p, url.Values{"DomainName": {"127.0.0.1"}}, ""), 400, api.CodeInvalidParameter)
}
