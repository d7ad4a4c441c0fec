package presence

import (
	"errors"
	"fmt"
	"strings"
)

// IdentityKind says who an identity is.
type IdentityKind string

// Identity kinds.
const (
	// KindClient is a client of an access token: client:alice.
	KindClient IdentityKind = "client"
	// KindSIP is a Digest user of a SIP domain: sip:alice@pbx.example.com.
	KindSIP IdentityKind = "sip"
)

// Identity is who bindings belong to and who calls and messages are from
// and to: an access-token client or a user of a SIP domain. Its string form
// (String, ClientIdentity, SIPIdentity) is the address of record bindings
// are kept under.
type Identity struct {
	Kind IdentityKind
	User string // the client's name, or the SIP user
	Host string // the SIP domain as written; "" for a client
}

// ClientIdentity is the identity of the access-token client name: "client:name".
func ClientIdentity(name string) string { return "client:" + name }

// SIPIdentity is the identity of user of SIP domain host:
// "sip:user@host", the domain lower-cased.
func SIPIdentity(user, host string) string { return "sip:" + user + "@" + strings.ToLower(host) }

// String is the identity's address of record.
func (id Identity) String() string {
	if id.Kind == KindSIP {
		return SIPIdentity(id.User, id.Host)
	}
	return ClientIdentity(id.User)
}

// ErrNotIdentity is wrapped by ParseIdentity's errors.
var ErrNotIdentity = errors.New("presence: not an identity")

// ParseIdentity reads "client:<name>" or "sip:<user>@<host>". When s has
// one of these prefixes but the rest is malformed (client: with no name,
// sip: with no user or host), the error comes with what was read, Kind
// set, so that callers classifying addresses (a usage category, a REST
// target) can still tell a client from a SIP address. Anything else (a
// number, sips: URIs) is not an identity and has no Kind.
func ParseIdentity(s string) (Identity, error) {
	if name, ok := strings.CutPrefix(s, "client:"); ok {
		id := Identity{Kind: KindClient, User: name}
		if name == "" {
			return id, fmt.Errorf("%w: %q has no client name", ErrNotIdentity, s)
		}
		return id, nil
	}
	if rest, ok := strings.CutPrefix(s, "sip:"); ok {
		user, host, found := strings.Cut(rest, "@")
		id := Identity{Kind: KindSIP, User: user, Host: host}
		if !found || user == "" || host == "" {
			return id, fmt.Errorf("%w: %q: want sip:<user>@<domain>", ErrNotIdentity, s)
		}
		return id, nil
	}
	return Identity{}, fmt.Errorf("%w: %q: want client:<name> or sip:<user>@<domain>", ErrNotIdentity, s)
}
