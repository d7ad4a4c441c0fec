package sip

import "testing"

func TestSIPpCounter(t *testing.T) {
	out := "  Successful call        |        0                  |      989                 \n" +
		"  Failed call            |        0                  |       11                 \n" +
		"-------------------------+---------------------------+----------\n"
	if got := sippCounter(out, "Failed call"); got != 11 {
		t.Fatalf("Failed call = %d", got)
	}
	if got := sippCounter(out, "Successful call"); got != 989 {
		t.Fatalf("Successful call = %d", got)
	}
	if got := sippCounter("nothing", "Failed call"); got != -1 {
		t.Fatalf("missing counter = %d", got)
	}
}
