package sip

import "strings"

// ClientIdentity is the presence identity of an access-token user.
func ClientIdentity(identity string) string { return "client:" + identity }

// SIPIdentity is the presence identity of a Digest user of a SIP domain.
func SIPIdentity(user, domain string) string { return "sip:" + user + "@" + strings.ToLower(domain) }
