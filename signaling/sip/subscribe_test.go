package sip

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/parleyhq/parley/presence/pidf"
)

func (c *client) subscribe(target string, expires string, toTag string) *sip.Response {
	c.t.Helper()
	req := c.request(sip.SUBSCRIBE, "carol", sip.Uri{Scheme: "sip", User: target, Host: testDomain})
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: target, Host: testDomain}, Params: sip.NewParams()}
	if toTag != "" {
		to.Params.Add("tag", toTag)
	}
	req.AppendHeader(to)
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Accept", "application/pidf+xml"))
	req.AppendHeader(sip.NewHeader("Contact", "<sip:carol@127.0.0.1:5996>"))
	if expires != "" {
		req.AppendHeader(sip.NewHeader("Expires", expires))
	}
	return c.do(req, "carol", testPassword)
}

// expectNotify waits for a NOTIFY and checks its state and PIDF basic status.
func expectNotify(t *testing.T, c *client, wantState, wantBasic string) *sip.Request {
	t.Helper()
	n, err := c.nextNotify(5 * time.Second)
	if err != nil {
		t.Fatalf("waiting for NOTIFY (%s, %s): %v", wantState, wantBasic, err)
	}
	state := n.GetHeader("Subscription-State").Value()
	if !strings.HasPrefix(state, wantState) {
		t.Fatalf("Subscription-State %q, want %s…", state, wantState)
	}
	if ev := n.GetHeader("Event"); ev == nil || ev.Value() != "presence" {
		t.Fatalf("Event %v", ev)
	}
	if ct := n.ContentType(); ct == nil || ct.Value() != pidf.ContentType {
		t.Fatalf("Content-Type %v", ct)
	}
	doc, err := pidf.Parse(n.Body())
	if err != nil {
		t.Fatalf("NOTIFY body: %v\n%s", err, n.Body())
	}
	if doc.Entity != "sip:alice@"+testDomain || len(doc.Tuples) != 1 || doc.Tuples[0].Basic != wantBasic {
		t.Fatalf("PIDF %+v, want basic %s", doc, wantBasic)
	}
	return n
}

func TestSubscribeNotifyPIDF(t *testing.T) {
	for _, tp := range []string{"udp", "tcp", "ws"} {
		t.Run(tp, func(t *testing.T) {
			e := newEnv(t, "", nil)
			watcher := e.newClient(tp)
			res := watcher.subscribe("alice", "600", "")
			if res.StatusCode != 200 || res.GetHeader("Expires").Value() != "600" {
				t.Fatalf("SUBSCRIBE: %d %s %v", res.StatusCode, res.Reason, res.GetHeader("Expires"))
			}
			toTag, _ := res.To().Params.Get("tag")
			first := expectNotify(t, watcher, "active", pidf.Closed)
			if tag, _ := first.From().Params.Get("tag"); tag != toTag {
				t.Fatalf("NOTIFY From tag %q, dialog tag %q", tag, toTag)
			}

			// alice registers: the watcher hears she is available.
			alice := e.newClient("udp")
			if res := alice.register("alice", testPassword, []string{"<sip:alice@127.0.0.1:6200>"}); res.StatusCode != 200 {
				t.Fatalf("alice: %d", res.StatusCode)
			}
			expectNotify(t, watcher, "active", pidf.Open)

			// Refresh within the dialog: immediate NOTIFY again.
			if res := watcher.subscribe("alice", "300", toTag); res.StatusCode != 200 {
				t.Fatalf("refresh: %d %s", res.StatusCode, res.Reason)
			}
			n := expectNotify(t, watcher, "active;expires=", pidf.Open)
			if s := n.GetHeader("Subscription-State").Value(); !strings.Contains(s, "expires=299") && !strings.Contains(s, "expires=300") {
				t.Fatalf("refreshed state %q", s)
			}
			// An unknown dialog is refused.
			if res := watcher.subscribe("alice", "300", "no-such-tag"); res.StatusCode != 481 {
				t.Fatalf("unknown dialog: %d", res.StatusCode)
			}
			// Unsubscribe: terminated NOTIFY.
			if res := watcher.subscribe("alice", "0", toTag); res.StatusCode != 200 {
				t.Fatalf("unsubscribe: %d", res.StatusCode)
			}
			expectNotify(t, watcher, "terminated", pidf.Open)
			waitFor(t, "subscription removed", func() bool { return e.srv.Subscriptions() == 0 })
		})
	}
}

func TestSubscribeExpiryAndRefusals(t *testing.T) {
	e := newEnv(t, "", nil)
	watcher := e.newClient("udp")
	if res := watcher.subscribe("alice", "60", ""); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d", res.StatusCode)
	}
	expectNotify(t, watcher, "active", pidf.Closed)
	e.clk.Advance(61 * time.Second)
	n := expectNotify(t, watcher, "terminated;reason=timeout", pidf.Closed)
	_ = n
	if e.srv.Subscriptions() != 0 {
		t.Fatal("expired subscription kept")
	}
	if res := watcher.subscribe("alice", "5", ""); res.StatusCode != 423 || res.GetHeader("Min-Expires") == nil {
		t.Fatalf("too brief: %d", res.StatusCode)
	}
	// Wrong event package.
	req := watcher.request(sip.SUBSCRIBE, "carol", sip.Uri{Scheme: "sip", User: "alice", Host: testDomain})
	req.AppendHeader(sip.NewHeader("Event", "dialog"))
	if res := watcher.do(req, "carol", testPassword); res.StatusCode != 489 {
		t.Fatalf("bad event: %d", res.StatusCode)
	}
	// Unauthenticated watchers are challenged, wrong passwords refused.
	req = watcher.request(sip.SUBSCRIBE, "carol", sip.Uri{Scheme: "sip", User: "alice", Host: testDomain})
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	if res := watcher.do(req, "carol", "wrong password"); res.StatusCode != 403 {
		t.Fatalf("wrong password: %d", res.StatusCode)
	}
}
