package usagev1

import (
	"encoding/json"
	"fmt"
	"time"
)

// Config is what the built-in usage plugin process needs: the `usage.plugin:`
// section of Parley's configuration.
type Config struct {
	// EventRetention is how long event ids are remembered for
	// de-duplication; a replayed event older than that would count twice.
	EventRetention time.Duration `yaml:"event_retention" json:"-"`
	// Retry back-off of a failed callback: BackoffMin doubling per attempt up
	// to BackoffMax; after MaxAttempts failures the entry is dead.
	BackoffMin  time.Duration `yaml:"backoff_min" json:"-"`
	BackoffMax  time.Duration `yaml:"backoff_max" json:"-"`
	MaxAttempts int           `yaml:"max_attempts" json:"-"`
}

// DefaultConfig returns the defaults: ids kept 30 days; retries from 1 s
// doubling to 10 min, 30 attempts (about four hours of retries).
func DefaultConfig() Config {
	return Config{EventRetention: 30 * 24 * time.Hour, BackoffMin: time.Second, BackoffMax: 10 * time.Minute, MaxAttempts: 30}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.EventRetention < time.Hour:
		return fmt.Errorf("usage.event_retention %s is too short (minimum 1h)", c.EventRetention)
	case c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin:
		return fmt.Errorf("usage.backoff_min/backoff_max: need 0 < min <= max (have %s, %s)", c.BackoffMin, c.BackoffMax)
	case c.MaxAttempts < 1:
		return fmt.Errorf("usage.max_attempts must be at least 1")
	}
	return nil
}

// PluginConfig is what the built-in usage plugin process receives from the
// host, as JSON in PluginConfigEnv.
type PluginConfig struct {
	DB               string `json:"db"`
	EventRetentionMS int64  `json:"event_retention_ms"`
	BackoffMinMS     int64  `json:"backoff_min_ms"`
	BackoffMaxMS     int64  `json:"backoff_max_ms"`
	MaxAttempts      int    `json:"max_attempts"`
}

// PluginConfigEnv is the environment variable carrying PluginConfig.
const PluginConfigEnv = "PARLEY_USAGE_CONFIG"

// PluginEnv returns the environment entries that configure the built-in
// usage plugin: its database file (e.g. <data_dir>/usage.db) and c. Pass it
// to plugins.NewCatalog as builtinEnv["usage"].
func (c Config) PluginEnv(dbFile string) ([]string, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(PluginConfig{
		DB: dbFile, EventRetentionMS: c.EventRetention.Milliseconds(),
		BackoffMinMS: c.BackoffMin.Milliseconds(), BackoffMaxMS: c.BackoffMax.Milliseconds(), MaxAttempts: c.MaxAttempts,
	})
	if err != nil {
		return nil, fmt.Errorf("usage plugin config: %w", err)
	}
	return []string{PluginConfigEnv + "=" + string(b)}, nil
}

// ConfigFromEnv reads the database file and the Config the host set in
// PluginConfigEnv.
func ConfigFromEnv(getenv func(string) string) (string, Config, error) {
	raw := getenv(PluginConfigEnv)
	if raw == "" {
		return "", Config{}, fmt.Errorf("%s is not set (the built-in usage plugin is started by parley serve)", PluginConfigEnv)
	}
	var pc PluginConfig
	if err := json.Unmarshal([]byte(raw), &pc); err != nil {
		return "", Config{}, fmt.Errorf("%s: %w", PluginConfigEnv, err)
	}
	if pc.DB == "" {
		return "", Config{}, fmt.Errorf("%s: db is required", PluginConfigEnv)
	}
	c := Config{
		EventRetention: time.Duration(pc.EventRetentionMS) * time.Millisecond,
		BackoffMin:     time.Duration(pc.BackoffMinMS) * time.Millisecond,
		BackoffMax:     time.Duration(pc.BackoffMaxMS) * time.Millisecond,
		MaxAttempts:    pc.MaxAttempts,
	}
	if err := c.Validate(); err != nil {
		return "", Config{}, fmt.Errorf("%s: %w", PluginConfigEnv, err)
	}
	return pc.DB, c, nil
}

// Backoff is the wait after the n-th failed attempt (n >= 1).
func (c Config) Backoff(n int) time.Duration {
	d := c.BackoffMin
	for i := 1; i < n && d < c.BackoffMax; i++ {
		d *= 2
	}
	return min(d, c.BackoffMax)
}
