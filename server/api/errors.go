package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/parleyhq/parley/store"
)

// Error codes returned in the "code" field; docs/errors.md describes each.
const (
	CodeInvalidParameter   = 20001 // a parameter is missing, unknown or has a bad value
	CodeMalformedBody      = 20002 // the body could not be decoded
	CodeAuthFailed         = 20003 // credentials missing or wrong, key revoked, account closed
	CodeAssertionRefused   = 20004 // a partner assertion did not verify; "reason" says why
	CodeAccountNotActive   = 20005 // the authenticated account is suspended
	CodeDomainNameRefused  = 21101 // a SIP domain name that is not a DNS hostname, an IP literal, localhost, or the server's own
	CodeForbidden          = 20403 // authenticated, but not allowed to do this
	CodeNotFound           = 20404
	CodeMethodNotAllowed   = 20405
	CodeConflict           = 20409
	CodeTooLarge           = 20413
	CodeUnsupportedMedia   = 20415
	CodeTooManyConcurrent  = 20429
	CodeInternal           = 20500
	CodeServiceUnavailable = 20503
)

// Error is an API error: an HTTP status, a stable code and a message that
// tells the caller exactly what to fix.
type Error struct {
	Status  int
	Code    int
	Message string
	Reason  string // a stable sub-code (refused partner assertions); "" for most errors
}

func (e *Error) Error() string { return fmt.Sprintf("%d %d: %s", e.Status, e.Code, e.Message) }

func errorf(status, code int, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badParam(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, CodeInvalidParameter, format, args...)
}

func notFound(r *http.Request) *Error {
	return errorf(http.StatusNotFound, CodeNotFound, "The requested resource %s was not found", r.URL.Path)
}

type errorBody struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
	Reason   string `json:"reason,omitempty"`
}

// writeError answers with err as a JSON error body. Errors that are not *Error
// (and not a store.ErrNotFound) are logged and answered 500 without detail.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, store.ErrNotFound):
		e = notFound(r)
	default:
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = errorf(http.StatusInternalServerError, CodeInternal, "Internal error; the server log has the details")
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Parley"`)
	}
	writeJSON(w, e.Status, errorBody{
		Code:     e.Code,
		Message:  e.Message,
		MoreInfo: fmt.Sprintf("https://github.com/parleyhq/parley/blob/main/docs/errors.md#%d", e.Code),
		Status:   e.Status,
		Reason:   e.Reason,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client may have gone; nothing useful to do
}
