package partners

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/parleyhq/parley/internal/sid"
)

// maxAssertion bounds what UnverifiedSubject decodes.
const maxAssertion = 8 << 10

// UnverifiedSubject returns the sub claim of a compact JWS without verifying
// anything: the host uses it only to look up the account it then hands to
// the plugin, which compares it with the verified sub. It accepts only an
// account sid.
func UnverifiedSubject(assertion string) (string, error) {
	if len(assertion) > maxAssertion {
		return "", fmt.Errorf("assertion longer than %d bytes", maxAssertion)
	}
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return "", errors.New("not a compact JWS")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("payload: %w", err)
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", fmt.Errorf("payload: %w", err)
	}
	if !sid.Valid(sid.Account, c.Sub) {
		return "", fmt.Errorf("sub %q is not an account sid", c.Sub)
	}
	return c.Sub, nil
}
