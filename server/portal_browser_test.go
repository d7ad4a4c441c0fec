package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"

	"github.com/parleyhq/parley/examples/partner-app/app"
	"github.com/parleyhq/parley/internal/browsertest"
	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/store"
	"github.com/parleyhq/parley/usage"
)

// serveOn serves h on a fresh loopback listener until the test ends and
// returns its origin (http://127.0.0.1:PORT).
func serveOn(t testing.TB, ln net.Listener, h http.Handler) string {
	t.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// portalFrame waits for the portal's out-of-process iframe (Parley is
// another site than the partner page) and returns a context attached to it.
func portalFrame(t testing.TB, tab context.Context, prefix string) context.Context {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		infos, err := chromedp.Targets(tab)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range infos {
			if in.Type == "iframe" && strings.HasPrefix(in.URL, prefix) {
				ctx, cancel := chromedp.NewContext(tab, chromedp.WithTargetID(in.TargetID))
				t.Cleanup(cancel)
				if err := chromedp.Run(ctx); err != nil {
					t.Fatalf("attach to the portal frame: %v", err)
				}
				return ctx
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no portal iframe under %s appeared", prefix)
	return nil
}

func registerClient(t testing.TB, s *Server, acct, user string) {
	t.Helper()
	contact := "sip:" + user + "@127.0.0.1:5099;transport=tcp"
	_, err := s.registry.Apply(context.Background(), presence.Update{AccountSid: acct, Identity: "client:" + user, CallID: sid.Secret(10), CSeq: 1, Now: time.Now(),
		Contacts: []presence.Binding{{Contact: contact, Key: contact, Expires: time.Now().Add(time.Hour), Transport: "tcp", Source: "127.0.0.1:5099"}}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPortalInBrowser: the example partner app on 127.0.0.1:A embeds the
// portal from Parley on localhost:B in headless Chromium; the portal shows
// the account's data, presence changes live, a trigger made in the portal
// is visible over REST, and a page on another origin cannot frame it.
func TestPortalInBrowser(t *testing.T) {
	b := browsertest.Start(t)
	s, base := partnerServer(t)
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appOrigin := "http://" + appLn.Addr().String()
	p := newPartner(t, base, "Acme Cloud", appOrigin)
	p.api.must(200, "POST", "/v1/Partners/"+p.sid+"/Accounts/"+p.account, url.Values{"FriendlyName": {"Bluebird Dental"}})
	acct, err := s.Store().Account(context.Background(), p.account)
	if err != nil {
		t.Fatal(err)
	}

	// What the account has done so far: calls, a registered phone, usage.
	ctx := context.Background()
	now := time.Now()
	for i, c := range []struct {
		from, to, status string
		dur              time.Duration
	}{
		{"client:alice", "sip:+15550101@pstn.example", "completed", 3*time.Minute + 12*time.Second},
		{"+15550199", "client:frontdesk", "completed", 47 * time.Second},
		{"client:frontdesk", "client:alice", "no-answer", 0},
		{"+15550123", "client:alice", "busy", 0},
	} {
		start := now.Add(-time.Duration(4-i) * 17 * time.Minute)
		if err := s.Store().SaveCall(ctx, store.CallRecord{Sid: sid.New(sid.Call), AccountSid: acct.Sid, From: c.from, To: c.to, Direction: "inbound",
			Status: c.status, Started: start, Ended: start.Add(c.dur), Duration: c.dur}); err != nil {
			t.Fatal(err)
		}
		s.publish(usage.CallStarted(acct.Sid, sid.New(sid.Call), "inbound", "client", start)...)
		s.publish(usage.CallMinutes(acct.Sid, sid.New(sid.Call), "inbound", "client", c.dur, start)...)
	}
	for range 12 {
		s.publish(usage.APIRequest(acct.Sid, now))
	}
	registerClient(t, s, acct.Sid, "alice")
	registerClient(t, s, acct.Sid, "frontdesk")
	s.publish(usage.Registration(acct.Sid, "alice", now), usage.Registration(acct.Sid, "frontdesk", now))

	partnerApp := app.Handler(app.Config{ParleyURL: base, PartnerSid: p.sid, APISecret: p.secret, Kid: "k1", SigningKey: p.key,
		AccountSid: acct.Sid, CustomerName: "Bluebird Dental"})
	// /stale is the partner page whose first portal URL was already used:
	// the portal says its session ended and the snippet fetches a fresh URL.
	used := p.portalURL(t, base, acct.Sid)
	if res, err := http.Get(used); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
	}
	mux := http.NewServeMux()
	mux.Handle("/", partnerApp)
	mux.HandleFunc("GET /stale", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>stale</title><div id=p></div><script src="%s/embed/parley-embed.js"></script><script>
window.fetches = 0;
ParleyEmbed.mount(document.getElementById("p"), { fetchPortalUrl: async () => {
  window.fetches++;
  if (window.fetches === 1) return %q;
  return (await (await fetch("/parley/portal-url", { method: "POST" })).json()).url;
} });
</script>`, base, used)
	})
	serveOn(t, appLn, mux)

	tab := b.Tab()
	if err := chromedp.Run(tab, chromedp.Navigate(appOrigin+"/")); err != nil {
		t.Fatal(err)
	}
	frame := portalFrame(t, tab, base+"/portal/")
	// Rendered from the session cookie (HttpOnly, Secure, SameSite=None,
	// Partitioned: set in a third-party frame on http://localhost), and the
	// token is gone from the URL.
	b.Poll(frame, `document.querySelector('#account-name')?.textContent === 'Bluebird Dental' && location.search === ''`, 15*time.Second)
	b.Poll(frame, `document.querySelector('[data-identity="client:alice"]') !== null && document.querySelector('[data-identity="client:frontdesk"]') !== null`, 10*time.Second)
	b.Poll(frame, `document.getElementById('live')?.classList.contains('on')`, 10*time.Second)
	// The iframe was resized to the portal's height.
	b.Poll(tab, `parseInt(document.querySelector('#parley-portal iframe').style.height) > 480`, 10*time.Second)
	var cookieVisible bool
	if err := chromedp.Run(frame, chromedp.Evaluate(`document.cookie.includes('parley_portal')`, &cookieVisible)); err != nil || cookieVisible {
		t.Fatalf("session cookie visible to scripts (%v)", err)
	}

	// A client registering elsewhere appears live: a real SIP REGISTER over
	// TCP with an access token for client:bob.
	key, err := s.Store().CreateKey(ctx, acct.Sid, "phones")
	if err != nil {
		t.Fatal(err)
	}
	m := &msgServer{s: s, base: base, acct: acct, key: key}
	newSIPPhone(t, m, "tcp").registerToken(m, "bob")
	b.Poll(frame, `document.querySelector('[data-identity="client:bob"]')?.textContent.includes('available')`, 10*time.Second)
	browsertest.Screenshot(t, tab, "portal-clients")

	// Recent calls with status and duration.
	click := func(sel string) {
		t.Helper()
		if err := chromedp.Run(frame, chromedp.Evaluate(`document.querySelector('`+sel+`').click()`, nil)); err != nil {
			t.Fatal(err)
		}
	}
	click("#tab-calls")
	b.Poll(frame, `document.querySelectorAll('#calls-table tbody tr').length === 4 && document.querySelector('#calls-table').textContent.includes('3:12')`, 10*time.Second)
	browsertest.Screenshot(t, tab, "portal-calls")

	// Usage this month per category.
	click("#tab-usage")
	b.Poll(frame, `document.querySelector('[data-category="api-requests"]')?.textContent.includes('12')`, 15*time.Second)
	browsertest.Screenshot(t, tab, "portal-usage")

	// A trigger created in the portal shows up over REST.
	click("#tab-alerts")
	b.Poll(frame, `document.querySelector('#trigger-form') !== null`, 10*time.Second)
	fill := `(() => { const f = document.querySelector('#trigger-form');
		f.friendly_name.value = 'Minutes cap'; f.usage_category.value = 'calls'; f.trigger_by.value = 'usage';
		f.trigger_value.value = '500'; f.recurring.value = 'monthly'; f.callback_url.value = 'https://hooks.bluebird.test/usage';
		f.requestSubmit(); return true })()`
	if err := chromedp.Run(frame, chromedp.Evaluate(fill, nil)); err != nil {
		t.Fatal(err)
	}
	b.Poll(frame, `document.querySelector('#triggers-table')?.textContent.includes('Minutes cap')`, 10*time.Second)
	browsertest.Screenshot(t, tab, "portal-alerts")
	acctAPI := rest{t: t, base: base, user: acct.Sid, pass: acct.AuthToken}
	trigs := acctAPI.must(200, "GET", "/2010-04-01/Accounts/"+acct.Sid+"/Usage/Triggers.json", nil)["usage_triggers"].([]any)
	if len(trigs) != 1 || trigs[0].(map[string]any)["friendly_name"] != "Minutes cap" || trigs[0].(map[string]any)["recurring"] != "monthly" {
		t.Fatalf("triggers over REST: %v", trigs)
	}
	// ... and deleting it there removes it.
	click(`#triggers-table button`)
	b.Poll(frame, `document.querySelector('#triggers-empty') !== null`, 10*time.Second)
	if trigs := acctAPI.must(200, "GET", "/2010-04-01/Accounts/"+acct.Sid+"/Usage/Triggers.json", nil)["usage_triggers"].([]any); len(trigs) != 0 {
		t.Fatalf("trigger still there: %v", trigs)
	}

	// A used (or expired) portal URL: the snippet gets a fresh one by itself.
	if err := chromedp.Run(tab, chromedp.Navigate(appOrigin+"/stale")); err != nil {
		t.Fatal(err)
	}
	ended := portalFrame(t, tab, base+"/portal/")
	b.Poll(ended, `document.querySelector('#session-ended') !== null || document.querySelector('#account-name') !== null`, 10*time.Second)
	var fetches int
	if err := chromedp.Run(tab, chromedp.Evaluate(`window.fetches`, &fetches)); err == nil && fetches == 1 {
		browsertest.Screenshot(t, tab, "portal-session-ended")
	}
	b.Poll(tab, `window.fetches === 2`, 15*time.Second)
	stale := portalFrame(t, tab, base+"/portal/")
	b.Poll(stale, `document.querySelector('#account-name')?.textContent === 'Bluebird Dental'`, 15*time.Second)

	// A page on an origin the partner did not allow cannot frame the portal.
	evilLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	portalURL := p.portalURL(t, base, acct.Sid)
	evil := serveOn(t, evilLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>not a partner</title><h1>Someone else's page</h1><iframe id=f src=%q width=900 height=500></iframe>`, portalURL)
	}))
	before := map[string]bool{}
	if infos, err := chromedp.Targets(tab); err == nil {
		for _, in := range infos {
			before[string(in.TargetID)] = true
		}
	}
	// The same tab leaves the partner's page for the other origin's.
	evilTab := tab
	var mu sync.Mutex
	var logs []string
	chromedp.ListenTarget(evilTab, func(ev any) {
		if e, ok := ev.(*cdplog.EventEntryAdded); ok {
			mu.Lock()
			logs = append(logs, e.Entry.Text)
			mu.Unlock()
		}
	})
	if err := chromedp.Run(evilTab, cdplog.Enable(), chromedp.Navigate(evil+"/")); err != nil {
		t.Fatal(err)
	}
	blocked := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range logs {
			if strings.Contains(l, "frame-ancestors") {
				return true
			}
		}
		return false
	}
	for end := time.Now().Add(10 * time.Second); !blocked() && time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond)
	}
	if !blocked() {
		t.Errorf("no frame-ancestors violation reported; console: %v", logs)
	}
	// Nothing of the portal rendered in that page: no new frame target
	// holds the portal (attaching to frames here would stall screenshots).
	infos, err := chromedp.Targets(evilTab)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		// The portal's script removes the token from the URL as it starts:
		// a frame still showing it never ran the portal.
		if in.Type == "iframe" && !before[string(in.TargetID)] && strings.HasPrefix(in.URL, base+"/portal/") && !strings.Contains(in.URL, "?token=") {
			t.Errorf("the portal ran inside %s (frame %s)", evil, in.URL)
		}
	}
	browsertest.Screenshot(t, evilTab, "portal-blocked-origin")
}
