package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/webhook"
)

func needBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("PARLEY_REQUIRE_PEERS") == "1" {
			t.Fatalf("%s not found and PARLEY_REQUIRE_PEERS=1: run `make deps`", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

func freeUDPPort(t *testing.T) int {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// TestCallThroughTheBinary provisions with the CLI, calls in with SIPp, and
// checks the webhook and the REST call record: the whole product path.
func TestCallThroughTheBinary(t *testing.T) {
	sipp := needBinary(t, "sipp")
	var mu sync.Mutex
	var gathered, fired []url.Values
	var token string
	var app *httptest.Server
	app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		signed := r.Header.Get(webhook.HeaderCompat) == webhook.Sign(token, app.URL+r.URL.Path, r.PostForm)
		if r.URL.Path == "/gathered" && signed {
			gathered = append(gathered, r.PostForm)
		}
		if r.URL.Path == "/trigger" && signed {
			fired = append(fired, r.PostForm)
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		switch r.URL.Path {
		case "/voice":
			io.WriteString(w, `<Response><Gather numDigits="2" action="/gathered" timeout="8"><Pause length="8"/></Gather></Response>`)
		default:
			io.WriteString(w, `<Response><Hangup/></Response>`)
		}
	}))
	defer app.Close()

	dir := t.TempDir()
	srv := startServer(t, dir)
	if srv.sipUDP == "" {
		t.Fatalf("banner has no SIP UDP listener:\n%s", srv.banner)
	}
	acct := runJSON(t, dir, "account", "create", "--name", "Voice")
	sid := acct["sid"].(string)
	mu.Lock()
	token = acct["auth_token"].(string)
	mu.Unlock()
	run(t, dir, "sip", "domain", "create", "--account", sid, "--name", "pbx.test", "--voice-url", app.URL+"/voice")
	run(t, dir, "sip", "user", "add", "--domain", "pbx.test", "--username", "bob", "--password", "correct-horse-battery")
	code, body := postForm(t, srv.base+"/2010-04-01/Accounts/"+sid+"/Usage/Triggers.json", sid, token,
		url.Values{"UsageCategory": {"calls"}, "TriggerValue": {"1"}, "CallbackUrl": {app.URL + "/trigger"}}.Encode())
	if code != 201 {
		t.Fatalf("create usage trigger: %d %s", code, body)
	}

	scenario, _ := filepath.Abs("../../signaling/sip/testdata/sipp_call_dtmf.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, "-sf", scenario, "-s", "ivr", "-key", "user", "bob", "-key", "domain", "pbx.test",
		"-au", "bob", "-ap", "correct-horse-battery", "-i", "127.0.0.1", "-p", fmt.Sprint(freeUDPPort(t)),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(freeUDPPort(t)&^1), "-m", "1", "-l", "1",
		"-timeout", "30s", "-timeout_error", "-nostdin", srv.sipUDP)
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("sipp: %v\n%s\nserver log:\n%s", err, lastN(out.String(), 25), lastN(srv.stderr.String(), 25))
	}
	mu.Lock()
	g := gathered
	mu.Unlock()
	if len(g) != 1 || g[0].Get("Digits") != "42" || g[0].Get("From") != "sip:bob@pbx.test" || g[0].Get("AccountSid") != sid {
		t.Fatalf("signed gather action: %v", g)
	}
	var calls struct {
		Calls []map[string]any `json:"calls"`
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body := get(t, srv.base+"/2010-04-01/Accounts/"+sid+"/Calls.json", sid, token)
		json.Unmarshal([]byte(body), &calls)
		if len(calls.Calls) == 1 && calls.Calls[0]["status"] == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("call record: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := calls.Calls[0]
	if c["direction"] != "inbound" || c["from"] != "sip:bob@pbx.test" || c["duration"] == nil {
		t.Fatalf("call record %v", c)
	}
	// The call moved the usage counters and crossed the trigger.
	waitUsage(t, srv, sid, token, map[string]int{"calls": 1, "calls-inbound": 1, "calls-sip": 1, "twiml-fetches": 2, "api-requests": 2})
	deadline = time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(fired)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the usage trigger's signed callback never came")
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	f := fired[0]
	mu.Unlock()
	if f.Get("UsageCategory") != "calls" || f.Get("CurrentValue") != "1" || f.Get("IdempotencyToken") == "" || f.Get("AccountSid") != sid {
		t.Fatalf("trigger callback %v", f)
	}
	srv.stop(t)
}

// waitUsage waits until the account's all-time usage reaches at least want
// per category.
func waitUsage(t *testing.T, srv *serverProc, sid, token string, want map[string]int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := get(t, srv.base+"/2010-04-01/Accounts/"+sid+"/Usage/Records/AllTime.json?PageSize=1000", sid, token)
		var recs struct {
			Records []struct{ Category, Count string } `json:"usage_records"`
		}
		json.Unmarshal([]byte(body), &recs)
		got := map[string]int{}
		for _, r := range recs.Records {
			var n int
			fmt.Sscan(r.Count, &n)
			got[r.Category] = n
		}
		ok := true
		for k, v := range want {
			ok = ok && got[k] >= v
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage counters %v, want at least %v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lastN(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestOutboundCallThroughTheBinary places a call by REST to a SIPp phone
// registered as alice, and follows it through its status callbacks.
func TestOutboundCallThroughTheBinary(t *testing.T) {
	sipp := needBinary(t, "sipp")
	var mu sync.Mutex
	var statuses []string
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "text/xml")
		switch r.URL.Path {
		case "/outbound":
			io.WriteString(w, `<Response><Pause length="1"/><Hangup/></Response>`)
		case "/status":
			mu.Lock()
			statuses = append(statuses, r.PostForm.Get("CallStatus"))
			mu.Unlock()
		}
	}))
	defer app.Close()
	dir := t.TempDir()
	srv := startServer(t, dir)
	acct := runJSON(t, dir, "account", "create")
	sid, token := acct["sid"].(string), acct["auth_token"].(string)
	run(t, dir, "sip", "domain", "create", "--account", sid, "--name", "pbx.test")
	run(t, dir, "sip", "user", "add", "--domain", "pbx.test", "--username", "alice", "--password", "alice-password")

	testdata, _ := filepath.Abs("../../signaling/sip/testdata")
	port := fmt.Sprint(freeUDPPort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	// Register alice from a port, then answer calls on that same port.
	reg := exec.CommandContext(ctx, sipp, "-sf", filepath.Join(testdata, "sipp_register_keep.xml"), "-key", "user", "alice",
		"-key", "domain", "pbx.test", "-au", "alice", "-ap", "alice-password", "-i", "127.0.0.1", "-p", port,
		"-m", "1", "-timeout", "10s", "-timeout_error", "-nostdin", srv.sipUDP)
	reg.Dir = t.TempDir()
	if b, err := reg.CombinedOutput(); err != nil {
		t.Fatalf("sipp register: %v\n%s", err, lastN(string(b), 20))
	}
	phone := exec.CommandContext(ctx, sipp, "-sf", filepath.Join(testdata, "sipp_uas_answer.xml"), "-key", "user", "alice",
		"-i", "127.0.0.1", "-p", port, "-mi", "127.0.0.1", "-mp", fmt.Sprint(freeUDPPort(t)&^1), "-m", "1",
		"-timeout", "30s", "-timeout_error", "-nostdin")
	phone.Dir = t.TempDir()
	out := &syncBuffer{}
	phone.Stdout, phone.Stderr = out, out
	if err := phone.Start(); err != nil {
		t.Fatal(err)
	}
	phoneDone := make(chan error, 1)
	go func() { phoneDone <- phone.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := get(t, srv.base+"/v1/Accounts/"+sid+"/Presence", sid, token)
		if strings.Contains(body, `"identity":"sip:alice@pbx.test","status":"available"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice never registered: %s\n%s\nserver:\n%s", body, lastN(out.String(), 20), lastN(srv.stderr.String(), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	form := url.Values{"To": {"client:alice"}, "From": {"client:ops"}, "Url": {app.URL + "/outbound"},
		"StatusCallback": {app.URL + "/status"}, "StatusCallbackEvent": {"initiated", "ringing answered", "completed"}}
	code, body := postForm(t, srv.base+"/2010-04-01/Accounts/"+sid+"/Calls.json", sid, token, form.Encode())
	if code != 201 || !strings.Contains(body, `"direction":"outbound-api"`) {
		t.Fatalf("create call: %d %s", code, body)
	}
	select {
	case err := <-phoneDone:
		if err != nil {
			t.Fatalf("sipp phone: %v\n%s", err, lastN(out.String(), 25))
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the phone was not called and hung up\n%s", lastN(out.String(), 25))
	}
	waitStatuses := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := strings.Join(statuses, ",")
		mu.Unlock()
		if got == "queued,ringing,in-progress,completed" {
			break
		}
		if time.Now().After(waitStatuses) {
			t.Fatalf("status callbacks %q", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitUsage(t, srv, sid, token, map[string]int{"sip-registrations": 1, "calls": 1, "calls-outbound": 1, "calls-client": 1, "twiml-fetches": 1})
	code, body = postForm(t, srv.base+"/2010-04-01/Accounts/"+sid+"/Calls.json", sid, token, url.Values{"To": {"+15550100"}, "From": {"x"}, "Url": {app.URL}}.Encode())
	if code != 400 || !strings.Contains(body, "trunk") {
		t.Fatalf("number without a trunk: %d %s", code, body)
	}
	srv.stop(t)
}

// syncBuffer is a bytes.Buffer safe to write from a process and read from the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCallRefusedAtTheLimit: an account at its calls limit gets SIP 503
// with Retry-After, through the real admission plugin.
func TestCallRefusedAtTheLimit(t *testing.T) {
	sipp := needBinary(t, "sipp")
	dir := t.TempDir()
	srv := startServer(t, dir)
	acct := runJSON(t, dir, "account", "create")
	sid := acct["sid"].(string)
	run(t, dir, "sip", "domain", "create", "--account", sid, "--name", "pbx.test", "--voice-url", "http://127.0.0.1:9/voice")
	run(t, dir, "sip", "user", "add", "--domain", "pbx.test", "--username", "bob", "--password", "correct-horse-battery")
	run(t, dir, "limits", "set", "--account", sid, "--resource", "calls", "--limit", "0")
	scenario, _ := filepath.Abs("../../signaling/sip/testdata/sipp_call_refused.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs := filepath.Join(t.TempDir(), "messages.log")
	cmd := exec.CommandContext(ctx, sipp, "-sf", scenario, "-s", "ivr", "-key", "user", "bob", "-key", "domain", "pbx.test",
		"-au", "bob", "-ap", "correct-horse-battery", "-i", "127.0.0.1", "-p", fmt.Sprint(freeUDPPort(t)),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(freeUDPPort(t)&^1), "-m", "1", "-timeout", "20s", "-timeout_error", "-nostdin",
		"-trace_msg", "-message_file", msgs, srv.sipUDP)
	cmd.Dir = t.TempDir()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sipp: %v\n%s", err, lastN(string(b), 25))
	}
	trace, _ := os.ReadFile(msgs)
	if !strings.Contains(string(trace), "SIP/2.0 503 Service Unavailable") || !strings.Contains(string(trace), "Retry-After:") {
		t.Fatalf("no 503 with Retry-After in:\n%s", lastN(string(trace), 40))
	}
	srv.stop(t)
}

// TestShutdownDrainsCalls: SIGTERM during a call lets it finish before the
// server stops.
func TestShutdownDrainsCalls(t *testing.T) {
	sipp := needBinary(t, "sipp")
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		if r.URL.Path == "/voice" {
			// Answer, then wait ~4 s (SIPp presses two of three digits) and hang up.
			io.WriteString(w, `<Response><Gather numDigits="3" timeout="3" action="/done"><Pause length="1"/></Gather></Response>`)
			return
		}
		io.WriteString(w, `<Response><Hangup/></Response>`)
	}))
	defer app.Close()
	dir := t.TempDir()
	srv := startServer(t, dir)
	acct := runJSON(t, dir, "account", "create")
	sid, token := acct["sid"].(string), acct["auth_token"].(string)
	run(t, dir, "sip", "domain", "create", "--account", sid, "--name", "pbx.test", "--voice-url", app.URL+"/voice")
	run(t, dir, "sip", "user", "add", "--domain", "pbx.test", "--username", "bob", "--password", "correct-horse-battery")
	scenario, _ := filepath.Abs("../../signaling/sip/testdata/sipp_call_dtmf.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	caller := exec.CommandContext(ctx, sipp, "-sf", scenario, "-s", "ivr", "-key", "user", "bob", "-key", "domain", "pbx.test",
		"-au", "bob", "-ap", "correct-horse-battery", "-i", "127.0.0.1", "-p", fmt.Sprint(freeUDPPort(t)),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(freeUDPPort(t)&^1), "-m", "1", "-timeout", "30s", "-timeout_error", "-nostdin", srv.sipUDP)
	caller.Dir = t.TempDir()
	out := &syncBuffer{}
	caller.Stdout, caller.Stderr = out, out
	if err := caller.Start(); err != nil {
		t.Fatal(err)
	}
	callerDone := make(chan error, 1)
	go func() { callerDone <- caller.Wait() }()
	// Wait until the call is answered, then ask the server to stop.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := get(t, srv.base+"/2010-04-01/Accounts/"+sid+"/Calls.json?Status=in-progress", sid, token)
		if strings.Contains(body, `"status":"in-progress"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the call was never answered: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-callerDone:
		if err != nil {
			t.Fatalf("the call did not finish normally during shutdown: %v\n%s", err, lastN(out.String(), 20))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the call did not end")
	}
	srv.stop(t) // waits for a clean exit and its "stopped" log
	if !strings.Contains(srv.stderr.String(), `"msg":"draining calls"`) {
		t.Fatalf("no drain in the log:\n%s", lastN(srv.stderr.String(), 20))
	}
}
