package routing

import (
	"context"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/presence"
	"github.com/parleyhq/parley/store"
)

// Store is what routing reads and writes of the core data (*store.Store
// implements it).
type Store interface {
	Account(ctx context.Context, accountSid string) (store.Account, error)
	Application(ctx context.Context, appSid string) (store.Application, error)
	IncomingNumberByNumber(ctx context.Context, number string) (store.IncomingNumber, error)
	SIPDomainByName(ctx context.Context, name string) (store.SIPDomain, error)
	ListSIPDomains(ctx context.Context, accountSid string, p store.Page) ([]store.SIPDomain, bool, error)
	DigestCredential(ctx context.Context, domain, username string) (presence.DigestCredential, error)
	SaveCall(ctx context.Context, c store.CallRecord) error
	CreateRecording(ctx context.Context, r store.RecordingRecord) error
}

// Admitter is what routing needs of admission (*admission.Client
// implements it): a slot of a resource, released by the returned function,
// or an *admission.Denial.
type Admitter interface {
	Acquire(ctx context.Context, accountSid string, r admission.Resource) (func(), error)
}
