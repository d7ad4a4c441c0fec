package admission

import (
	"fmt"
	"time"

	admissionv1 "github.com/parleyhq/parley/plugins/proto/admission/v1"
)

// Resource is a kind of work that is admitted per account; the kind's
// vocabulary lives with its contract (plugins/proto/admission/v1).
type Resource = admissionv1.Resource

// The resource types of SPEC §4a.
const (
	ResourceAPI      = admissionv1.ResourceAPI      // concurrent REST requests
	ResourceCalls    = admissionv1.ResourceCalls    // concurrent calls
	ResourceCallsCPS = admissionv1.ResourceCallsCPS // call setups per second
	ResourceMessages = admissionv1.ResourceMessages // concurrent message sends
)

// Resources lists every resource type in a stable order.
func Resources() []Resource { return admissionv1.Resources() }

// Denial is the error returned when an account is over its limit for a
// resource. REST answers it with 429, SIP with 503, both with Retry-After.
type Denial struct {
	Resource Resource
	Current  int64 // concurrency value when the request was refused
	Limit    int64
	// Wait is how long to wait before retrying (Retry-After).
	Wait time.Duration
	// Unavailable is set when the admission plugin could not decide (down,
	// restarting, too slow) and on_failure is "closed": answer 503 rather
	// than 429, and Current/Limit carry no information.
	Unavailable bool
}

func (d *Denial) Error() string {
	if d.Unavailable {
		return fmt.Sprintf("%s admission unavailable (policy plugin down, failing closed); retry after %s", d.Resource, d.Wait)
	}
	return fmt.Sprintf("%s concurrency %d reached limit %d; retry after %s", d.Resource, d.Current, d.Limit, d.Wait)
}

// RetryAfter is how long to wait before retrying: the signalling front ends
// (SIP, WebRTC) detect a denial by this method, through an interface of
// their own, instead of importing this package.
func (d *Denial) RetryAfter() time.Duration { return d.Wait }
