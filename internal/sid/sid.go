// Package sid makes and checks resource identifiers: a two-letter prefix
// followed by 32 lowercase hex digits (AC… accounts, SK… keys, AP… applications).
package sid

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// Well-known prefixes.
const (
	Account      = "AC"
	Key          = "SK"
	Application  = "AP"
	Call         = "CA"
	Number       = "IN" // incoming number (PN is taken by partners)
	Partner      = "PN"
	Recording    = "RE"
	UsageTrigger = "UT"
	Message      = "SM"
)

// New returns a fresh identifier with the given two-letter prefix.
func New(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand never fails on supported platforms (Go ≥ 1.24 panics itself).
		panic(fmt.Sprintf("sid: crypto/rand: %v", err))
	}
	return prefix + hex.EncodeToString(b[:])
}

// Valid reports whether s has the given prefix followed by 32 lowercase hex digits.
func Valid(prefix, s string) bool {
	if len(s) != len(prefix)+32 || s[:len(prefix)] != prefix {
		return false
	}
	for _, c := range s[len(prefix):] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Secret returns n random alphanumeric characters, for auth tokens and key secrets.
func Secret(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("sid: crypto/rand: %v", err))
	}
	for i := range b {
		// 248 is the largest multiple of 62 below 256; rejection keeps the draw uniform.
		for b[i] >= 248 {
			var one [1]byte
			if _, err := rand.Read(one[:]); err != nil {
				panic(fmt.Sprintf("sid: crypto/rand: %v", err))
			}
			b[i] = one[0]
		}
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
