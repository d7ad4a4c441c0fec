package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/store"
)

const operatorToken = "operator-token-for-tests"

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// partnerServer starts Parley (with the real partners plugin as a
// subprocess) reachable as http://localhost:PORT, its public URL.
func partnerServer(t testing.TB) (*Server, string) {
	t.Helper()
	cfg := testConfig(t)
	port := freePort(t)
	cfg.HTTP.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	cfg.PublicURL = fmt.Sprintf("http://localhost:%d", port)
	cfg.Partners.OperatorToken = operatorToken
	cfg.Plugins.CallTimeout = 5 * time.Second
	s, _ := started(t, cfg)
	waitReady(t, cfg.PublicURL)
	return s, cfg.PublicURL
}

type rest struct {
	t          testing.TB
	base       string
	user, pass string
}

func (c rest) do(method, path string, form url.Values) (int, map[string]any) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

func (c rest) must(want int, method, path string, form url.Values) map[string]any {
	c.t.Helper()
	st, out := c.do(method, path, form)
	if st != want {
		c.t.Fatalf("%s %s: %d %v, want %d", method, path, st, out, want)
	}
	return out
}

// partnerFixture is a partner with an Ed25519 key and one account.
type partnerFixture struct {
	sid, secret string
	key         ed25519.PrivateKey
	api         rest
	account     string
}

func newPartner(t testing.TB, base, name string, origins ...string) partnerFixture {
	t.Helper()
	op := rest{t: t, base: base, user: "operator", pass: operatorToken}
	p := op.must(201, "POST", "/v1/Partners", url.Values{"FriendlyName": {name}, "AllowedOrigins": {strings.Join(origins, ",")}})
	f := partnerFixture{sid: p["sid"].(string), secret: p["api_secret"].(string)}
	_, f.key, _ = ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(f.key.Public())
	op.must(201, "POST", "/v1/Partners/"+f.sid+"/Keys", url.Values{"Kid": {"k1"}, "Type": {"ed25519"},
		"PublicKey": {string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}})
	f.api = rest{t: t, base: base, user: f.sid, pass: f.secret}
	f.account = f.api.must(201, "POST", "/v1/Partners/"+f.sid+"/Accounts", url.Values{"FriendlyName": {name + " customer"}})["sid"].(string)
	return f
}

func (f partnerFixture) assertion(t testing.TB, aud, sub string, mod func(jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"iss": f.sid, "sub": sub, "aud": aud, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": sid.Secret(20)}
	if mod != nil {
		mod(c)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(f.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f partnerFixture) portalURL(t testing.TB, aud, sub string) string {
	t.Helper()
	out := f.api.must(201, "POST", "/v1/Partners/"+f.sid+"/PortalSessions", url.Values{"Assertion": {f.assertion(t, aud, sub, nil)}})
	return out["url"].(string)
}

func TestPartnerAccountsAreScoped(t *testing.T) {
	_, base := partnerServer(t)
	a := newPartner(t, base, "Acme", "https://acme.test")
	b := newPartner(t, base, "Beta", "https://beta.test")
	// Each partner sees only its own accounts.
	list := a.api.must(200, "GET", "/v1/Partners/"+a.sid+"/Accounts", nil)["accounts"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["sid"] != a.account {
		t.Fatalf("partner A lists %v", list)
	}
	for _, tc := range []struct {
		name, method, path string
		want               int
	}{
		{"B fetches A's account through A's path", "GET", "/v1/Partners/" + a.sid + "/Accounts/" + a.account, 404},
		{"B fetches A's account through its own path", "GET", "/v1/Partners/" + b.sid + "/Accounts/" + a.account, 404},
		{"B lists A's accounts", "GET", "/v1/Partners/" + a.sid + "/Accounts", 404},
		{"B suspends A's account", "POST", "/v1/Partners/" + b.sid + "/Accounts/" + a.account, 404},
		{"B reads A", "GET", "/v1/Partners/" + a.sid, 404},
		{"B adds a key", "POST", "/v1/Partners/" + b.sid + "/Keys", 403},
		{"B lists partners", "GET", "/v1/Partners", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var form url.Values
			if tc.method == "POST" {
				form = url.Values{"Status": {"suspended"}}
			}
			if st, out := b.api.do(tc.method, tc.path, form); st != tc.want {
				t.Fatalf("%d %v, want %d", st, out, tc.want)
			}
		})
	}
	if st, _ := (rest{t: t, base: base, user: a.sid, pass: "wrong"}).do("GET", "/v1/Partners/"+a.sid+"/Accounts", nil); st != 401 {
		t.Fatalf("wrong secret: %d", st)
	}
	if st, _ := (rest{t: t, base: base, user: "operator", pass: "wrong"}).do("GET", "/v1/Partners", nil); st != 401 {
		t.Fatalf("wrong operator token: %d", st)
	}
	// A suspends, reactivates and closes its account.
	for _, s := range []string{"suspended", "active", "closed"} {
		out := a.api.must(200, "POST", "/v1/Partners/"+a.sid+"/Accounts/"+a.account, url.Values{"Status": {s}})
		if out["status"] != s {
			t.Fatalf("status %v, want %s", out["status"], s)
		}
	}
	a.api.must(409, "POST", "/v1/Partners/"+a.sid+"/Accounts/"+a.account, url.Values{"Status": {"active"}})
	// A suspended partner cannot authenticate.
	op := rest{t: t, base: base, user: "operator", pass: operatorToken}
	op.must(200, "POST", "/v1/Partners/"+b.sid, url.Values{"Status": {"suspended"}})
	if st, _ := b.api.do("GET", "/v1/Partners/"+b.sid+"/Accounts", nil); st != 403 {
		t.Fatalf("suspended partner: %d", st)
	}
}

func TestPortalSessionsOverREST(t *testing.T) {
	s, base := partnerServer(t)
	a := newPartner(t, base, "Acme", "https://acme.test", "http://127.0.0.1:9")
	b := newPartner(t, base, "Beta", "https://beta.test")
	suspended := a.api.must(201, "POST", "/v1/Partners/"+a.sid+"/Accounts", url.Values{"FriendlyName": {"late payer"}})["sid"].(string)
	a.api.must(200, "POST", "/v1/Partners/"+a.sid+"/Accounts/"+suspended, url.Values{"Status": {"suspended"}})
	replayed := a.assertion(t, base, a.account, nil)
	a.api.must(201, "POST", "/v1/Partners/"+a.sid+"/PortalSessions", url.Values{"Assertion": {replayed}})
	for _, tc := range []struct {
		name, assertion, reason string
	}{
		{"replayed jti", replayed, "replayed"},
		{"account of another partner", a.assertion(t, base, b.account, nil), "account_not_partner"},
		{"suspended account", a.assertion(t, base, suspended, nil), "account_inactive"},
		{"wrong audience", a.assertion(t, "http://elsewhere.test", a.account, nil), "wrong_audience"},
		{"expired", a.assertion(t, base, a.account, func(c jwt.MapClaims) {
			c["iat"], c["exp"] = time.Now().Add(-4*time.Minute).Unix(), time.Now().Add(-2*time.Minute).Unix()
		}), "expired"},
		{"signed by another partner's key", b.assertion(t, base, a.account, func(c jwt.MapClaims) { c["iss"] = a.sid }), "bad_signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, out := a.api.do("POST", "/v1/Partners/"+a.sid+"/PortalSessions", url.Values{"Assertion": {tc.assertion}})
			if st != 401 || out["reason"] != tc.reason || out["code"] != float64(20004) {
				t.Fatalf("%d %v, want 401 reason %s", st, out, tc.reason)
			}
		})
	}

	// The URL works once: the first GET sets the session cookie, framed only by A's origins.
	u := a.portalURL(t, base, a.account)
	if !strings.HasPrefix(u, base+"/portal/?token=") {
		t.Fatalf("url %s", u)
	}
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	wantCSP := "frame-ancestors https://acme.test http://127.0.0.1:9; default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'"
	if res.StatusCode != 200 || res.Header.Get("Content-Security-Policy") != wantCSP {
		t.Fatalf("first open: %d, CSP %q", res.StatusCode, res.Header.Get("Content-Security-Policy"))
	}
	cookies := res.Header.Values("Set-Cookie")
	if len(cookies) != 1 {
		t.Fatalf("Set-Cookie %v", cookies)
	}
	for _, attr := range []string{"Path=/portal", "HttpOnly", "Secure", "SameSite=None", "Partitioned"} {
		if !strings.Contains(cookies[0], attr) {
			t.Errorf("cookie %q lacks %s", cookies[0], attr)
		}
	}
	cookie := res.Cookies()[0]
	again, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != 401 || len(again.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("second open: %d, cookies %v", again.StatusCode, again.Header.Values("Set-Cookie"))
	}

	// The cookie reads its own account, nothing else.
	get := func(path string) (int, map[string]any, http.Header) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.AddCookie(cookie)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out, res.Header
	}
	st, sess, h := get("/portal/api/session")
	if st != 200 || sess["account"].(map[string]any)["sid"] != a.account || h.Get("Content-Security-Policy") != wantCSP {
		t.Fatalf("session: %d %v", st, sess)
	}
	ctx := context.Background()
	for _, acct := range []string{a.account, b.account} {
		if err := s.Store().SaveCall(ctx, store.CallRecord{Sid: sid.New(sid.Call), AccountSid: acct, From: "client:" + acct, To: "client:x",
			Direction: "inbound", Status: "completed", Duration: 65 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	st, calls, _ := get("/portal/api/calls?account=" + b.account)
	list := calls["calls"].([]any)
	if st != 200 || len(list) != 1 || list[0].(map[string]any)["from"] != "client:"+a.account || list[0].(map[string]any)["duration"] != float64(65) {
		t.Fatalf("calls: %d %v", st, calls)
	}
	for _, path := range []string{"/2010-04-01/Accounts/" + b.account + "/Calls.json", "/2010-04-01/Accounts/" + a.account + "/Calls.json", "/v1/Accounts/" + a.account + "/Presence"} {
		if st, _, _ := get(path); st != 401 {
			t.Errorf("REST %s with the portal cookie: %d, want 401", path, st)
		}
	}
	if st, _, _ := get("/portal/api/session"); st != 200 {
		t.Fatal("session gone")
	}

	// The WebSocket sees its account's presence only.
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/portal/api/presence/ws"
	hdr := http.Header{"Origin": {base}, "Cookie": {cookie.Name + "=" + cookie.Value}}
	if _, res, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"https://evil.test"}, "Cookie": hdr["Cookie"]}); err == nil || res.StatusCode != 403 {
		t.Fatalf("cross-origin socket accepted (%v)", err)
	}
	if _, res, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {base}}); err == nil || res.StatusCode != 401 {
		t.Fatalf("socket without a session accepted (%v)", err)
	}
	conn, _, err := websocket.DefaultDialer.Dial(wsURL, hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var msg map[string]any
	if err := conn.ReadJSON(&msg); err != nil || msg["type"] != "snapshot" {
		t.Fatalf("snapshot: %v %v", msg, err)
	}
	register := func(acct, identity string) {
		t.Helper()
		_, err := s.registry.Apply(ctx, presence.Update{AccountSid: acct, Identity: identity, CallID: sid.Secret(8), CSeq: 1, Now: time.Now(),
			Contacts: []presence.Binding{{Contact: "sip:" + identity[7:] + "@127.0.0.1:5099", Key: "sip:" + identity[7:] + "@127.0.0.1:5099", Expires: time.Now().Add(time.Hour), Transport: "udp"}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	register(b.account, "client:other")
	register(a.account, "client:mine")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := conn.ReadJSON(&msg); err != nil || msg["type"] != "presence" || msg["identity"] != "client:mine" || msg["status"] != "available" {
		t.Fatalf("event: %v %v (another account's event must not arrive first)", msg, err)
	}

	// Changes need the portal's header (no cross-site form posts).
	req, _ := http.NewRequest("POST", base+"/portal/api/triggers", strings.NewReader(`{"usage_category":"calls","trigger_value":"5","callback_url":"https://x.test/"}`))
	req.AddCookie(cookie)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 403 {
		t.Fatalf("POST without the portal header: %v %v", res.StatusCode, err)
	}
	// No session: CSP frame-ancestors 'none'.
	res, err = http.Get(base + "/portal/app.js")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none';") {
		t.Fatalf("app.js: %d %q", res.StatusCode, res.Header.Get("Content-Security-Policy"))
	}
}

// openPortal redeems a portal URL and returns its session cookie.
func openPortal(t testing.TB, u string) *http.Cookie {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || len(res.Cookies()) != 1 {
		t.Fatalf("open %s: %d", u, res.StatusCode)
	}
	return res.Cookies()[0]
}

func TestPortalFeaturesAreThePartners(t *testing.T) {
	_, base := partnerServer(t)
	a := newPartner(t, base, "Acme", "https://acme.test")
	op := rest{t: t, base: base, user: "operator", pass: operatorToken}
	op.must(200, "POST", "/v1/Partners/"+a.sid, url.Values{"Features": {"calls,usage"}})
	status := func(c *http.Cookie, path string) int {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.AddCookie(c)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	c := openPortal(t, a.portalURL(t, base, a.account))
	for path, want := range map[string]int{"/portal/api/calls": 200, "/portal/api/usage": 200, "/portal/api/presence": 403, "/portal/api/triggers": 403} {
		if got := status(c, path); got != want {
			t.Errorf("%s: %d, want %d", path, got, want)
		}
	}
	// An assertion can narrow the features further, never widen them.
	out := a.api.must(201, "POST", "/v1/Partners/"+a.sid+"/PortalSessions", url.Values{"Assertion": {a.assertion(t, base, a.account, func(c jwt.MapClaims) {
		c["features"] = []string{"usage", "presence"}
	})}})
	c = openPortal(t, out["url"].(string))
	for path, want := range map[string]int{"/portal/api/calls": 403, "/portal/api/usage": 200, "/portal/api/presence": 403} {
		if got := status(c, path); got != want {
			t.Errorf("narrowed %s: %d, want %d", path, got, want)
		}
	}
	// A key the operator revoked signs nothing any more.
	if k := op.must(200, "DELETE", "/v1/Partners/"+a.sid+"/Keys/k1", nil); k["revoked"] != true {
		t.Fatalf("revoke: %v", k)
	}
	if st, out := a.api.do("POST", "/v1/Partners/"+a.sid+"/PortalSessions", url.Values{"Assertion": {a.assertion(t, base, a.account, nil)}}); st != 401 || out["reason"] != "key_revoked" {
		t.Fatalf("revoked key: %d %v", st, out)
	}
	// Suspending the partner ends its portal sessions.
	op.must(200, "POST", "/v1/Partners/"+a.sid, url.Values{"Status": {"suspended"}})
	if got := status(c, "/portal/api/usage"); got != 401 {
		t.Errorf("after suspension: %d, want 401", got)
	}
}
