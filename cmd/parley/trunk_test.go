package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCarrierCallToNumberDialsOutThroughTheTrunk: a carrier (SIPp, trusted
// by address, no authentication) calls an incoming number; its application
// dials another number, which goes out through the configured trunk to a
// second carrier (SIPp) that challenges with Digest. The caller hangs up and
// Parley hangs up the trunk leg; the Dial action reports the outcome.
func TestCarrierCallToNumberDialsOutThroughTheTrunk(t *testing.T) {
	sipp := needBinary(t, "sipp")
	var mu sync.Mutex
	var voice, dialed []url.Values
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "text/xml")
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/voice":
			voice = append(voice, r.PostForm)
			io.WriteString(w, `<Response><Dial action="/dialed" callerId="+15550102000" timeout="10"><Number>+15550109999</Number></Dial></Response>`)
		case "/dialed":
			dialed = append(dialed, r.PostForm)
			io.WriteString(w, `<Response><Hangup/></Response>`)
		}
	}))
	defer app.Close()

	trunkPort := freeUDPPort(t)
	t.Setenv("PARLEY_SIP_TRUNK_URI", fmt.Sprintf("sip:127.0.0.1:%d", trunkPort))
	t.Setenv("PARLEY_SIP_TRUNK_USERNAME", "parley-trunk")
	t.Setenv("PARLEY_SIP_TRUNK_PASSWORD", "trunk-secret-1")
	t.Setenv("PARLEY_SIP_TRUNK_INBOUND_SOURCES", "127.0.0.0/8")
	dir := t.TempDir()
	srv := startServer(t, dir)
	acct := runJSON(t, dir, "account", "create", "--name", "Numbers")
	sid, token := acct["sid"].(string), acct["auth_token"].(string)
	base := srv.base + "/2010-04-01/Accounts/" + sid
	code, body := postForm(t, base+"/Applications.json", sid, token, url.Values{"VoiceUrl": {app.URL + "/voice"}}.Encode())
	if code != 201 {
		t.Fatalf("create application: %d %s", code, body)
	}
	var created map[string]any
	json.Unmarshal([]byte(body), &created)
	code, body = postForm(t, base+"/IncomingNumbers.json", sid, token,
		url.Values{"PhoneNumber": {"+1 555 010 2000"}, "ApplicationSid": {created["sid"].(string)}}.Encode())
	if code != 201 {
		t.Fatalf("create number: %d %s", code, body)
	}

	testdata, _ := filepath.Abs("../../signaling/sip/testdata")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	carrierOut := &syncBuffer{}
	far := exec.CommandContext(ctx, sipp, "-sf", filepath.Join(testdata, "sipp_uas_carrier.xml"),
		"-key", "username", "parley-trunk", "-key", "password", "trunk-secret-1",
		"-i", "127.0.0.1", "-p", fmt.Sprint(trunkPort), "-mi", "127.0.0.1", "-mp", fmt.Sprint(freeUDPPort(t)&^1),
		"-m", "1", "-timeout", "30s", "-timeout_error", "-trace_err", "-nostdin")
	far.Dir = t.TempDir()
	far.Stdout, far.Stderr = carrierOut, carrierOut
	if err := far.Start(); err != nil {
		t.Fatal(err)
	}
	farDone := make(chan error, 1)
	go func() { farDone <- far.Wait() }()

	var out bytes.Buffer
	caller := exec.CommandContext(ctx, sipp, "-sf", filepath.Join(testdata, "sipp_call_carrier.xml"), "-s", "+15550102000",
		"-key", "caller", "+15551230000", "-i", "127.0.0.1", "-p", fmt.Sprint(freeUDPPort(t)),
		"-mi", "127.0.0.1", "-mp", fmt.Sprint(freeUDPPort(t)&^1), "-m", "1", "-d", "1000",
		"-timeout", "30s", "-timeout_error", "-trace_err", "-nostdin", srv.sipUDP)
	caller.Dir = t.TempDir()
	caller.Stdout, caller.Stderr = &out, &out
	if err := caller.Run(); err != nil {
		t.Fatalf("carrier caller: %v\n%s\nfar carrier:\n%s\nserver:\n%s", err, lastN(out.String(), 25),
			lastN(carrierOut.String(), 25), lastN(srv.stderr.String(), 25))
	}
	select {
	case err := <-farDone:
		if err != nil {
			t.Fatalf("far carrier: %v\n%s", err, lastN(carrierOut.String(), 25))
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the far carrier was not hung up\n%s\nserver:\n%s", lastN(carrierOut.String(), 40), lastN(srv.stderr.String(), 30))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		v, d := voice, dialed
		mu.Unlock()
		if len(d) == 1 {
			if len(v) != 1 || v[0].Get("From") != "+15551230000" || v[0].Get("To") != "+15550102000" || v[0].Get("AccountSid") != sid {
				t.Fatalf("voice webhook %v", v)
			}
			if d[0].Get("DialCallStatus") != "completed" || d[0].Get("DialCallSid") == "" {
				t.Fatalf("dial action %v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dial action; voice %v\nserver:\n%s", v, lastN(srv.stderr.String(), 25))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// With a trunk, REST calls may go to numbers, but only well-formed E.164 ones.
	code, body = postForm(t, base+"/Calls.json", sid, token, url.Values{"To": {"+1 (555) 010-9999x"}, "From": {"+15550102000"},
		"Url": {app.URL + "/voice"}}.Encode())
	if code != 400 || !strings.Contains(body, "E.164") {
		t.Fatalf("malformed number: %d %s", code, body)
	}
	srv.stop(t)
}
