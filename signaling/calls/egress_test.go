package calls

import (
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/webhook"
)

// TestRefusedVoiceURLFallsBackWithItsCode: a voice URL the egress policy
// refuses is never fetched; the fallback URL hears why (ErrorCode) and the
// call's error names the code.
func TestRefusedVoiceURLFallsBackWithItsCode(t *testing.T) {
	for _, tc := range []struct {
		voice, code string
	}{
		{"http://10.0.0.1/voice", "11100"},
		{"http://169.254.169.254/latest/meta-data/", "11100"},
		{"http://0x7f.1/voice", "11100"},
		{"gopher://example.com/voice", "11100"},
	} {
		a := newApp(t, map[string]string{"/fallback": `<Response><Reject reason="busy"/></Response>`})
		f := newFixture(t, nil, nil)
		leg := newRTPLeg(t, f.ports)
		call := newCall(a)
		call.VoiceURL = tc.voice
		call.FallbackURL, call.FallbackMethod = a.srv.URL+"/fallback", "POST"
		if err := wait(t, f.runCall(call, leg), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		fb := a.requests("/fallback")
		if len(fb) != 1 || fb[0].form.Get("ErrorCode") != tc.code || fb[0].form.Get("ErrorUrl") != tc.voice {
			t.Fatalf("%s: fallback requests %+v", tc.voice, fb)
		}
		if _, rejected, _ := leg.state(); rejected != 486 {
			t.Fatalf("%s: the fallback's instructions did not run (rejected %d)", tc.voice, rejected)
		}
	}
	// Without a fallback the call fails with the refusal in its error.
	a := newApp(t, nil)
	f := newFixture(t, nil, nil)
	call := newCall(a)
	call.VoiceURL = "http://[::ffff:192.168.1.1]/voice"
	err := wait(t, f.runCall(call, newRTPLeg(t, f.ports)), 5*time.Second)
	if webhook.Code(err) != webhook.CodeInvalidURL || !strings.Contains(err.Error(), "private") || call.Status() != StatusFailed {
		t.Fatalf("err %v (code %d), status %s", err, webhook.Code(err), call.Status())
	}
}
