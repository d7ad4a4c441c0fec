package admission

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// HTTP headers set on a REST denial.
const (
	HeaderConcurrentRequests = "Parley-Concurrent-Requests"
	HeaderConcurrencyLimit   = "Parley-Concurrency-Limit"
)

// Acquirer is what Middleware needs; *Client implements it.
type Acquirer interface {
	Acquire(ctx context.Context, accountSid string, r Resource) (release func(), err error)
}

// Middleware admits each request as one ResourceAPI slot of the account that
// account returns (ok=false: not account-scoped, pass through), held until
// next returns. Over the limit it answers 429 with Retry-After and the
// concurrency headers; when the plugin is down and on_failure is closed,
// 503. Run it after authentication.
func Middleware(a Acquirer, account func(*http.Request) (string, bool), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sid, ok := account(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		release, err := a.Acquire(r.Context(), sid, ResourceAPI)
		if err != nil {
			WriteDenial(w, err)
			return
		}
		defer release()
		next.ServeHTTP(w, r)
	})
}

// WriteDenial answers an Acquire error: 429 (or 503 when unavailable) with
// Retry-After for a *Denial, 500 otherwise. The body is JSON shaped like the
// REST API's errors.
func WriteDenial(w http.ResponseWriter, err error) {
	var d *Denial
	if !errors.As(err, &d) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, `{"code":20500,"message":%q,"status":500}`, err.Error())
		return
	}
	secs := int64(math.Ceil(d.Wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	h.Set("Content-Type", "application/json")
	code, apiCode := http.StatusTooManyRequests, 20429
	if d.Unavailable {
		code, apiCode = http.StatusServiceUnavailable, 20503
	} else {
		h.Set(HeaderConcurrentRequests, strconv.FormatInt(d.Current, 10))
		h.Set(HeaderConcurrencyLimit, strconv.FormatInt(d.Limit, 10))
	}
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"code":%d,"message":%q,"status":%d}`, apiCode, d.Error(), code)
}

// RetryAfterSeconds rounds a Denial's Wait up to whole seconds (at
// least 1), for SIP 503 Retry-After.
func RetryAfterSeconds(d *Denial) int {
	return int(max(1, math.Ceil(float64(d.Wait)/float64(time.Second))))
}
