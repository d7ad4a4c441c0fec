package webhook

import (
	"errors"
	"fmt"
	"net"
)

// Platform error codes of failed fetches (docs/errors.md), the hosted
// platform's where it has one.
const (
	CodeInvalidURL         = 11100 // not an absolute http(s) URL, an odd host form, or a refused IP literal
	CodeRetrieval          = 11200 // any other failure: connection, timeout, non-2xx, too large
	CodeBadHost            = 11210 // the host name does not resolve, or only to refused addresses
	CodeTooManyRedirects   = 11215
	CodeInvalidRedirect    = 11216 // a redirect from https to http, or to a URL that is not http(s)
	CodeInvalidContentType = 12300 // the reply is not of a type the verb can use (e.g. <Play> of a web page)
)

// ErrRefused matches every *RefusedError (errors.Is).
var ErrRefused = errors.New("refused by the egress policy")

// RefusedError is a fetch the egress policy refused before (or instead of)
// connecting.
type RefusedError struct {
	Code   int    // one of the Code constants
	Reason string // what was refused and why; never credentials or a query
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused (error %d): %s", e.Code, e.Reason)
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

func refused(code int, format string, args ...any) *RefusedError {
	return &RefusedError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Code returns the platform error code of a failed fetch: a refusal's own
// code, CodeBadHost when the name did not resolve, else CodeRetrieval (0 for
// a nil error).
func Code(err error) int {
	if err == nil {
		return 0
	}
	var re *RefusedError
	if errors.As(err, &re) {
		return re.Code
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return CodeBadHost
	}
	return CodeRetrieval
}
