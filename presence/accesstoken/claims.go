package accesstoken

import (
	"strconv"
)

// parseClaims decodes the claims segment of the tokens this server and the
// well-known helper libraries mint, without reflection: it is most of what
// Verify costs after the signature. It accepts only what it can decode
// exactly as encoding/json would, and reports false for anything else (an
// unknown or repeated key, an escaped or non-ASCII string, null, grant
// parameters, trailing bytes, any syntax error), so that Verify falls back to
// encoding/json. FuzzVerifySignedClaims holds the two to the same verdicts.
func parseClaims(b []byte) (wireClaims, bool) {
	p := claimsParser{b: b}
	var c wireClaims
	ok := p.object(func(key []byte) bool {
		switch string(key) {
		case "iss":
			return p.str(&c.Issuer)
		case "sub":
			return p.str(&c.Subject)
		case "jti":
			return p.str(&c.ID)
		case "exp":
			return p.date(&c.ExpiresAt)
		case "nbf":
			return p.date(&c.NotBefore)
		case "iat":
			return p.date(&c.IssuedAt)
		case "grants":
			return p.grants(&c.Grants)
		}
		return false
	})
	p.space()
	if !ok || p.i != len(p.b) {
		return wireClaims{}, false
	}
	return c, true
}

type claimsParser struct {
	b []byte
	i int
}

func (p *claimsParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *claimsParser) byte(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object parses {"key": value, …}, calling member for each key with the
// parser at the value. A repeated key is refused (encoding/json merges them).
func (p *claimsParser) object(member func(key []byte) bool) bool {
	if !p.byte('{') {
		return false
	}
	if p.byte('}') {
		return true
	}
	var seenBuf [8][]byte
	seen := seenBuf[:0]
	for {
		key, ok := p.raw()
		if !ok || !p.byte(':') {
			return false
		}
		for _, k := range seen {
			if string(k) == string(key) {
				return false
			}
		}
		seen = append(seen, key)
		if !member(key) {
			return false
		}
		if p.byte('}') {
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}

// str parses a string of printable ASCII without escapes.
func (p *claimsParser) str(out *string) bool {
	b, ok := p.raw()
	if ok {
		*out = string(b)
	}
	return ok
}

// raw parses a string of printable ASCII without escapes and returns its
// bytes (in p.b).
func (p *claimsParser) raw() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return p.b[start : p.i-1], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// date parses a JSON number as NumericDate does.
func (p *claimsParser) date(out **numericDate) bool {
	p.space()
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.b) && p.b[p.i] == '0':
		p.i++
	case p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9':
		p.digits()
	default:
		return false
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if !p.digits() {
			return false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if !p.digits() {
			return false
		}
	}
	f, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
	if err != nil {
		return false
	}
	*out = &numericDate{dateFromSeconds(f)}
	return true
}

func (p *claimsParser) digits() bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

func (p *claimsParser) boolean(out *bool) bool {
	p.space()
	switch {
	case len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "true":
		*out, p.i = true, p.i+4
	case len(p.b)-p.i >= 5 && string(p.b[p.i:p.i+5]) == "false":
		*out, p.i = false, p.i+5
	default:
		return false
	}
	return true
}

func (p *claimsParser) grants(g *Grants) bool {
	return p.object(func(key []byte) bool {
		switch string(key) {
		case "identity":
			return p.str(&g.Identity)
		case "voice":
			g.Voice = &VoiceGrant{}
			return p.object(func(key []byte) bool {
				switch string(key) {
				case "incoming":
					g.Voice.Incoming = &IncomingGrant{}
					return p.object(func(key []byte) bool {
						return string(key) == "allow" && p.boolean(&g.Voice.Incoming.Allow)
					})
				case "outgoing":
					g.Voice.Outgoing = &OutgoingGrant{}
					return p.object(func(key []byte) bool {
						return string(key) == "application_sid" && p.str(&g.Voice.Outgoing.ApplicationSid)
					})
				}
				return false
			})
		}
		return false
	})
}
