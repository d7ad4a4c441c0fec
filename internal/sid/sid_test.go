package sid

import "testing"

func TestNewValid(t *testing.T) {
	s := New(Account)
	if !Valid(Account, s) {
		t.Fatalf("New produced invalid sid %q", s)
	}
	if New(Account) == s {
		t.Fatal("two sids were equal")
	}
	for _, bad := range []string{"", "AC", "SK" + s[2:], s + "0", "AC" + "G" + s[3:], "AC" + "A" + s[3:]} {
		if Valid(Account, bad) {
			t.Errorf("Valid(%q) = true", bad)
		}
	}
}

func TestSecret(t *testing.T) {
	s := Secret(32)
	if len(s) != 32 {
		t.Fatalf("len = %d", len(s))
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			t.Fatalf("non-alphanumeric %q in %q", c, s)
		}
	}
}
