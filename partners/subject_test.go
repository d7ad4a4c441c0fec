package partners

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestUnverifiedSubject(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	acct := "AC" + strings.Repeat("a", 32)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"ok", enc(`{"alg":"HS256"}`) + "." + enc(`{"sub":"`+acct+`"}`) + ".sig", acct},
		{"not a sid", enc(`{}`) + "." + enc(`{"sub":"bob"}`) + ".sig", ""},
		{"sub not a string", enc(`{}`) + "." + enc(`{"sub":1}`) + ".sig", ""},
		{"two parts", enc(`{}`) + "." + enc(`{"sub":"`+acct+`"}`), ""},
		{"bad base64", "a.%%%.b", ""},
		{"too long", strings.Repeat("a", maxAssertion+1), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := UnverifiedSubject(tc.in)
			if got != tc.want || (err == nil) != (tc.want != "") {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func FuzzUnverifiedSubject(f *testing.F) {
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJBQzEyMyJ9.x")
	f.Add("..")
	f.Fuzz(func(t *testing.T, s string) {
		sub, err := UnverifiedSubject(s)
		if err == nil && (len(sub) != 34 || !strings.HasPrefix(sub, "AC")) {
			t.Fatalf("accepted sub %q", sub)
		}
	})
}
