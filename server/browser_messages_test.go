package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// browser is a signalling client on /v1/signal that only does messages.
type browser struct {
	t  *testing.T
	ws *websocket.Conn
}

func openBrowser(t *testing.T, m *msgServer, identity string) *browser {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(m.base, "http")+"/v1/signal", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	b := &browser{t: t, ws: ws}
	b.send(map[string]any{"type": "register", "token": m.token(t, identity)})
	if f := b.next("registered"); f["type"] != "registered" {
		t.Fatalf("register: %v", f)
	}
	return b
}

func (b *browser) send(f map[string]any) {
	b.t.Helper()
	if err := b.ws.WriteJSON(f); err != nil {
		b.t.Fatal(err)
	}
}

// next returns the next frame of type typ (or an error frame).
func (b *browser) next(typ string) map[string]any {
	b.t.Helper()
	b.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var f map[string]any
		if err := b.ws.ReadJSON(&f); err != nil {
			b.t.Fatalf("waiting for %s: %v", typ, err)
		}
		if f["type"] == typ || f["type"] == "error" {
			return f
		}
	}
}

// TestBrowserMessages: messages reach browser sessions (one frame per tab,
// stored while the browser is away) and browsers send messages to SIP
// clients, through the same messaging service as SIP MESSAGE.
func TestBrowserMessages(t *testing.T) {
	m := startMsgServer(t, msgConfig(t), true)
	alice := newSIPPhone(t, m, "tcp")
	alice.register("alice")

	// A REST message to a browser that is not there yet is stored…
	code, body := m.rest(t, http.MethodPost, "/Messages.json", url.Values{"To": {"client:web"}, "From": {"client:ops"}, "Body": {"while you were away"}})
	if code != 201 {
		t.Fatalf("send: %d %s", code, body)
	}
	var queued map[string]any
	json.Unmarshal([]byte(body), &queued)
	m.waitStatus(t, queued["sid"].(string), "queued")
	// … and delivered when it registers.
	tab1 := openBrowser(t, m, "web")
	if f := tab1.next("message"); f["body"] != "while you were away" || f["from"] != "client:ops" {
		t.Fatalf("stored message frame %v", f)
	}
	m.waitStatus(t, queued["sid"].(string), "delivered")

	// A SIP MESSAGE from alice reaches both tabs of web, once each.
	tab2 := openBrowser(t, m, "web")
	// The client web is reached at the server itself (a host that is not one of the account's domains).
	res := alice.message("alice", "sip:web@127.0.0.1", "text/plain", []byte("hello browsers"))
	if res.StatusCode != 200 {
		t.Fatalf("MESSAGE to the browser: %d %s", res.StatusCode, res.Reason)
	}
	for i, tab := range []*browser{tab1, tab2} {
		if f := tab.next("message"); f["body"] != "hello browsers" || f["from"] != "sip:alice@"+msgDomain {
			t.Fatalf("tab %d got %v", i+1, f)
		}
	}

	// A browser's message goes out to a SIP phone…
	tab1.send(map[string]any{"type": "message", "to": "sip:alice@" + msgDomain, "body": "hi from the browser"})
	got := alice.next(5 * time.Second)
	if string(got.Body()) != "hi from the browser" || got.From().Address.User != "web" {
		t.Fatalf("alice got %q from %s", got.Body(), got.From().Address.String())
	}
	// … and to another browser by its bare identity.
	other := openBrowser(t, m, "other")
	tab2.send(map[string]any{"type": "message", "to": "other", "body": "tab to tab"})
	if f := other.next("message"); f["body"] != "tab to tab" || f["from"] != "client:web" {
		t.Fatalf("other got %v", f)
	}
	// Refusals come back as error frames; the socket stays usable.
	tab1.send(map[string]any{"type": "message", "to": "sip:nobody@" + msgDomain, "body": "no such user"})
	if f := tab1.next("message_refused_never"); f["type"] != "error" || f["code"] != "message_refused" {
		t.Fatalf("refusal %v", f)
	}
	tab1.send(map[string]any{"type": "message", "to": "other", "body": "still here"})
	if f := other.next("message"); f["body"] != "still here" {
		t.Fatalf("after a refusal: %v", f)
	}
}
