package sip

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/parleyhq/parley/admission"
)

// TestRetryLaterRecognisesAdmissionDenials: a denial from admission, wrapped
// on its way up, is found through sip's own interface and answered with
// Retry-After in whole seconds, at least 1.
func TestRetryLaterRecognisesAdmissionDenials(t *testing.T) {
	for _, tc := range []struct {
		wait time.Duration
		want string
	}{
		{1500 * time.Millisecond, "2"},
		{time.Millisecond, "1"},
		{0, "1"},
		{30 * time.Second, "30"},
	} {
		err := fmt.Errorf("routing: %w", &admission.Denial{Resource: admission.ResourceCalls, Current: 2, Limit: 2, Wait: tc.wait})
		var r retryLater
		if !errors.As(err, &r) {
			t.Fatalf("%v: not recognised as a retry-later error", err)
		}
		if h := retryAfterHeader(r); h.Name() != "Retry-After" || h.Value() != tc.want {
			t.Errorf("wait %v: %s: %s, want Retry-After: %s", tc.wait, h.Name(), h.Value(), tc.want)
		}
	}
	var r retryLater
	if errors.As(errors.New("plain"), &r) {
		t.Fatal("a plain error taken for a denial")
	}
}
