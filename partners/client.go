package partners

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
)

// Errors of the Client.
var (
	// ErrNotFound: no such partner, key or session — and, from Accounts,
	// no such account.
	ErrNotFound        = errors.New("not found")
	ErrUnauthenticated = errors.New("wrong partner credentials")
	ErrForbidden       = errors.New("partner not active")
	ErrUnavailable     = errors.New("partners plugin unavailable")
)

// InvalidError is a request the plugin refused; its message is for the user.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// RefusedError is an assertion that did not verify: Reason is a stable code
// (partnersv1.Reason*), Detail a human explanation.
type RefusedError struct{ Reason, Detail string }

func (e *RefusedError) Error() string { return "assertion refused: " + e.Reason + ": " + e.Detail }

// Backend hands out the partners plugin's client (*plugins.Supervisor does).
type Backend interface {
	Partners(ctx context.Context) (partnersv1.PartnersClient, error)
}

// Account is what partner delegation needs to know of a platform account.
type Account struct {
	Sid             string
	FriendlyName    string
	Status          string // the platform's: active, suspended or closed
	OwnerPartnerSid string // "" when no partner owns it
}

// AccountClosed is the Status of a closed account.
const AccountClosed = "closed"

// Accounts reads the platform's accounts (the core store does, through an
// adapter in the composition root). A missing account is an error wrapping
// ErrNotFound.
type Accounts interface {
	Account(ctx context.Context, accountSid string) (Account, error)
}

// Client talks to the partners plugin with a deadline on every call.
type Client struct {
	backend Backend
	timeout time.Duration
}

// NewClient builds a client; timeout bounds each plugin call (0: 5s).
func NewClient(backend Backend, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Client{backend: backend, timeout: timeout}
}

func mapErr(err error) error {
	st := status.Convert(err)
	switch st.Code() {
	case codes.NotFound:
		return fmt.Errorf("%w: %s", ErrNotFound, st.Message())
	case codes.InvalidArgument, codes.AlreadyExists:
		return &InvalidError{Msg: st.Message()}
	case codes.Unauthenticated:
		return ErrUnauthenticated
	case codes.PermissionDenied:
		return fmt.Errorf("%w: %s", ErrForbidden, st.Message())
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// call runs fn against the plugin with the client's deadline.
func call[T any](ctx context.Context, c *Client, fn func(context.Context, partnersv1.PartnersClient) (T, error)) (T, error) {
	var zero T
	cl, err := c.backend.Partners(ctx)
	if err != nil {
		return zero, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	out, err := fn(ctx, cl)
	if err != nil {
		return zero, mapErr(err)
	}
	return out, nil
}

// CreatePartner creates a partner; the API secret is returned only here.
func (c *Client) CreatePartner(ctx context.Context, req *partnersv1.CreatePartnerRequest) (*partnersv1.CreatePartnerResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl partnersv1.PartnersClient) (*partnersv1.CreatePartnerResponse, error) {
		return cl.CreatePartner(ctx, req)
	})
}

// Partner returns one partner.
func (c *Client) Partner(ctx context.Context, partnerSid string) (*partnersv1.Partner, error) {
	return call(ctx, c, func(ctx context.Context, cl partnersv1.PartnersClient) (*partnersv1.Partner, error) {
		return cl.GetPartner(ctx, &partnersv1.GetPartnerRequest{Sid: partnerSid})
	})
}

// ListPartners returns every partner.
func (c *Client) ListPartners(ctx context.Context) ([]*partnersv1.Partner, error) {
	return call(ctx, c, func(ctx context.Context, cl partnersv1.PartnersClient) ([]*partnersv1.Partner, error) {
		res, err := cl.ListPartners(ctx, &partnersv1.ListPartnersRequest{})
		return res.GetPartners(), err
	})
}

// UpdatePartner changes a partner.
func (c *Client) UpdatePartner(ctx context.Context, req *partnersv1.UpdatePartnerRequest) (*partnersv1.Partner, error) {
	return call(ctx, c, func(ctx context.Context, cl partnersv1.PartnersClient) (*partnersv1.Partner, error) {
		return cl.UpdatePartner(ctx, req)
	})
}

// AddKey adds an assertion key to a partner.
func (c *Client) AddKey(ctx context.Context, req *partnersv1.AddKeyRequest) (*partnersv1.PartnerKey, error) {
	return call(ctx, c, func(ctx context.Context, cl partnersv1.PartnersClient) (*partnersv1.PartnerKey, error) {
		return cl.AddKey(ctx, req)
	})
}

// RevokeKey revokes a partner's key.
func (c *Client) RevokeKey(ctx context.Context, partnerSid, kid string) (*partnersv1.PartnerKey, error) {
	return call(ctx, c, func(ctx context.Context, cl partnersv1.PartnersClient) (*partnersv1.PartnerKey, error) {
		return cl.RevokeKey(ctx, &partnersv1.RevokeKeyRequest{PartnerSid: partnerSid, Kid: kid})
	})
}

// Authenticate checks a partner's REST credentials.
func (c *Client) Authenticate(ctx context.Context, partnerSid, secret string) (*partnersv1.Partner, error) {
	return call(ctx, c, func(ctx context.Context, cl partnersv1.PartnersClient) (*partnersv1.Partner, error) {
		return cl.Authenticate(ctx, &partnersv1.AuthenticateRequest{PartnerSid: partnerSid, Secret: secret})
	})
}

// PortalToken is a verified assertion's single-use portal token.
type PortalToken struct {
	Token      string
	AccountSid string
	ExpiresAt  time.Time
}

// ExchangeAssertion verifies a partner's assertion and mints a single-use
// portal token for ttl (at most 60 s). The account named by the assertion's
// (still unverified) sub is looked up in accounts and handed to the plugin,
// which trusts it only once the signature verified and sub matches. A
// refused assertion is a *RefusedError.
func (c *Client) ExchangeAssertion(ctx context.Context, accounts Accounts, partnerSid, assertion, audience string, ttl time.Duration) (PortalToken, error) {
	hint := &partnersv1.Account{}
	if sub, err := UnverifiedSubject(assertion); err == nil {
		hint.Sid = sub
		acct, err := accounts.Account(ctx, sub)
		switch {
		case err == nil:
			hint.Exists, hint.OwnerPartnerSid, hint.Status = true, acct.OwnerPartnerSid, acct.Status
		case !errors.Is(err, ErrNotFound):
			return PortalToken{}, fmt.Errorf("assertion account: %w", err)
		}
	}
	res, err := call(ctx, c, func(ctx context.Context, cl partnersv1.PartnersClient) (*partnersv1.VerifyAssertionResponse, error) {
		return cl.VerifyAssertion(ctx, &partnersv1.VerifyAssertionRequest{PartnerSid: partnerSid, Assertion: assertion, Audience: audience, Account: hint})
	})
	if err != nil {
		return PortalToken{}, err
	}
	if !res.Valid {
		return PortalToken{}, &RefusedError{Reason: res.Reason, Detail: res.Detail}
	}
	tok, err := call(ctx, c, func(ctx context.Context, cl partnersv1.PartnersClient) (*partnersv1.CreateSessionResponse, error) {
		return cl.CreateSession(ctx, &partnersv1.CreateSessionRequest{PartnerSid: res.PartnerSid, AccountSid: res.AccountSid, Features: res.Features, TtlMs: ttl.Milliseconds()})
	})
	if err != nil {
		return PortalToken{}, err
	}
	return PortalToken{Token: tok.Token, AccountSid: res.AccountSid, ExpiresAt: time.UnixMilli(tok.ExpiresUnixMs).UTC()}, nil
}

// Session is an open portal session: one account seen through one partner.
type Session struct {
	ID             string
	PartnerSid     string
	PartnerName    string
	AccountSid     string
	Features       []string
	AllowedOrigins []string
	ExpiresAt      time.Time
}

func sessionOf(id string, s *partnersv1.PortalSession) Session {
	return Session{ID: id, PartnerSid: s.PartnerSid, PartnerName: s.PartnerName, AccountSid: s.AccountSid, Features: s.Features,
		AllowedOrigins: s.AllowedOrigins, ExpiresAt: time.UnixMilli(s.ExpiresUnixMs).UTC()}
}

// Redeem consumes a portal token. When the token is known but used or
// expired, the returned session (with ok false) still names the partner's
// origins, so the refusal can be shown inside the partner's frame.
func (c *Client) Redeem(ctx context.Context, token string, ttl time.Duration) (s Session, reason string, err error) {
	res, err := call(ctx, c, func(ctx context.Context, cl partnersv1.PartnersClient) (*partnersv1.RedeemSessionResponse, error) {
		return cl.RedeemSession(ctx, &partnersv1.RedeemSessionRequest{Token: token, SessionTtlMs: ttl.Milliseconds()})
	})
	if err != nil {
		return Session{}, "", err
	}
	if res.Session != nil {
		s = sessionOf(res.SessionId, res.Session)
	}
	if !res.Valid {
		return s, res.Reason, nil
	}
	return s, "", nil
}

// Session returns an open session (ErrNotFound when expired or unknown).
func (c *Client) Session(ctx context.Context, id string) (Session, error) {
	res, err := call(ctx, c, func(ctx context.Context, cl partnersv1.PartnersClient) (*partnersv1.PortalSession, error) {
		return cl.GetSession(ctx, &partnersv1.GetSessionRequest{SessionId: id})
	})
	if err != nil {
		return Session{}, err
	}
	return sessionOf(id, res), nil
}
