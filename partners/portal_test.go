package partners

import "testing"

func TestCSP(t *testing.T) {
	for _, tc := range []struct {
		origins []string
		want    string
	}{
		{nil, "frame-ancestors 'none'; default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'"},
		{[]string{"https://a.test", "http://127.0.0.1:3000"}, "frame-ancestors https://a.test http://127.0.0.1:3000; default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'"},
	} {
		if got := CSP(tc.origins); got != tc.want {
			t.Errorf("CSP(%v) = %q, want %q", tc.origins, got, tc.want)
		}
	}
}

func TestNewTriggerCheck(t *testing.T) {
	ok := NewTrigger{UsageCategory: "calls", TriggerValue: "100", CallbackURL: "https://x.test/h"}
	for _, tc := range []struct {
		name string
		mod  func(*NewTrigger)
		ok   bool
	}{
		{"ok", func(*NewTrigger) {}, true},
		{"suspend without callback", func(n *NewTrigger) { n.CallbackURL, n.Suspend = "", true }, true},
		{"by usage, monthly", func(n *NewTrigger) { n.TriggerBy, n.Recurring = "usage", "monthly" }, true},
		{"unknown category", func(n *NewTrigger) { n.UsageCategory = "pizza" }, false},
		{"zero threshold", func(n *NewTrigger) { n.TriggerValue = "0" }, false},
		{"not a number", func(n *NewTrigger) { n.TriggerValue = "lots" }, false},
		{"relative value", func(n *NewTrigger) { n.TriggerValue = "+5" }, true},
		{"bad repeat", func(n *NewTrigger) { n.Recurring = "hourly" }, false},
		{"bad measure", func(n *NewTrigger) { n.TriggerBy = "price" }, false},
		{"no callback, no suspend", func(n *NewTrigger) { n.CallbackURL = "" }, false},
		{"javascript URL", func(n *NewTrigger) { n.CallbackURL = "javascript:alert(1)" }, false},
		{"long name", func(n *NewTrigger) { n.FriendlyName = string(make([]byte, 65)) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := ok
			tc.mod(&n)
			if err := n.Check(); (err == nil) != tc.ok {
				t.Fatalf("Check() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
