package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestNormalizeNumber(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"+1 (555) 010-2000", "+15550102000"},
		{"+44.20.7946.0000", "+442079460000"},
		{"  alice-desk ", "alice-desk"},
		{"1000", "1000"},
		{"+", ""},
		{"+1555x", ""},
		{"+12345678901234567", ""},
		{"", ""},
		{"bob@example.com", ""},
		{"a b", ""},
		{strings.Repeat("9", 65), ""},
	} {
		if got := NormalizeNumber(c.in); got != c.want {
			t.Errorf("NormalizeNumber(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestIncomingNumbers(t *testing.T) {
	ctx := context.Background()
	st, file := openTemp(t)
	a, _ := st.CreateAccount(ctx, NewAccount{})
	b, _ := st.CreateAccount(ctx, NewAccount{})
	n, err := st.CreateIncomingNumber(ctx, IncomingNumber{AccountSid: a.Sid, PhoneNumber: "+1 555 010 2000", ApplicationSid: "AP1"})
	if err != nil || n.PhoneNumber != "+15550102000" || n.FriendlyName != "+15550102000" || !strings.HasPrefix(n.Sid, "IN") {
		t.Fatalf("create: %+v %v", n, err)
	}
	// A number has one owner on the server.
	if _, err := st.CreateIncomingNumber(ctx, IncomingNumber{AccountSid: b.Sid, PhoneNumber: "+15550102000"}); err == nil ||
		!strings.Contains(err.Error(), "UNIQUE") {
		t.Fatalf("duplicate number: %v", err)
	}
	if _, err := st.CreateIncomingNumber(ctx, IncomingNumber{AccountSid: b.Sid, PhoneNumber: "no spaces allowed"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad number: %v", err)
	}
	st.CreateIncomingNumber(ctx, IncomingNumber{AccountSid: a.Sid, PhoneNumber: "desk"})
	st.Close()
	st, err = Open(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.IncomingNumberByNumber(ctx, "+1-555-010-2000")
	if err != nil || got.Sid != n.Sid || got.ApplicationSid != "AP1" {
		t.Fatalf("by number after reopen: %+v %v", got, err)
	}
	if _, err := st.IncomingNumberByNumber(ctx, "+15550109999"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown number: %v", err)
	}
	list, more, err := st.ListIncomingNumbers(ctx, a.Sid, "", Page{Size: 10})
	if err != nil || more || len(list) != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
	list, _, _ = st.ListIncomingNumbers(ctx, a.Sid, "desk", Page{Size: 10})
	if len(list) != 1 || list[0].PhoneNumber != "desk" {
		t.Fatalf("filtered list: %+v", list)
	}
	if list, _, _ := st.ListIncomingNumbers(ctx, b.Sid, "", Page{Size: 10}); len(list) != 0 {
		t.Fatalf("other account sees %+v", list)
	}
	got.FriendlyName, got.ApplicationSid = "Sales", "AP2"
	if got, err = st.UpdateIncomingNumber(ctx, got); err != nil || got.FriendlyName != "Sales" || got.ApplicationSid != "AP2" {
		t.Fatalf("update: %+v %v", got, err)
	}
	if err := st.DeleteIncomingNumber(ctx, n.Sid); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteIncomingNumber(ctx, n.Sid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}
