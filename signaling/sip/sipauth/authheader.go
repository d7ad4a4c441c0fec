package sipauth

import (
	"errors"
	"fmt"
	"strings"
)

// MaxAuthHeaderBytes bounds the Authorization values parseAuthorization reads.
const MaxAuthHeaderBytes = 8 << 10

// errAuthSyntax is wrapped by every parse error of an Authorization value.
var errAuthSyntax = errors.New("malformed credentials")

// authorization is a parsed Authorization header (RFC 3261 §25.1, RFC 7616,
// RFC 8898).
type authorization struct {
	Scheme string            // "digest" or "bearer" (lowercased)
	Params map[string]string // Digest auth-params, keys lowercased, values unquoted
	Token  string            // Bearer token68
}

// parseAuthorization parses one Authorization (or Proxy-Authorization) value.
// Digest parameters may appear once each; quoted strings honour
// backslash escapes; unknown schemes are an error.
func parseAuthorization(v string) (authorization, error) {
	if len(v) > MaxAuthHeaderBytes {
		return authorization{}, fmt.Errorf("%w: longer than %d bytes", errAuthSyntax, MaxAuthHeaderBytes)
	}
	v = strings.TrimSpace(v)
	i := strings.IndexAny(v, " \t")
	if i <= 0 {
		return authorization{}, fmt.Errorf("%w: no credentials after scheme", errAuthSyntax)
	}
	scheme, rest := strings.ToLower(v[:i]), strings.TrimLeft(v[i:], " \t")
	switch scheme {
	case "bearer":
		if !isToken68(rest) {
			return authorization{}, fmt.Errorf("%w: bearer token is not token68", errAuthSyntax)
		}
		return authorization{Scheme: scheme, Token: rest}, nil
	case "digest":
		params, err := parseAuthParams(rest)
		if err != nil {
			return authorization{}, err
		}
		return authorization{Scheme: scheme, Params: params}, nil
	default:
		return authorization{}, fmt.Errorf("%w: unsupported scheme %q", errAuthSyntax, v[:i])
	}
}

func isToken68(s string) bool {
	if s == "" {
		return false
	}
	end := len(s)
	for end > 0 && s[end-1] == '=' {
		end--
	}
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0
}

// parseAuthParams parses `name=value *(, name=value)` where value is a token
// or a quoted string.
func parseAuthParams(s string) (map[string]string, error) {
	out := map[string]string{}
	i := 0
	skipWS := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
			i++
		}
	}
	for {
		skipWS()
		start := i
		for i < len(s) && isTokenChar(s[i]) {
			i++
		}
		if i == start {
			return nil, fmt.Errorf("%w: expected parameter name at offset %d", errAuthSyntax, i)
		}
		name := strings.ToLower(s[start:i])
		skipWS()
		if i >= len(s) || s[i] != '=' {
			return nil, fmt.Errorf("%w: parameter %q has no value", errAuthSyntax, name)
		}
		i++
		skipWS()
		var val string
		if i < len(s) && s[i] == '"' {
			i++
			var b strings.Builder
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' {
					if i+1 >= len(s) {
						break
					}
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == '"' {
					closed = true
					i++
					break
				}
				if c < 0x20 && c != '\t' {
					return nil, fmt.Errorf("%w: control character in %q", errAuthSyntax, name)
				}
				b.WriteByte(c)
				i++
			}
			if !closed {
				return nil, fmt.Errorf("%w: unterminated quoted value of %q", errAuthSyntax, name)
			}
			val = b.String()
		} else {
			start := i
			for i < len(s) && isTokenChar(s[i]) {
				i++
			}
			if i == start {
				return nil, fmt.Errorf("%w: parameter %q has an empty value", errAuthSyntax, name)
			}
			val = s[start:i]
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: parameter %q repeated", errAuthSyntax, name)
		}
		out[name] = val
		skipWS()
		if i >= len(s) {
			return out, nil
		}
		if s[i] != ',' {
			return nil, fmt.Errorf("%w: expected ',' at offset %d", errAuthSyntax, i)
		}
		i++
	}
}
