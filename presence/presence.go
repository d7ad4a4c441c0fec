package presence

import (
	"context"
	"errors"
	"time"
)

// Status is an identity's presence state.
type Status string

// Presence states.
const (
	Available Status = "available"
	Busy      Status = "busy"
	Offline   Status = "offline"
)

// Transports a binding may arrive on.
const (
	TransportUDP = "udp"
	TransportTCP = "tcp"
	TransportTLS = "tls"
	TransportWS  = "ws"
	TransportWSS = "wss"
	// TransportWebRTC is a browser session of the JSON signalling gateway
	// (signaling/webrtc); its FlowID is the session.
	TransportWebRTC = "webrtc"
)

// Reliable reports whether transport is connection-oriented: bindings on it
// live on their connection (flow).
func Reliable(transport string) bool { return transport != TransportUDP && transport != "" }

// Binding is one way to reach an identity: a SIP contact (or a browser
// session) with its expiry and the transport flow it arrived on.
type Binding struct {
	AccountSid string
	Identity   string // address of record: "sip:alice@example.com" or "client:alice"
	Key        string // unique per identity: "+sip.instance;reg-id" when present, otherwise Contact
	Contact    string // the contact URI as registered
	InstanceID string // RFC 5626 +sip.instance, "" when absent
	RegID      int    // RFC 5626 reg-id, 0 when absent
	CallID     string
	CSeq       uint32
	Q          float64 // 0..1; 0 when the contact had no q
	Expires    time.Time
	Transport  string // udp, tcp, tls, ws, wss, webrtc
	Source     string // ip:port the REGISTER came from (received/rport)
	Local      string // ip:port of the local socket it arrived on
	FlowID     string // the connection it arrived on ("" for udp); see Registry.DropFlow
	UserAgent  string
	Updated    time.Time
}

// Remaining is the binding's remaining lifetime, rounded down to seconds.
func (b Binding) Remaining(now time.Time) time.Duration {
	d := b.Expires.Sub(now).Truncate(time.Second)
	if d < 0 {
		return 0
	}
	return d
}

// BindingKey names one binding.
type BindingKey struct {
	AccountSid, Identity, Key string
}

// Key returns the binding's key.
func (b Binding) BindingKey() BindingKey {
	return BindingKey{AccountSid: b.AccountSid, Identity: b.Identity, Key: b.Key}
}

// Update is one REGISTER (RFC 3261 §10.3) applied atomically to an address of
// record: either RemoveAll (Contact: *) or a set of contacts to add, refresh or
// remove (Expires in the past or equal to Now removes).
type Update struct {
	AccountSid string
	Identity   string
	CallID     string
	CSeq       uint32
	RemoveAll  bool
	Contacts   []Binding // AccountSid, Identity, CallID, CSeq are filled from the Update
	Now        time.Time
}

// Errors returned by registries.
var (
	// ErrOutOfOrder: a binding with the same Call-ID has a CSeq ≥ the request's
	// (RFC 3261 §10.3 step 7): the whole update is refused.
	ErrOutOfOrder = errors.New("presence: request out of order")
	// ErrTooManyBindings: the identity would exceed the configured limit.
	ErrTooManyBindings = errors.New("presence: too many bindings")
)

// Presence is an identity's status with its current bindings.
type Presence struct {
	AccountSid string
	Identity   string
	Status     Status
	Bindings   []Binding
}

// Registry stores bindings and derives presence from them. Implementations
// must be safe for concurrent use. The in-memory Memory registry is the
// embedded default; a shared store can implement the same interface.
type Registry interface {
	// Apply applies one REGISTER and returns the identity's bindings afterwards.
	Apply(ctx context.Context, u Update) ([]Binding, error)
	// Bindings returns the identity's unexpired bindings, highest q first.
	Bindings(ctx context.Context, accountSid, identity string) ([]Binding, error)
	// Get returns an identity's presence (Offline with no bindings when unknown).
	Get(ctx context.Context, accountSid, identity string) (Presence, error)
	// List returns every identity of the account that has bindings.
	List(ctx context.Context, accountSid string) ([]Presence, error)
	// SetBusy marks an identity busy (in a call) or not.
	SetBusy(ctx context.Context, accountSid, identity string, busy bool) error
	// DropFlow removes every binding that arrived on the connection flowID
	// (the connection closed).
	DropFlow(ctx context.Context, flowID string) error
	// Events returns the bus that carries status changes.
	Events() *Bus
}

// Persister stores bindings for a registry that keeps them in memory
// (the core store implements it with SQLite). Writes are batched by the caller.
type Persister interface {
	// SaveBindings upserts bindings and deletes the given keys in one transaction.
	SaveBindings(ctx context.Context, upserts []Binding, deletes []BindingKey) error
	// LoadBindings returns every stored binding that expires after now.
	LoadBindings(ctx context.Context, now time.Time) ([]Binding, error)
}

// DigestCredential is what a registrar needs to check a Digest user.
type DigestCredential struct {
	AccountSid string
	Domain     string
	Username   string
	Realm      string // the realm the HA1 values were computed with
	HA1MD5     string // hex MD5(username:realm:password)
	HA1SHA256  string // hex SHA-256(username:realm:password)
}

// Credential lookup errors.
var (
	ErrUnknownDomain        = errors.New("presence: unknown SIP domain")
	ErrRegistrationDisabled = errors.New("presence: registration disabled for SIP domain")
	// ErrTooManyCredentials: a domain holds more credentials than a caller
	// is willing to load at once.
	ErrTooManyCredentials = errors.New("presence: too many SIP credentials")
	ErrUnknownUser        = errors.New("presence: unknown SIP user")
)
