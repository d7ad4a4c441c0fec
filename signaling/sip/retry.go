package sip

import (
	"math"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
)

// retryLater is an error that asks the client to come back later: an
// admission denial (admission.Denial) is one. Calls and messages answer it
// with 503 and Retry-After. The interface is this package's own, so that
// sip does not import admission to recognise one.
type retryLater interface {
	error
	RetryAfter() time.Duration
}

// retryAfterHeader is the Retry-After header for r: its wait rounded up to
// whole seconds, at least 1.
func retryAfterHeader(r retryLater) sip.Header {
	secs := int(max(1, math.Ceil(float64(r.RetryAfter())/float64(time.Second))))
	return sip.NewHeader("Retry-After", strconv.Itoa(secs))
}
