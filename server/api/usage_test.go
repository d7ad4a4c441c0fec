package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	twclient "github.com/twilio/twilio-go/client"

	"github.com/parleyhq/parley/internal/webhook"
	"github.com/parleyhq/parley/plugins"
	"github.com/parleyhq/parley/plugins/builtin"
	"github.com/parleyhq/parley/plugins/sdk"
	"github.com/parleyhq/parley/server/api"
	"github.com/parleyhq/parley/store"
	"github.com/parleyhq/parley/usage"
)

// TestMain doubles as a built-in plugin process: the supervisor re-executes
// this test binary as `<test binary> plugin serve <name>`.
func TestMain(m *testing.M) {
	hs := sdk.Handshake()
	if os.Getenv(hs.MagicCookieKey) == hs.MagicCookieValue && len(os.Args) >= 4 && os.Args[1] == "plugin" && os.Args[2] == "serve" {
		if err := builtin.Serve(context.Background(), os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// usageStack runs the real usage plugin as a subprocess and returns the
// client the API uses and a publisher.
func usageStack(t *testing.T) (*plugins.Supervisor, *usage.Client, *usage.Publisher) {
	t.Helper()
	dir := t.TempDir()
	cfg := usage.DefaultConfig()
	cfg.ClaimWait = 200 * time.Millisecond
	pcfg := plugins.DefaultConfig()
	pcfg.Dir = filepath.Join(dir, "plugins")
	pcfg.Use = map[string]string{string(sdk.KindUsage): builtin.Usage}
	penv, err := cfg.Plugin.PluginEnv(filepath.Join(dir, "usage.db"))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := plugins.NewCatalog(pcfg, builtin.Specs(), plugins.Command{Path: os.Args[0], Args: []string{"plugin", "serve"}},
		map[string][]string{builtin.Usage: penv})
	if err != nil {
		t.Fatal(err)
	}
	sup, err := plugins.NewSupervisor(pcfg, cat, plugins.Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sup.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sup.Close() })
	pub, err := usage.NewPublisher(sup, cfg, usage.PublisherOptions{SpoolDir: filepath.Join(dir, "spool")})
	if err != nil {
		t.Fatal(err)
	}
	pub.Start()
	t.Cleanup(func() { pub.Close(context.Background()) })
	return sup, usage.NewClient(sup, 5*time.Second), pub
}

type storeAccounts struct{ st *store.Store }

func (s storeAccounts) AuthToken(ctx context.Context, sid string) (string, error) {
	a, err := s.st.Account(ctx, sid)
	if err != nil {
		return "", err
	}
	return a.AuthToken, nil
}

func TestUsageDisabled(t *testing.T) {
	e := newEnv(t, api.Options{})
	u, p := e.as(e.parent)
	for _, path := range []string{"/Usage/Records.json", "/Usage/Triggers.json"} {
		r := e.do("GET", acctPath(e.parent.Sid)+path, u, p, nil, "")
		wantStatus(t, r, http.StatusServiceUnavailable, api.CodeServiceUnavailable)
	}
}

func TestUsageRecordsAndTriggers(t *testing.T) {
	sup, cli, pub := usageStack(t)
	e := newEnv(t, api.Options{Usage: cli})
	u, p := e.as(e.parent)
	other, err := e.st.CreateAccount(context.Background(), store.NewAccount{FriendlyName: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	base := acctPath(e.parent.Sid) + "/Usage"

	// A callback receiver that checks the signature with the helper library.
	got := make(chan url.Values, 10)
	validator := twclient.NewRequestValidator(e.parent.AuthToken)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		params := map[string]string{}
		for k := range r.PostForm {
			params[k] = r.PostForm.Get(k)
		}
		if !validator.Validate("http://"+r.Host+r.URL.RequestURI(), params, r.Header.Get("X-Twilio-Signature")) {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		got <- r.PostForm
	}))
	defer rcv.Close()
	// The receiver is on loopback, which the egress policy refuses by default.
	egress := webhook.NewPolicy(webhook.PolicyOptions{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	del, err := usage.NewDeliverer(sup, usage.DefaultConfig(), usage.DelivererOptions{Accounts: storeAccounts{e.st},
		Webhook: &webhook.Client{Policy: egress}})
	if err != nil {
		t.Fatal(err)
	}
	del.Start()
	defer del.Close()

	for i := range 3 {
		_ = pub.PublishAll(usage.CallEnded(e.parent.Sid, fmt.Sprintf("CA%d", i), "inbound", "sip", 90*time.Second, time.Now()))
	}
	_ = pub.Publish(usage.Event{AccountSid: other.Sid, Category: usage.Calls, Count: 1})
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := e.do("GET", base+"/Records/AllTime.json?Category=calls", u, p, nil, "")
		recs, _ := r.body["usage_records"].([]any)
		if len(recs) == 1 && recs[0].(map[string]any)["count"] == "3" {
			rec := recs[0].(map[string]any)
			if rec["usage"] != "6" || rec["usage_unit"] != "minutes" || rec["count_unit"] != "calls" {
				t.Fatalf("record %v", rec)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records never showed 3 calls: %s", r.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}

	today := time.Now().UTC().Format(time.DateOnly)
	recordTests := []struct {
		name, path string
		status     int
		count      string // of the first record; "" skips
		n          int    // records; -1 skips
	}{
		{"all categories", "/Records.json", 200, "", 13},
		{"filtered", "/Records.json?Category=calls-sip", 200, "3", 1},
		{"daily", "/Records/Daily.json?Category=calls&StartDate=" + today, 200, "3", 1},
		{"monthly", "/Records/Monthly.json?Category=calls-inbound", 200, "3", 1},
		{"yearly", "/Records/Yearly.json?Category=calls", 200, "3", 1},
		{"today", "/Records/Today.json?Category=calls", 200, "3", 1},
		{"yesterday", "/Records/Yesterday.json?Category=calls", 200, "0", 1},
		{"this month", "/Records/ThisMonth.json?Category=calls", 200, "3", 1},
		{"last month", "/Records/LastMonth.json?Category=calls", 200, "0", 1},
		{"range", "/Records.json?Category=calls&StartDate=2000-01-01&EndDate=2000-01-31", 200, "0", 1},
		{"paged", "/Records.json?PageSize=5", 200, "", 5},
		{"bad date", "/Records.json?StartDate=yesterday", 400, "", -1},
		{"end before start", "/Records.json?StartDate=2020-02-01&EndDate=2020-01-01", 400, "", -1},
		{"bad category", "/Records.json?Category=pizza", 400, "", -1},
		{"unknown param", "/Records.json?Colour=red", 400, "", -1},
		{"unknown subresource", "/Records/Hourly.json", 404, "", -1},
	}
	for _, tc := range recordTests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", base+tc.path, u, p, nil, "")
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if tc.n < 0 {
				return
			}
			recs, _ := r.body["usage_records"].([]any)
			if len(recs) != tc.n {
				t.Fatalf("%d records, want %d: %s", len(recs), tc.n, r.raw)
			}
			if tc.count != "" && recs[0].(map[string]any)["count"] != tc.count {
				t.Fatalf("count %v, want %s: %s", recs[0].(map[string]any)["count"], tc.count, r.raw)
			}
		})
	}

	// Triggers.
	bad := []struct {
		name string
		v    url.Values
	}{
		{"no category", url.Values{"TriggerValue": {"1"}, "CallbackUrl": {rcv.URL}}},
		{"bad category", url.Values{"UsageCategory": {"pizza"}, "TriggerValue": {"1"}, "CallbackUrl": {rcv.URL}}},
		{"no value", url.Values{"UsageCategory": {"calls"}, "CallbackUrl": {rcv.URL}}},
		{"bad value", url.Values{"UsageCategory": {"calls"}, "TriggerValue": {"lots"}, "CallbackUrl": {rcv.URL}}},
		{"no callback", url.Values{"UsageCategory": {"calls"}, "TriggerValue": {"1"}}},
		{"bad url", url.Values{"UsageCategory": {"calls"}, "TriggerValue": {"1"}, "CallbackUrl": {"ftp://x"}}},
		{"bad recurring", url.Values{"UsageCategory": {"calls"}, "TriggerValue": {"1"}, "CallbackUrl": {rcv.URL}, "Recurring": {"hourly"}}},
		{"bad by", url.Values{"UsageCategory": {"calls"}, "TriggerValue": {"1"}, "CallbackUrl": {rcv.URL}, "TriggerBy": {"price"}}},
		{"unknown param", url.Values{"UsageCategory": {"calls"}, "TriggerValue": {"1"}, "CallbackUrl": {rcv.URL}, "Colour": {"red"}}},
		{"bad action", url.Values{"UsageCategory": {"calls"}, "TriggerValue": {"1"}, "Action": {"explode"}}},
		{"limit without resource", url.Values{"UsageCategory": {"calls"}, "TriggerValue": {"1"}, "Action": {"limit-admission"}, "ActionLimit": {"0"}}},
		{"limit without limit", url.Values{"UsageCategory": {"calls"}, "TriggerValue": {"1"}, "Action": {"limit-admission"}, "ActionResource": {"calls"}}},
		{"negative limit", url.Values{"UsageCategory": {"calls"}, "TriggerValue": {"1"}, "Action": {"limit-admission"}, "ActionResource": {"calls"}, "ActionLimit": {"-1"}}},
	}
	for _, tc := range bad {
		t.Run("create "+tc.name, func(t *testing.T) {
			wantStatus(t, e.do("POST", base+"/Triggers.json", u, p, tc.v, ""), 400, api.CodeInvalidParameter)
		})
	}
	r := e.do("POST", base+"/Triggers.json", u, p, url.Values{"UsageCategory": {"calls"}, "TriggerValue": {"+2"}, "TriggerBy": {"count"},
		"Recurring": {"daily"}, "CallbackUrl": {rcv.URL + "/cb"}, "FriendlyName": {"two more calls"}}, "")
	wantStatus(t, r, http.StatusCreated, 0)
	trSid := r.str("sid")
	if r.str("trigger_value") != "5" || r.str("current_value") != "3" || r.str("callback_method") != "POST" || r.body["date_fired"] != nil ||
		r.str("usage_record_uri") == "" || r.str("uri") != base+"/Triggers/"+trSid+".json" {
		t.Fatalf("created %s", r.raw)
	}
	r = e.do("POST", base+"/Triggers.json", u, p, url.Values{"UsageCategory": {"messages"}, "TriggerValue": {"100"}, "TriggerBy": {"count"},
		"Action": {"limit-admission"}, "ActionResource": {"messages"}, "ActionLimit": {"0"}}, "")
	wantStatus(t, r, http.StatusCreated, 0)
	if r.str("action") != "limit-admission" || r.body["action_limit"] != float64(0) || r.str("callback_url") != "" || r.str("trigger_by") != "count" {
		t.Fatalf("action trigger %s", r.raw)
	}
	r = e.do("GET", base+"/Triggers.json?UsageCategory=calls", u, p, nil, "")
	if list, _ := r.body["usage_triggers"].([]any); r.status != 200 || len(list) != 1 {
		t.Fatalf("list %s", r.raw)
	}
	r = e.do("GET", base+"/Triggers.json?Recurring=monthly", u, p, nil, "")
	if list, _ := r.body["usage_triggers"].([]any); len(list) != 0 {
		t.Fatalf("filtered list %s", r.raw)
	}
	r = e.do("POST", base+"/Triggers/"+trSid+".json", u, p, url.Values{"FriendlyName": {"renamed"}}, "")
	if r.status != 200 || r.str("friendly_name") != "renamed" {
		t.Fatalf("update %s", r.raw)
	}
	wantStatus(t, e.do("POST", base+"/Triggers/"+trSid+".json", u, p, url.Values{"TriggerValue": {"9"}}, ""), 400, api.CodeInvalidParameter)
	// Another account cannot see it, nor can a made-up sid be found.
	ou, op := e.as(other)
	wantStatus(t, e.do("GET", acctPath(other.Sid)+"/Usage/Triggers/"+trSid+".json", ou, op, nil, ""), 404, api.CodeNotFound)
	wantStatus(t, e.do("GET", base+"/Triggers/UTnope.json", u, p, nil, ""), 404, api.CodeNotFound)
	wantStatus(t, e.do("GET", acctPath(e.parent.Sid)+"/Usage/Triggers.json", ou, op, nil, ""), 404, 0)

	// Two more calls cross it: one signed callback.
	for i := 3; i < 5; i++ {
		_ = pub.PublishAll(usage.CallEnded(e.parent.Sid, fmt.Sprintf("CA%d", i), "outbound", "client", time.Second, time.Now()))
	}
	select {
	case v := <-got:
		if v.Get("UsageTriggerSid") != trSid || v.Get("CurrentValue") != "5" || v.Get("IdempotencyToken") == "" {
			t.Fatalf("callback %v", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no callback")
	}
	r = e.do("GET", base+"/Triggers/"+trSid+".json", u, p, nil, "")
	if r.body["date_fired"] == nil || r.str("current_value") != "5" {
		t.Fatalf("after firing %s", r.raw)
	}
	wantStatus(t, e.do("DELETE", base+"/Triggers/"+trSid+".json", u, p, nil, ""), http.StatusNoContent, 0)
	wantStatus(t, e.do("DELETE", base+"/Triggers/"+trSid+".json", u, p, nil, ""), 404, api.CodeNotFound)

	// The plugin going away turns into 503, not 500.
	sup.Close()
	wantStatus(t, e.do("GET", base+"/Triggers.json", u, p, nil, ""), http.StatusServiceUnavailable, api.CodeServiceUnavailable)
}
