package store

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrDomainNameRefused is matched, with ErrInvalid, by the DomainNameError
// CheckSIPDomainName (and so CreateSIPDomain) returns when a name may not be
// a SIP domain.
var ErrDomainNameRefused = errors.New("sip domain name refused")

// CheckSIPDomainName returns name normalised (trimmed, lower case, without a
// trailing dot) or a *DomainNameError. A SIP domain name
// must be a DNS hostname: labels of 1 to 63 letters, digits and hyphens (not
// at either end), at most 253 characters, a last label that is not all
// digits. IP literals (IPv4, IPv6, bracketed), localhost and names under
// .localhost are refused, and so is each of reserved (the server's own
// names), compared the same way.
func CheckSIPDomainName(name string, reserved []string) (string, error) {
	n := normalDomainName(name)
	refuse := func(why string) (string, error) {
		return "", &DomainNameError{Name: name, Why: why}
	}
	if n == "" {
		return refuse("is empty")
	}
	if _, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(n, "["), "]")); err == nil {
		return refuse("is an IP address; use a DNS name")
	}
	if n == "localhost" || strings.HasSuffix(n, ".localhost") {
		return refuse("is localhost")
	}
	if len(n) > 253 {
		return refuse("is longer than 253 characters")
	}
	labels := strings.Split(n, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return refuse("has a label that is empty or longer than 63 characters")
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return refuse("is not a valid hostname (letters, digits, hyphens and dots only)")
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return refuse("has a label that starts or ends with a hyphen")
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return refuse("ends in an all-numeric label (an IP address in another form?)")
	}
	for _, r := range reserved {
		if rn := normalDomainName(r); rn != "" && rn == n {
			return refuse("is one of this server's own names")
		}
	}
	return n, nil
}

// DomainNameError says why a name may not be a SIP domain. It matches
// ErrDomainNameRefused and ErrInvalid with errors.Is.
type DomainNameError struct {
	Name, Why string
}

func (e *DomainNameError) Error() string { return fmt.Sprintf("DomainName %q %s", e.Name, e.Why) }

// Is reports whether target is ErrDomainNameRefused or ErrInvalid.
func (e *DomainNameError) Is(target error) bool {
	return target == ErrDomainNameRefused || target == ErrInvalid
}

// normalDomainName is how domain names are compared: trimmed, lower case,
// without a trailing dot.
func normalDomainName(name string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
}
