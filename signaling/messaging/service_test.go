package messaging

import (
	"errors"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Config
		want Config
	}{
		{"zero", Config{}, DefaultConfig()},
		{"store off stays off", Config{StoreFor: -1}, Config{MaxBodyBytes: 32 << 10, StoreFor: -1, DeliveryTimeout: 10 * time.Second, SweepInterval: 10 * time.Second}},
		{"set values kept", Config{MaxBodyBytes: 100, StoreFor: time.Hour, DeliveryTimeout: time.Second, SweepInterval: time.Minute},
			Config{MaxBodyBytes: 100, StoreFor: time.Hour, DeliveryTimeout: time.Second, SweepInterval: time.Minute}},
		{"negative size", Config{MaxBodyBytes: -5}, DefaultConfig()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.withDefaults(); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestStatusCallbackParams(t *testing.T) {
	for _, tc := range []struct {
		name      string
		m         Message
		wantError string
	}{
		{"delivered", Message{Sid: "SM1", AccountSid: "AC1", From: "client:a", To: "sip:b@d", Status: StatusDelivered}, ""},
		{"undelivered with a code", Message{Sid: "SM2", AccountSid: "AC1", From: "client:a", To: "client:b", Status: StatusUndelivered, ErrorCode: ErrorUnreachable}, "30003"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Params(tc.m)
			for k, want := range map[string]string{"MessageSid": tc.m.Sid, "SmsSid": tc.m.Sid, "AccountSid": tc.m.AccountSid,
				"From": tc.m.From, "To": tc.m.To, "MessageStatus": tc.m.Status, "SmsStatus": tc.m.Status, "ApiVersion": "2010-04-01",
				"ErrorCode": tc.wantError} {
				if p.Get(k) != want {
					t.Fatalf("%s = %q, want %q", k, p.Get(k), want)
				}
			}
			if _, has := p["ErrorCode"]; has != (tc.wantError != "") {
				t.Fatalf("ErrorCode present = %v", has)
			}
		})
	}
}

func TestCheckBody(t *testing.T) {
	s := &Service{cfg: Config{MaxBodyBytes: 4}.withDefaults()}
	for _, tc := range []struct {
		body string
		want error
	}{{"", ErrEmpty}, {"abcd", nil}, {"abcde", ErrTooLarge}} {
		if err := s.checkBody([]byte(tc.body)); (err == nil) != (tc.want == nil) || tc.want != nil && !errors.Is(err, tc.want) {
			t.Fatalf("%q: %v, want %v", tc.body, err, tc.want)
		}
	}
}
