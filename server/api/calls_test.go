package api_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/sid"
	"github.com/parleyhq/parley/server/api"
	"github.com/parleyhq/parley/signaling/calls"
	"github.com/parleyhq/parley/store"
)

// control records live-call changes; calls not in live answer ErrNotLive,
// as the engine does.
type control struct {
	mu   sync.Mutex
	live map[string]bool
	log  []string
}

func (c *control) Redirect(callSid, u, m string) error {
	return c.do("redirect " + callSid + " " + m + " " + u)
}
func (c *control) Hangup(callSid string) error { return c.do("hangup " + callSid) }
func (c *control) do(s string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live[strings.Fields(s)[1]] {
		return fmt.Errorf("%w: %s", calls.ErrNotLive, s)
	}
	c.log = append(c.log, s)
	return nil
}

func TestCallsAndRecordings(t *testing.T) {
	ctl := &control{live: map[string]bool{}}
	e := newEnv(t, api.Options{Calls: ctl})
	u, p := e.as(e.parent)
	ctx := context.Background()
	now := time.Now().UTC()
	live, ended := sid.New(sid.Call), sid.New(sid.Call)
	ctl.live[live] = true
	e.st.SaveCall(ctx, store.CallRecord{Sid: live, AccountSid: e.parent.Sid, From: "sip:a@x", To: "client:bob", Direction: "inbound", Status: "in-progress", Started: now})
	e.st.SaveCall(ctx, store.CallRecord{Sid: ended, AccountSid: e.parent.Sid, From: "sip:b@x", To: "client:bob", Direction: "inbound", Status: "completed",
		Started: now, Answered: now, Ended: now.Add(2500 * time.Millisecond), Duration: 2500 * time.Millisecond})
	other, _ := e.st.CreateAccount(ctx, store.NewAccount{})
	foreign := sid.New(sid.Call)
	e.st.SaveCall(ctx, store.CallRecord{Sid: foreign, AccountSid: other.Sid, From: "x", To: "y", Direction: "inbound", Status: "completed"})

	base := acctPath(e.parent.Sid) + "/Calls"
	r := e.do("GET", base+".json?Status=completed", u, p, nil, "")
	wantStatus(t, r, 200, 0)
	list := r.body["calls"].([]any)
	if len(list) != 1 {
		t.Fatalf("filtered list: %s", r.raw)
	}
	c := list[0].(map[string]any)
	if c["sid"] != ended || c["duration"] != "3" || c["end_time"] == nil || c["parent_call_sid"] != nil {
		t.Fatalf("call resource: %v", c)
	}
	r = e.do("GET", base+"/"+live+".json", u, p, nil, "")
	if r.status != 200 || r.body["end_time"] != nil || r.body["duration"] != nil || r.str("status") != "in-progress" {
		t.Fatalf("live call: %s", r.raw)
	}
	wantStatus(t, e.do("GET", base+"/"+foreign+".json", u, p, nil, ""), 404, api.CodeNotFound)

	wantStatus(t, e.do("POST", base+"/"+live+".json", u, p, url.Values{"Url": {"http://127.0.0.1:9/next"}, "Method": {"get"}}, ""), 200, 0)
	wantStatus(t, e.do("POST", base+"/"+live+".json", u, p, url.Values{"Status": {"completed"}}, ""), 200, 0)
	if strings.Join(ctl.log, "|") != "redirect "+live+" GET http://127.0.0.1:9/next|hangup "+live {
		t.Fatalf("control log %v", ctl.log)
	}
	wantStatus(t, e.do("POST", base+"/"+ended+".json", u, p, url.Values{"Status": {"completed"}}, ""), 409, api.CodeConflict)
	for _, bad := range []url.Values{{}, {"Status": {"completed"}, "Url": {"http://x"}}, {"Status": {"ringing"}}, {"Url": {"/relative"}}, {"Url": {"http://x"}, "Method": {"PUT"}}} {
		wantStatus(t, e.do("POST", base+"/"+live+".json", u, p, bad, ""), 400, api.CodeInvalidParameter)
	}

	// Recordings: JSON and the audio itself, only for their account.
	wav := filepath.Join(t.TempDir(), "RE.wav")
	os.WriteFile(wav, []byte("RIFF....WAVEfmt "), 0o600)
	rec := sid.New(sid.Recording)
	e.st.CreateRecording(ctx, store.RecordingRecord{Sid: rec, AccountSid: e.parent.Sid, CallSid: ended, Path: wav, Duration: 1200 * time.Millisecond, DateCreated: now})
	r = e.do("GET", base+"/"+ended+"/Recordings.json", u, p, nil, "")
	if l := r.body["recordings"].([]any); len(l) != 1 || l[0].(map[string]any)["duration"] != "2" {
		t.Fatalf("call recordings: %s", r.raw)
	}
	if l := e.do("GET", base+"/"+live+"/Recordings.json", u, p, nil, "").body["recordings"].([]any); len(l) != 0 {
		t.Fatal("recordings of another call listed")
	}
	r = e.do("GET", acctPath(e.parent.Sid)+"/Recordings/"+rec+".json", u, p, nil, "")
	if r.status != 200 || !strings.HasSuffix(r.str("media_url"), rec+".wav") {
		t.Fatalf("recording: %s", r.raw)
	}
	res := e.raw("GET", acctPath(e.parent.Sid)+"/Recordings/"+rec+".wav", u, p)
	if res.status != 200 || res.ctype != "audio/wav" || res.body != "RIFF....WAVEfmt " {
		t.Fatalf("audio: %d %s %q", res.status, res.ctype, res.body)
	}
	wantStatus(t, e.do("GET", acctPath(other.Sid)+"/Recordings/"+rec+".json", u, p, nil, ""), 404, api.CodeNotFound)
	wantStatus(t, e.do("GET", acctPath(e.parent.Sid)+"/Recordings/"+rec+".mp3", u, p, nil, ""), 404, api.CodeNotFound)
}
