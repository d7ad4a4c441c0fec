package plugins

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/parleyhq/parley/plugins/sdk"
)

// Config is the `plugins:` section of Parley's configuration.
type Config struct {
	// Dir is the only directory external plugins are executed from.
	Dir string `yaml:"dir"`
	// External declares the external plugins, each pinned by sha256.
	External []External `yaml:"external"`
	// Use selects, per kind, the plugin that serves it: a built-in name
	// ("admission") or an external plugin's name. An empty value disables
	// the kind.
	Use map[string]string `yaml:"use"`
	// OnFailure is "open" or "closed" per kind: what callers do while the
	// kind's plugin is down or does not answer in time.
	OnFailure map[string]string `yaml:"on_failure"`
	// CallTimeout is the deadline put on every plugin call that has none.
	CallTimeout time.Duration `yaml:"call_timeout"`
	// HealthInterval is how often a running plugin is health-checked.
	HealthInterval time.Duration `yaml:"health_interval"`
	// StartTimeout bounds the handshake of a starting plugin.
	StartTimeout time.Duration `yaml:"start_timeout"`
	// RestartBackoff and RestartBackoffMax bound the exponential back-off
	// between restarts of a crashed plugin.
	RestartBackoff    time.Duration `yaml:"restart_backoff"`
	RestartBackoffMax time.Duration `yaml:"restart_backoff_max"`
}

// External is one external plugin.
type External struct {
	Name   string `yaml:"name"`
	Kind   string `yaml:"kind"`
	File   string `yaml:"file"`   // path relative to Config.Dir
	SHA256 string `yaml:"sha256"` // hex; see `parley plugin hash FILE`
}

// FailMode values.
const (
	FailOpen   = "open"
	FailClosed = "closed"
)

// DefaultConfig returns the defaults: the built-in admission plugin serves
// admission and fails open (calls and API keep working while it restarts);
// partners fails closed (an unverifiable assertion must not log anyone in).
func DefaultConfig() Config {
	return Config{
		Dir:               "./parley-data/plugins",
		Use:               map[string]string{string(sdk.KindAdmission): "admission"},
		OnFailure:         map[string]string{string(sdk.KindAdmission): FailOpen, string(sdk.KindUsage): FailOpen, string(sdk.KindPartners): FailClosed},
		CallTimeout:       2 * time.Second,
		HealthInterval:    5 * time.Second,
		StartTimeout:      20 * time.Second,
		RestartBackoff:    250 * time.Millisecond,
		RestartBackoffMax: 2 * time.Minute,
	}
}

// Validate checks the static parts of the configuration (files are checked
// when the catalog is built).
func (c Config) Validate() error {
	seen := map[string]bool{}
	for i, e := range c.External {
		if e.Name == "" {
			return fmt.Errorf("plugins.external[%d]: name is required", i)
		}
		if seen[e.Name] {
			return fmt.Errorf("plugins.external: duplicate name %q", e.Name)
		}
		seen[e.Name] = true
		if !sdk.Kind(e.Kind).Valid() {
			return fmt.Errorf("plugins.external %q: unknown kind %q", e.Name, e.Kind)
		}
		if e.File == "" || filepath.IsAbs(e.File) || strings.HasPrefix(filepath.Clean(e.File), "..") {
			return fmt.Errorf("plugins.external %q: file %q must be a relative path inside plugins.dir", e.Name, e.File)
		}
		if _, err := decodeSHA256(e.SHA256); err != nil {
			return fmt.Errorf("plugins.external %q: %w", e.Name, err)
		}
	}
	if len(c.External) > 0 && c.Dir == "" {
		return fmt.Errorf("plugins.dir is required when external plugins are declared")
	}
	for k, m := range c.OnFailure {
		if !sdk.Kind(k).Valid() {
			return fmt.Errorf("plugins.on_failure: unknown kind %q", k)
		}
		if m != FailOpen && m != FailClosed {
			return fmt.Errorf("plugins.on_failure.%s: %q is neither open nor closed", k, m)
		}
	}
	for k := range c.Use {
		if !sdk.Kind(k).Valid() {
			return fmt.Errorf("plugins.use: unknown kind %q", k)
		}
	}
	for name, d := range map[string]time.Duration{"call_timeout": c.CallTimeout, "health_interval": c.HealthInterval, "start_timeout": c.StartTimeout, "restart_backoff": c.RestartBackoff, "restart_backoff_max": c.RestartBackoffMax} {
		if d <= 0 {
			return fmt.Errorf("plugins.%s must be positive", name)
		}
	}
	return nil
}

func decodeSHA256(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("sha256 %q is not 64 hex digits", s)
	}
	return b, nil
}
