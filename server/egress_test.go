package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parleyhq/parley/server/config"
	"github.com/parleyhq/parley/store"
)

// TestDefaultEgressRefusesLoopback: with the webhooks settings `parley serve`
// starts with, a tenant's messaging URL on loopback is never fetched; the
// message records the egress policy's code over REST.
func TestDefaultEgressRefusesLoopback(t *testing.T) {
	cfg := msgConfig(t)
	cfg.Webhooks = config.Default().Webhooks
	m := startMsgServer(t, cfg, true)
	var hits atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		w.Write([]byte(`<Response><Message>internal data</Message></Response>`))
	}))
	defer app.Close()
	a, err := m.s.Store().CreateApplication(context.Background(), store.Application{AccountSid: m.acct.Sid, FriendlyName: "sms", MessagingURL: app.URL + "/sms"})
	if err != nil {
		t.Fatal(err)
	}
	alice := newSIPPhone(t, m, "tcp")
	alice.register("alice")
	res := alice.message("alice", "sip:"+a.Sid+"@"+msgDomain, "text/plain", []byte("hello"))
	if res.StatusCode != 202 {
		t.Fatalf("MESSAGE: %d %s", res.StatusCode, res.Reason)
	}
	rec := m.waitStatus(t, sidOf(res), "failed")
	if rec["error_code"] != float64(11100) || !strings.Contains(rec["error_message"].(string), "127.0.0.1 is loopback") {
		t.Fatalf("message %v", rec)
	}
	if hits.Load() != 0 {
		t.Fatalf("the loopback application was fetched %d times", hits.Load())
	}
}
