package server

import (
	"context"
	"errors"

	"github.com/parleyhq/parley/routing"
	"github.com/parleyhq/parley/server/api"
	"github.com/parleyhq/parley/store"
)

// originator is routing's Originator as the REST API's api.Originator:
// routing and server/api sit side by side, so neither imports the other's
// vocabulary and the request and the bad-target error are translated here.
type originator struct{ o *routing.Originator }

var _ api.Originator = originator{}

func (a originator) Originate(ctx context.Context, req api.OutboundCall) (store.CallRecord, error) {
	rec, err := a.o.Originate(ctx, routing.OutboundCall(req))
	if errors.Is(err, routing.ErrBadTarget) {
		return rec, badTarget{err}
	}
	return rec, err
}

// badTarget is routing's bad-target error, recognised by the REST API as
// api.ErrBadTarget (400) with its message unchanged.
type badTarget struct{ err error }

func (e badTarget) Error() string        { return e.err.Error() }
func (e badTarget) Unwrap() error        { return e.err }
func (e badTarget) Is(target error) bool { return target == api.ErrBadTarget }
