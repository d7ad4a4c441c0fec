package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/parleyhq/parley/admission"
	"github.com/parleyhq/parley/store"
)

// The usage deliverer's collaborators on the platform side: they adapt the
// core store and the admission client to usage.Accounts and usage.Actions.

// storeAccounts gives the deliverer the auth tokens kept in the core store.
type storeAccounts struct{ Store *store.Store }

// AuthToken returns the account's current auth token.
func (s storeAccounts) AuthToken(ctx context.Context, accountSid string) (string, error) {
	a, err := s.Store.Account(ctx, accountSid)
	if err != nil {
		return "", err
	}
	return a.AuthToken, nil
}

// admissionLimits is the part of *admission.Client that trigger actions use.
type admissionLimits interface {
	Limits(ctx context.Context, accountSid string) ([]admission.Limit, error)
	SetLimit(ctx context.Context, accountSid string, r admission.Resource, limit int64) (admission.Limit, error)
}

// platformActions carries out trigger actions on the core store and the
// admission limits. Both actions are idempotent and only ever tighten:
// suspending a suspended or closed account does nothing, and a limit is
// only lowered (an account already at or below it keeps its own).
type platformActions struct {
	Store  *store.Store
	Limits admissionLimits // nil: limit-admission actions fail (and are retried)
}

// SuspendAccount suspends an active account.
func (p platformActions) SuspendAccount(ctx context.Context, accountSid string) error {
	a, err := p.Store.Account(ctx, accountSid)
	if err != nil {
		return fmt.Errorf("suspend %s: %w", accountSid, err)
	}
	if a.Status != store.StatusActive {
		return nil
	}
	st := store.StatusSuspended
	if _, err := p.Store.UpdateAccount(ctx, accountSid, store.AccountUpdate{Status: &st}); err != nil && !errors.Is(err, store.ErrClosed) {
		return fmt.Errorf("suspend %s: %w", accountSid, err)
	}
	return nil
}

// LimitAdmission lowers the account's admission limit of resource to limit.
func (p platformActions) LimitAdmission(ctx context.Context, accountSid, resource string, limit int64) error {
	r := admission.Resource(resource)
	if !r.Valid() {
		return fmt.Errorf("limit admission: unknown resource %q", resource)
	}
	if p.Limits == nil {
		return errors.New("limit admission: no admission client wired")
	}
	ls, err := p.Limits.Limits(ctx, accountSid)
	if err != nil {
		return fmt.Errorf("limit admission: %w", err)
	}
	for _, l := range ls {
		if l.Resource == r && l.Limit != -1 && l.Limit <= limit {
			return nil // already as tight
		}
	}
	if _, err := p.Limits.SetLimit(ctx, accountSid, r, limit); err != nil {
		return fmt.Errorf("limit admission: %w", err)
	}
	return nil
}
