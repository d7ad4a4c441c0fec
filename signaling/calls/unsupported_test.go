package calls

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestUnsupportedVerbsFailCleanly: verbs and nouns the parser models but the
// engine does not run yet fail the call with a reported "not supported"
// error naming them (500 to an unanswered caller, status failed), never a
// silent skip; a call already answered is hung up.
func TestUnsupportedVerbsFailCleanly(t *testing.T) {
	tests := []struct {
		name, doc, want string
		answered        bool
	}{
		{"enqueue", `<Response><Enqueue waitUrl="/wait">support</Enqueue></Response>`, "<Enqueue> (line 1)", false},
		{"leave", `<Response><Leave/></Response>`, "<Leave>", false},
		{"refer", `<Response><Refer><Sip>sip:a@example.test</Sip></Refer></Response>`, "<Refer>", false},
		{"connect", `<Response><Connect><Stream url="wss://agent.example.test/x"/></Connect></Response>`, "<Connect>", false},
		{"start", `<Response><Start><Stream url="wss://agent.example.test/x"/></Start></Response>`, "<Start>", false},
		{"stop", `<Response><Stop><Stream name="x"/></Stop></Response>`, "<Stop>", false},
		{"conference", "<Response>\n<Dial><Conference>room</Conference></Dial></Response>", "<Dial><Conference> (line 2)", false},
		{"queue", `<Response><Dial><Queue>support</Queue></Dial></Response>`, "<Dial><Queue>", false},
		{"speech gather", `<Response><Gather input="speech"/></Response>`, `<Gather input="speech">`, true},
		{"after answer", "<Response><Pause/><Play digits=\"1\"/>\n<Enqueue>q</Enqueue></Response>", "<Enqueue> (line 2)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApp(t, map[string]string{"/voice": tt.doc})
			logs := &logBuffer{}
			d := &dialer{t: t, status: DialAnswered}
			f := newFixture(t, d, func(c *Config) { c.Log = slog.New(slog.NewJSONHandler(logs, nil)) })
			d.ports = f.ports
			leg := newRTPLeg(t, f.ports)
			call := newCall(a)
			err := wait(t, f.runCall(call, leg), 5*time.Second)
			if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v; want not supported naming %s", err, tt.want)
			}
			answered, rejected, hungUp := leg.state()
			if tt.answered {
				if !answered || !hungUp || call.Status() != StatusCompleted {
					t.Fatalf("answered %v hung up %v status %s", answered, hungUp, call.Status())
				}
			} else if rejected != 500 || call.Status() != StatusFailed {
				t.Fatalf("rejected %d status %s", rejected, call.Status())
			}
			if !strings.Contains(logs.String(), "not supported by this server") {
				t.Fatalf("the error is not in the call's log:\n%s", logs.String())
			}
			d.mu.Lock()
			dialled := len(d.reqs)
			d.mu.Unlock()
			if dialled != 0 {
				t.Fatalf("the dialer was asked %d times", dialled)
			}
		})
	}
}
