package media

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Crypto is one a=crypto: attribute of an SDES-keyed stream (RFC 4568 §9.1):
//
//	a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<base64 key||salt>[|lifetime][|MKI:length] [session params]
//
// ParseSDP and ParseSDPSecure collect them in Session.Crypto and Marshal
// writes them back; media/srtp chooses between them, makes keys and turns a
// pair into an Endpoint's Cipher.
type Crypto struct {
	Tag      int       // 1–999999999, ties an answer to the offer's line
	Suite    string    // AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, …
	Key      SecretKey // master key followed by master salt
	Lifetime uint64    // the master key's lifetime in packets; 0 when not given
	MKI      uint64    // master key identifier, when MKILen > 0
	MKILen   int       // bytes of MKI carried in each packet (1–128); 0: none
	Params   []string  // session parameters, as written (KDR=…, UNENCRYPTED_SRTP, …)
}

// SecretKey is keying material. It prints as [redacted] so that a logged
// Session does not leak its keys; Marshal writes it in full.
type SecretKey []byte

// String hides the key.
func (SecretKey) String() string { return "[redacted]" }

// maxCryptoLines bounds the crypto attributes read from one stream.
const maxCryptoLines = 16

// maxKeyBytes bounds a key||salt (AES-256 needs 46).
const maxKeyBytes = 64

var errCrypto = errors.New("sdp: crypto attribute")

// ParseCrypto reads the value of one a=crypto: attribute (without "crypto:").
// Only one inline key per line is accepted (several are only meaningful with
// MKIs, which Parley's peers do not send).
func ParseCrypto(v string) (Crypto, error) {
	fields := strings.Fields(v)
	if len(fields) < 3 {
		return Crypto{}, fmt.Errorf("%w %q: want tag, suite and key", errCrypto, v)
	}
	var c Crypto
	tag, err := strconv.Atoi(fields[0])
	if err != nil || len(fields[0]) > 9 || !isDigits(fields[0]) {
		return Crypto{}, fmt.Errorf("%w: tag %q", errCrypto, fields[0])
	}
	c.Tag = tag
	if !isToken(fields[1]) {
		return Crypto{}, fmt.Errorf("%w: suite %q", errCrypto, fields[1])
	}
	c.Suite = fields[1]
	method, info, ok := strings.Cut(fields[2], ":")
	if !ok || !strings.EqualFold(method, "inline") {
		return Crypto{}, fmt.Errorf("%w: key method %q (want inline)", errCrypto, method)
	}
	if strings.Contains(info, ";") {
		return Crypto{}, fmt.Errorf("%w: more than one key", errCrypto)
	}
	parts := strings.Split(info, "|")
	if len(parts) > 3 {
		return Crypto{}, fmt.Errorf("%w: key info %q", errCrypto, info)
	}
	key, err := decodeKey(parts[0])
	if err != nil {
		return Crypto{}, err
	}
	c.Key = key
	for i, p := range parts[1:] {
		if val, length, isMKI := strings.Cut(p, ":"); isMKI {
			if i != len(parts)-2 {
				return Crypto{}, fmt.Errorf("%w: MKI before lifetime", errCrypto)
			}
			if c.MKI, err = strconv.ParseUint(val, 10, 64); err != nil || !isDigits(val) {
				return Crypto{}, fmt.Errorf("%w: MKI %q", errCrypto, val)
			}
			if c.MKILen, err = strconv.Atoi(length); err != nil || !isDigits(length) || c.MKILen < 1 || c.MKILen > 128 {
				return Crypto{}, fmt.Errorf("%w: MKI length %q", errCrypto, length)
			}
			if c.MKILen < 8 && c.MKI>>(8*c.MKILen) != 0 {
				return Crypto{}, fmt.Errorf("%w: MKI %d does not fit %d bytes", errCrypto, c.MKI, c.MKILen)
			}
			continue
		}
		if i != 0 {
			return Crypto{}, fmt.Errorf("%w: key info %q", errCrypto, info)
		}
		if c.Lifetime, err = parseLifetime(p); err != nil {
			return Crypto{}, err
		}
	}
	for _, p := range fields[3:] {
		if !isParam(p) {
			return Crypto{}, fmt.Errorf("%w: session parameter %q", errCrypto, p)
		}
		c.Params = append(c.Params, p)
	}
	return c, nil
}

func decodeKey(s string) (SecretKey, error) {
	if len(s) == 0 || len(s) > base64.StdEncoding.EncodedLen(maxKeyBytes) {
		return nil, fmt.Errorf("%w: key of %d characters", errCrypto, len(s))
	}
	enc := base64.StdEncoding
	if !strings.HasSuffix(s, "=") && len(s)%4 != 0 {
		enc = base64.RawStdEncoding // some peers leave the padding off
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: key: %w", errCrypto, err)
	}
	return b, nil
}

func parseLifetime(s string) (uint64, error) {
	if exp, ok := strings.CutPrefix(s, "2^"); ok {
		n, err := strconv.Atoi(exp)
		if err != nil || !isDigits(exp) || n < 1 || n > 63 {
			return 0, fmt.Errorf("%w: lifetime %q", errCrypto, s)
		}
		return 1 << n, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || !isDigits(s) || n == 0 {
		return 0, fmt.Errorf("%w: lifetime %q", errCrypto, s)
	}
	return n, nil
}

// String is the attribute value as Marshal writes it (with the key).
func (c Crypto) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s inline:%s", c.Tag, c.Suite, base64.StdEncoding.EncodeToString(c.Key))
	if c.Lifetime != 0 {
		if c.Lifetime&(c.Lifetime-1) == 0 {
			fmt.Fprintf(&b, "|2^%d", bitLen(c.Lifetime)-1)
		} else {
			fmt.Fprintf(&b, "|%d", c.Lifetime)
		}
	}
	if c.MKILen > 0 {
		fmt.Fprintf(&b, "|%d:%d", c.MKI, c.MKILen)
	}
	for _, p := range c.Params {
		b.WriteString(" ")
		b.WriteString(p)
	}
	return b.String()
}

// Format keeps the key out of %v and %+v (fmt's Stringer would print it).
func (c Crypto) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "{Tag:%d Suite:%s Key:%s Lifetime:%d MKI:%d/%d Params:%v}", c.Tag, c.Suite, c.Key, c.Lifetime, c.MKI, c.MKILen, c.Params)
}

func bitLen(v uint64) int {
	n := 0
	for ; v != 0; v >>= 1 {
		n++
	}
	return n
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// isParam accepts a session parameter's visible characters (RFC 4568's
// srtp-session-extension is any VCHAR but "-" first).
func isParam(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7E {
			return false
		}
	}
	return true
}
