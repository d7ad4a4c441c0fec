package usage_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/parleyhq/parley/usage"
)

func TestEventHelpers(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		evs  []usage.Event
		want string // "category count usage id" per event
	}{
		{"inbound client call", usage.CallEnded(acct, "CA1", "inbound", "client", 61*time.Second, at),
			"[calls 1 2 CA1:calls calls-inbound 1 2 CA1:calls-inbound calls-client 1 2 CA1:calls-client]"},
		{"outbound sip call", usage.CallEnded(acct, "CA2", "outbound-dial", "sip", 60*time.Second, at),
			"[calls 1 1 CA2:calls calls-outbound 1 1 CA2:calls-outbound calls-sip 1 1 CA2:calls-sip]"},
		{"unanswered number call", usage.CallEnded(acct, "CA3", "outbound-api", "number", 0, at),
			"[calls 1 0 CA3:calls calls-outbound 1 0 CA3:calls-outbound calls-number 1 0 CA3:calls-number]"},
		{"inbound message", usage.Message(acct, "SM1", "inbound", at), "[messages 1 1 SM1:messages messages-inbound 1 1 SM1:messages-inbound]"},
		{"recording", []usage.Event{usage.Recording(acct, "RE1", 125*time.Second, at)}, "[recordings 1 3 RE1:recordings]"},
		{"twiml fetch", []usage.Event{usage.TwiMLFetch(acct, "CA1", 2, at)}, "[twiml-fetches 1 1 CA1:twiml:2]"},
		{"registration", []usage.Event{usage.Registration(acct, "callid-7", at)}, "[sip-registrations 1 1 REG:callid-7]"},
		{"api request", []usage.Event{usage.APIRequest(acct, at)}, "[api-requests 1 1 ]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range tc.evs {
				if e.AccountSid != acct || !e.Time.Equal(at) {
					t.Fatalf("event %+v", e)
				}
				got = append(got, fmt.Sprintf("%s %d %g %s", e.Category, e.Count, e.Usage, e.ID))
			}
			if fmt.Sprint(got) != tc.want {
				t.Fatalf("got  %v\nwant %s", got, tc.want)
			}
		})
	}
}

func TestCallStartedAndMinutesAddUpToCallEnded(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	sum := func(evs []usage.Event) map[string][2]float64 {
		out := map[string][2]float64{}
		for _, e := range evs {
			v := out[e.Category]
			out[e.Category] = [2]float64{v[0] + float64(e.Count), v[1] + e.Usage}
		}
		return out
	}
	for _, tc := range []struct {
		direction, leg string
		d              time.Duration
	}{{"inbound", "sip", 61 * time.Second}, {"outbound-api", "client", 0}, {"outbound-dial", "number", time.Second}} {
		whole := sum(usage.CallEnded("AC1", "CA1", tc.direction, tc.leg, tc.d, at))
		phased := sum(append(usage.CallStarted("AC1", "CA1", tc.direction, tc.leg, at), usage.CallMinutes("AC1", "CA1", tc.direction, tc.leg, tc.d, at)...))
		if fmt.Sprint(whole) != fmt.Sprint(phased) {
			t.Errorf("%+v: CallEnded %v, started+minutes %v", tc, whole, phased)
		}
	}
	// The start shares CallEnded's ids (never counted twice); the minutes do not.
	s, e := usage.CallStarted("AC1", "CA9", "inbound", "sip", at), usage.CallEnded("AC1", "CA9", "inbound", "sip", time.Minute, at)
	for i := range s {
		if s[i].ID != e[i].ID {
			t.Fatalf("ids differ: %s %s", s[i].ID, e[i].ID)
		}
	}
}
