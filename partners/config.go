package partners

import (
	"fmt"
	"time"
)

// Config is the `partners:` section of Parley's configuration.
type Config struct {
	// OperatorToken enables the operator's partner REST resources
	// (HTTP Basic "operator:<token>"); empty disables them (the CLI still works).
	OperatorToken string `yaml:"operator_token"`
	// SessionTTL is how long a portal session lasts once its URL was opened.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// URLTTL is how long a portal URL stays redeemable (at most 60 s).
	URLTTL time.Duration `yaml:"url_ttl"`
	// Skew is the clock skew tolerated on assertions' iat and exp.
	Skew time.Duration `yaml:"skew"`
}

// DefaultConfig returns the defaults: sessions of an hour, URLs of 60 s,
// 30 s of skew, no operator REST.
func DefaultConfig() Config {
	return Config{SessionTTL: time.Hour, URLTTL: 60 * time.Second, Skew: 30 * time.Second}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.SessionTTL < time.Minute || c.SessionTTL > 12*time.Hour:
		return fmt.Errorf("partners.session_ttl %s: want 1m to 12h", c.SessionTTL)
	case c.URLTTL < time.Second || c.URLTTL > 60*time.Second:
		return fmt.Errorf("partners.url_ttl %s: want 1s to 60s", c.URLTTL)
	case c.Skew < 0 || c.Skew > 2*time.Minute:
		return fmt.Errorf("partners.skew %s: want 0 to 2m", c.Skew)
	case c.OperatorToken != "" && len(c.OperatorToken) < 16:
		return fmt.Errorf("partners.operator_token: at least 16 characters")
	}
	return nil
}
