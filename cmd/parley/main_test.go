package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	twjwt "github.com/twilio/twilio-go/client/jwt"
)

// The test binary doubles as the parley binary: with PARLEY_TEST_MAIN=1 it
// runs main() with the given arguments, so tests exercise the real command
// without building it.
func TestMain(m *testing.M) {
	if os.Getenv("PARLEY_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func parleyCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PARLEY_TEST_MAIN=1", "PARLEY_LOG_FORMAT=json",
		// Loopback and ephemeral ports: tests never take the standard SIP ports.
		"PARLEY_SIP_UDP=127.0.0.1:0", "PARLEY_SIP_TCP=127.0.0.1:0", "PARLEY_SIP_TLS=127.0.0.1:0",
		"PARLEY_SIP_WS=127.0.0.1:0", "PARLEY_SIP_WSS=127.0.0.1:0", "PARLEY_MEDIA_ADDRESS=127.0.0.1",
		"PARLEY_MEDIA_RTP_PORT_MIN=49000", "PARLEY_MEDIA_RTP_PORT_MAX=49999",
		// The tests' applications are httptest servers on loopback, refused by default.
		"PARLEY_WEBHOOKS_ALLOW_NETWORKS=127.0.0.0/8,::1/128")
	return cmd
}

// run runs a CLI command to completion and returns its stdout.
func run(t *testing.T, dir string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := parleyCmd(dir, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("parley %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

func runJSON(t *testing.T, dir string, args ...string) map[string]any {
	t.Helper()
	var v map[string]any
	out := run(t, dir, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("parley %s: not JSON: %q", strings.Join(args, " "), out)
	}
	return v
}

type serverProc struct {
	cmd    *exec.Cmd
	base   string
	sipUDP string // host:port of the SIP UDP listener
	banner string
	stderr *syncBuffer
	done   chan error
}

// startServer runs `parley serve` on a free loopback port and waits for its banner.
func startServer(t *testing.T, dir string) *serverProc {
	t.Helper()
	cmd := parleyCmd(dir, "serve", "--http-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serverProc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	deadline := time.After(15 * time.Second)
	var banner []string
	for p.base == "" || len(banner) < 4 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("server exited before its banner: %s", p.stderr)
			}
			banner = append(banner, l)
			if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "HTTP API:"); ok {
				p.base = strings.TrimSuffix(strings.TrimSpace(rest), "/2010-04-01")
			}
			if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "SIP udp:"); ok {
				p.sipUDP = strings.TrimSpace(rest)
			}
		case <-deadline:
			t.Fatalf("no banner within 15s; stderr: %s", p.stderr)
		}
	}
	// The rest of the banner (the first-account hint) follows at once.
	for more := true; more; {
		select {
		case l, ok := <-lines:
			if !ok {
				more = false
				break
			}
			banner = append(banner, l)
		case <-time.After(300 * time.Millisecond):
			more = false
		}
	}
	go func() {
		for range lines {
		}
	}()
	p.banner = strings.Join(banner, "\n")
	return p
}

func (p *serverProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("server exited with %v after SIGTERM; stderr: %s", err, p.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop within 20s of SIGTERM")
	}
	if !strings.Contains(p.stderr.String(), `"msg":"stopped"`) {
		t.Fatalf("no graceful-stop log: %s", p.stderr)
	}
}

func get(t *testing.T, url, user, pass string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func getRes(t *testing.T, url, user, pass string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.SetBasicAuth(user, pass)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

func postForm(t *testing.T, url, user, pass, form string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, pass)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// pluginProcs counts live (not zombie) processes of this test binary running
// as a plugin.
func pluginProcs(t *testing.T) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.HasPrefix(string(cmdline), os.Args[0]+"\x00plugin\x00serve\x00") {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if f := strings.Fields(string(stat)); len(f) > 2 && f[2] == "Z" {
			continue
		}
		n++
	}
	return n
}

func TestServeCLIRestartAndLock(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	if !strings.Contains(srv.banner, "parley account create") {
		t.Fatalf("banner does not say how to create the first account:\n%s", srv.banner)
	}
	st, err := os.Stat(filepath.Join(dir, "parley-data"))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v %v", st.Mode(), err)
	}

	// The CLI works beside the running server.
	acct := runJSON(t, dir, "account", "create", "--name", "Acme")
	sid, token := acct["sid"].(string), acct["auth_token"].(string)
	key := runJSON(t, dir, "key", "create", "--account", sid, "--name", "browser")
	keySid, secret := key["sid"].(string), key["secret"].(string)
	app := runJSON(t, dir, "app", "create", "--account", sid, "--name", "IVR", "--voice-url", "http://127.0.0.1:9/voice")
	appSid := app["sid"].(string)
	if out := run(t, dir, "app", "list", "--account", sid); !strings.Contains(out, appSid) {
		t.Fatalf("app list: %s", out)
	}
	tok := strings.TrimSpace(run(t, dir, "token", "--key", keySid, "--identity", "alice", "--incoming", "--outgoing-app", appSid))
	parsed, err := (&twjwt.Jwt{}).FromJwt(tok, secret)
	if err != nil {
		t.Fatalf("helper library rejects CLI token: %v", err)
	}
	grants := parsed.DecodedPayload["grants"].(map[string]any)
	if grants["identity"] != "alice" || parsed.Subject != sid {
		t.Fatalf("token payload %v", parsed.DecodedPayload)
	}

	code, body := get(t, srv.base+"/2010-04-01/Accounts/"+sid+".json", sid, token)
	if code != 200 || !strings.Contains(body, `"friendly_name":"Acme"`) {
		t.Fatalf("REST fetch: %d %s", code, body)
	}
	code, body = get(t, srv.base+"/2010-04-01/Accounts/"+sid+"/Applications.json", keySid, secret)
	if code != 200 || !strings.Contains(body, appSid) {
		t.Fatalf("REST with key: %d %s", code, body)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, srv.base+path, "", ""); code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}
	if code, body := get(t, srv.base+"/metrics", "", ""); code != 200 ||
		!strings.Contains(body, `parley_http_requests_total{code="200",route="GET /2010-04-01/Accounts/{account}"}`) ||
		!strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}

	// A second server on the same data directory refuses to start.
	var stderr bytes.Buffer
	second := parleyCmd(dir, "serve", "--http-addr", "127.0.0.1:0")
	second.Stderr = &stderr
	err = second.Run()
	if err == nil || !strings.Contains(stderr.String(), "in use by another parley server") ||
		!strings.Contains(stderr.String(), fmt.Sprintf("pid %d", srv.cmd.Process.Pid)) {
		t.Fatalf("second server: err %v, stderr %q", err, stderr.String())
	}

	// Policy plugins: the built-in admission plugin runs as a subprocess.
	if out := run(t, dir, "plugin", "list"); !strings.Contains(out, "admission*") || !strings.Contains(out, "running") {
		t.Fatalf("plugin list:\n%s", out)
	}
	if out := run(t, dir, "plugin", "hash", os.Args[0]); !strings.Contains(out, "sha256:") {
		t.Fatalf("plugin hash: %s", out)
	}
	if n := pluginProcs(t); n == 0 {
		t.Fatal("no admission plugin process while the server runs")
	}

	// Admission: a subaccount with an API limit of 0 is refused with 429.
	sub := runJSON(t, dir, "account", "create", "--name", "Sub", "--owner", sid)
	subSid, subToken := sub["sid"].(string), sub["auth_token"].(string)
	run(t, dir, "limits", "set", "--account", subSid, "--resource", "api", "--limit", "0")
	res := getRes(t, srv.base+"/2010-04-01/Accounts/"+subSid+".json", subSid, subToken)
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" || res.Header.Get("Parley-Concurrency-Limit") != "0" {
		t.Fatalf("over the limit: %d %v", res.StatusCode, res.Header)
	}
	if code, body := get(t, srv.base+"/2010-04-01/Accounts/"+subSid+"/Limits.json", sid, token); code != 200 ||
		!strings.Contains(body, `"resource":"api","limit":0`) {
		t.Fatalf("owner reads the subaccount's limits: %d %s", code, body)
	}
	if code, _ := postForm(t, srv.base+"/2010-04-01/Accounts/"+sid+"/Limits.json", sid, token, "Resource=api&Limit=1000"); code != 403 {
		t.Fatalf("an account raised its own limit: %d", code)
	}
	if code, body := postForm(t, srv.base+"/2010-04-01/Accounts/"+subSid+"/Limits.json", sid, token, "Resource=api&Limit="); code != 200 || !strings.Contains(body, `"default":true`) {
		t.Fatalf("owner resets the subaccount's limit: %d %s", code, body)
	}
	if code, body := get(t, srv.base+"/2010-04-01/Accounts/"+subSid+".json", subSid, subToken); code != 200 {
		t.Fatalf("after reset: %d %s", code, body)
	}

	srv.stop(t)
	if n := pluginProcs(t); n != 0 {
		t.Fatalf("%d plugin processes outlived the server", n)
	}

	// Everything survives a restart.
	srv2 := startServer(t, dir)
	if strings.Contains(srv2.banner, "No accounts yet") {
		t.Fatal("restarted server forgot its accounts")
	}
	code, body = get(t, srv2.base+"/2010-04-01/Accounts/"+sid+"/Applications/"+appSid+".json", sid, token)
	if code != 200 || !strings.Contains(body, "http://127.0.0.1:9/voice") {
		t.Fatalf("after restart: %d %s", code, body)
	}
	run(t, dir, "key", "revoke", keySid)
	if code, _ := get(t, srv2.base+"/2010-04-01/Accounts/"+sid+"/Applications.json", keySid, secret); code != 401 {
		t.Fatalf("revoked key via CLI still authenticates: %d", code)
	}
	run(t, dir, "account", "update", sid, "--status", "suspended")
	if code, _ := get(t, srv2.base+"/2010-04-01/Accounts/"+sid+".json", sid, token); code != 403 {
		t.Fatalf("suspended account: %d", code)
	}
	srv2.stop(t)
}

func TestCLIMisc(t *testing.T) {
	dir := t.TempDir()
	m := runJSON(t, dir, "migrate")
	if v, _ := m["schema_version"].(float64); v < 1 {
		t.Fatalf("migrate: %v", m)
	}
	// Without a server, the limits commands run the admission plugin themselves.
	acct := runJSON(t, dir, "account", "create")
	asid := acct["sid"].(string)
	run(t, dir, "limits", "set", "--account", asid, "--resource", "calls", "--limit", "5")
	var ls []map[string]any
	if err := json.Unmarshal([]byte(run(t, dir, "limits", "get", "--account", asid, "--json")), &ls); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range ls {
		if l["resource"] == "calls" && l["limit"] == float64(5) && l["default"] == false {
			found = true
		}
	}
	if !found {
		t.Fatalf("limits after set: %v", ls)
	}
	if out := run(t, dir, "version"); !strings.HasPrefix(out, "parley ") {
		t.Fatalf("version: %q", out)
	}
	bad := [][]string{
		{"account", "update", "ACnope", "--status", "asleep"},
		{"token", "--key", "SKnope", "--identity", "a"},
		{"app", "create", "--account", "AC00000000000000000000000000000000", "--voice-url", "not a url"},
		{"serve", "--log-level", "loud"},
		{"serve", "--http-addr", "nowhere"},
		{"limits", "set", "--account", "AC00000000000000000000000000000000", "--resource", "bogus", "--limit", "1"},
		{"plugin", "hash", "/nonexistent"},
	}
	for _, args := range bad {
		var stderr bytes.Buffer
		cmd := parleyCmd(dir, args...)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err == nil || !strings.HasPrefix(stderr.String(), "parley: ") {
			t.Errorf("parley %v: err %v, stderr %q", args, err, stderr.String())
		}
	}
}
