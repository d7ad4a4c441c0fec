package api_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/parleyhq/parley/server/api"
	"github.com/parleyhq/parley/store"
)

func TestIncomingNumbers(t *testing.T) {
	e := newEnv(t, api.Options{})
	ctx := context.Background()
	u, p := e.as(e.parent)
	base := acctPath(e.parent.Sid) + "/IncomingNumbers"
	app, _ := e.st.CreateApplication(ctx, store.Application{AccountSid: e.parent.Sid, VoiceURL: "http://127.0.0.1:9/voice"})
	other, _ := e.st.CreateAccount(ctx, store.NewAccount{FriendlyName: "Other"})
	otherApp, _ := e.st.CreateApplication(ctx, store.Application{AccountSid: other.Sid})

	r := e.do("POST", base+".json", u, p, url.Values{"PhoneNumber": {"+1 (555) 010-2000"}, "VoiceApplicationSid": {app.Sid}}, "")
	wantStatus(t, r, 201, 0)
	num := r.str("sid")
	if r.str("phone_number") != "+15550102000" || r.str("application_sid") != app.Sid || r.str("sms_application_sid") != app.Sid ||
		r.str("uri") != base+"/"+num+".json" {
		t.Fatalf("created %s", r.raw)
	}
	for _, c := range []struct {
		name   string
		v      url.Values
		status int
		code   int
	}{
		{"taken", url.Values{"PhoneNumber": {"+15550102000"}}, 409, api.CodeConflict},
		{"missing", url.Values{"FriendlyName": {"x"}}, 400, api.CodeInvalidParameter},
		{"malformed", url.Values{"PhoneNumber": {"+1 555 CALL NOW"}}, 400, api.CodeInvalidParameter},
		{"unknown parameter", url.Values{"PhoneNumber": {"+15550102001"}, "SmsUrl": {"http://x"}}, 400, api.CodeInvalidParameter},
		{"other account's app", url.Values{"PhoneNumber": {"+15550102001"}, "ApplicationSid": {otherApp.Sid}}, 400, api.CodeInvalidParameter},
		{"not an app sid", url.Values{"PhoneNumber": {"+15550102001"}, "ApplicationSid": {"CA123"}}, 400, api.CodeInvalidParameter},
		{"aliases differ", url.Values{"PhoneNumber": {"+15550102001"}, "ApplicationSid": {app.Sid}, "VoiceApplicationSid": {""}}, 400, api.CodeInvalidParameter},
	} {
		t.Run(c.name, func(t *testing.T) { wantStatus(t, e.do("POST", base+".json", u, p, c.v, ""), c.status, c.code) })
	}
	wantStatus(t, e.do("POST", base+".json", u, p, url.Values{"PhoneNumber": {"desk-1"}}, ""), 201, 0)

	l := e.do("GET", base+".json?PhoneNumber=%2B15550102000", u, p, nil, "").body["incoming_numbers"].([]any)
	if len(l) != 1 {
		t.Fatalf("filtered list %v", l)
	}
	if l := e.do("GET", base+".json", u, p, nil, "").body["incoming_numbers"].([]any); len(l) != 2 {
		t.Fatalf("list %v", l)
	}
	r = e.do("POST", base+"/"+num+".json", u, p, url.Values{"FriendlyName": {"Sales"}, "ApplicationSid": {""}}, "")
	if r.status != 200 || r.str("friendly_name") != "Sales" || r.str("application_sid") != "" {
		t.Fatalf("update %s", r.raw)
	}
	// Another account sees none of it.
	ou, op := e.as(other)
	wantStatus(t, e.do("GET", base+"/"+num+".json", ou, op, nil, ""), 404, api.CodeNotFound)
	wantStatus(t, e.do("GET", acctPath(other.Sid)+"/IncomingNumbers/"+num+".json", ou, op, nil, ""), 404, api.CodeNotFound)
	wantStatus(t, e.do("DELETE", base+"/"+num+".json", u, p, nil, ""), 204, 0)
	wantStatus(t, e.do("GET", base+"/"+num+".json", u, p, nil, ""), 404, api.CodeNotFound)
	// The number is free again.
	wantStatus(t, e.do("POST", acctPath(other.Sid)+"/IncomingNumbers.json", ou, op, url.Values{"PhoneNumber": {"+15550102000"}}, ""), 201, 0)
}
