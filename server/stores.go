package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parleyhq/parley/partners"
	"github.com/parleyhq/parley/signaling/messaging"
	"github.com/parleyhq/parley/store"
)

// The adapters in this file fit the core store to the interfaces its
// consumers own where their vocabulary differs from the store's record
// types (the store imports none of its consumers).

// messageStore is the store as messaging.Store: store.Message and
// messaging.Message have the same fields and convert into each other.
type messageStore struct{ st *store.Store }

var _ messaging.Store = messageStore{}

func (m messageStore) CreateMessage(ctx context.Context, msg messaging.Message) error {
	return m.st.CreateMessage(ctx, store.Message(msg))
}

func (m messageStore) UpdateMessageStatus(ctx context.Context, msg messaging.Message) error {
	return m.st.UpdateMessageStatus(ctx, store.Message(msg))
}

func (m messageStore) QueuedMessages(ctx context.Context, accountSid, target string) ([]messaging.Message, error) {
	ms, err := m.st.QueuedMessages(ctx, accountSid, target)
	return messagesOf(ms), err
}

func (m messageStore) QueuedTargets(ctx context.Context) ([]messaging.Recipient, error) {
	ts, err := m.st.QueuedTargets(ctx)
	if ts == nil {
		return nil, err
	}
	out := make([]messaging.Recipient, len(ts))
	for i, t := range ts {
		out[i] = messaging.Recipient(t)
	}
	return out, err
}

func (m messageStore) ExpireMessages(ctx context.Context, now time.Time, code int, reason string) ([]messaging.Message, error) {
	ms, err := m.st.ExpireMessages(ctx, now, code, reason)
	return messagesOf(ms), err
}

func (m messageStore) RequeueSending(ctx context.Context) (int, error) {
	return m.st.RequeueSending(ctx)
}

func messagesOf(ms []store.Message) []messaging.Message {
	if ms == nil {
		return nil
	}
	out := make([]messaging.Message, len(ms))
	for i, m := range ms {
		out[i] = messaging.Message(m)
	}
	return out
}

// partnerAccounts is the store as partners.Accounts.
type partnerAccounts struct{ st *store.Store }

var _ partners.Accounts = partnerAccounts{}

func (p partnerAccounts) Account(ctx context.Context, accountSid string) (partners.Account, error) {
	a, err := p.st.Account(ctx, accountSid)
	if errors.Is(err, store.ErrNotFound) {
		return partners.Account{}, fmt.Errorf("account %s: %w", accountSid, partners.ErrNotFound)
	}
	if err != nil {
		return partners.Account{}, err
	}
	return partners.Account{Sid: a.Sid, FriendlyName: a.FriendlyName, Status: a.Status, OwnerPartnerSid: a.OwnerPartnerSid}, nil
}

// portalCalls is the store as partners.CallLister.
type portalCalls struct{ st *store.Store }

var _ partners.CallLister = portalCalls{}

func (p portalCalls) RecentCalls(ctx context.Context, accountSid string, n int) ([]partners.Call, error) {
	cs, _, err := p.st.ListCalls(ctx, accountSid, store.CallFilter{}, store.Page{Size: n})
	if err != nil {
		return nil, err
	}
	out := make([]partners.Call, len(cs))
	for i, c := range cs {
		out[i] = partners.Call{Sid: c.Sid, From: c.From, To: c.To, Direction: c.Direction, Status: c.Status,
			Started: c.Started, DateCreated: c.DateCreated, Duration: c.Duration}
	}
	return out, nil
}
