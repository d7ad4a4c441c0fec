package admission

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Config is the `admission:` section of Parley's configuration.
type Config struct {
	// Defaults are the limits of accounts without their own value, per
	// resource; -1 means unlimited, 0 refuses everything.
	Defaults map[Resource]int64 `yaml:"defaults"`
	// LeaseTTL is the lifetime of the capacity a host leases from the plugin;
	// the host renews every LeaseTTL/3. A host that dies frees its capacity
	// at most LeaseTTL later.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// Block is how many slots the host leases per plugin call (the fast
	// path's batch size). 1 makes every request a plugin call.
	Block int64 `yaml:"block"`
	// SlotTTL bounds how long one request may hold a slot without releasing
	// it (a leaked release is reclaimed then), per resource.
	SlotTTL map[Resource]time.Duration `yaml:"slot_ttl"`
	// RetryAfter is the Retry-After suggested on a concurrency denial.
	RetryAfter time.Duration `yaml:"retry_after"`
	// Holder names this host in the plugin's lease table; it must be unique
	// per host and stable across restarts (so a restarted host drops the
	// leases of its previous life at once). Default: the hostname.
	Holder string `yaml:"holder"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Defaults: map[Resource]int64{
			ResourceAPI:      100,
			ResourceCalls:    50,
			ResourceCallsCPS: 10,
			ResourceMessages: 50,
		},
		LeaseTTL: 15 * time.Second,
		Block:    16,
		SlotTTL: map[Resource]time.Duration{
			ResourceAPI:      5 * time.Minute,
			ResourceCalls:    12 * time.Hour,
			ResourceMessages: 5 * time.Minute,
		},
		RetryAfter: time.Second,
	}
}

// Resources lists every resource type in a stable order.
func Resources() []Resource {
	return []Resource{ResourceAPI, ResourceCalls, ResourceCallsCPS, ResourceMessages}
}

// Valid reports whether r is a known resource type.
func (r Resource) Valid() bool {
	switch r {
	case ResourceAPI, ResourceCalls, ResourceCallsCPS, ResourceMessages:
		return true
	}
	return false
}

// IsRate reports whether r is counted per second rather than concurrently.
func (r Resource) IsRate() bool { return r == ResourceCallsCPS }

// Validate checks the configuration.
func (c Config) Validate() error {
	for r, v := range c.Defaults {
		if !r.Valid() {
			return fmt.Errorf("admission.defaults: unknown resource %q", r)
		}
		if v < -1 {
			return fmt.Errorf("admission.defaults.%s: %d (use -1 for unlimited)", r, v)
		}
	}
	for r, d := range c.SlotTTL {
		if !r.Valid() || r.IsRate() {
			return fmt.Errorf("admission.slot_ttl: %q is not a concurrency resource", r)
		}
		if d <= 0 {
			return fmt.Errorf("admission.slot_ttl.%s must be positive", r)
		}
	}
	if c.LeaseTTL < 300*time.Millisecond {
		return fmt.Errorf("admission.lease_ttl %s is too short (minimum 300ms)", c.LeaseTTL)
	}
	if c.Block < 1 {
		return fmt.Errorf("admission.block must be at least 1")
	}
	if c.RetryAfter <= 0 {
		return fmt.Errorf("admission.retry_after must be positive")
	}
	return nil
}

// PluginConfig is what the built-in plugin process receives from the host,
// as JSON in the PARLEY_ADMISSION_CONFIG environment variable.
type PluginConfig struct {
	DB           string             `json:"db"`
	Defaults     map[Resource]int64 `json:"defaults"`
	RetryAfterMS int64              `json:"retry_after_ms"`
}

// PluginConfigEnv is the environment variable carrying PluginConfig.
const PluginConfigEnv = "PARLEY_ADMISSION_CONFIG"

// PluginEnv returns the environment entries that configure the built-in
// admission plugin: its database file (e.g. <data_dir>/admission.db) and
// the defaults of c. Pass it to plugins.NewCatalog as builtinEnv["admission"].
func (c Config) PluginEnv(dbFile string) ([]string, error) {
	b, err := json.Marshal(PluginConfig{DB: dbFile, Defaults: c.Defaults, RetryAfterMS: c.RetryAfter.Milliseconds()})
	if err != nil {
		return nil, fmt.Errorf("admission plugin config: %w", err)
	}
	return []string{PluginConfigEnv + "=" + string(b)}, nil
}

func pluginConfigFromEnv(getenv func(string) string) (PluginConfig, error) {
	raw := getenv(PluginConfigEnv)
	if raw == "" {
		return PluginConfig{}, fmt.Errorf("%s is not set (the built-in admission plugin is started by parley serve)", PluginConfigEnv)
	}
	var pc PluginConfig
	if err := json.Unmarshal([]byte(raw), &pc); err != nil {
		return PluginConfig{}, fmt.Errorf("%s: %w", PluginConfigEnv, err)
	}
	if pc.DB == "" {
		return PluginConfig{}, fmt.Errorf("%s: db is required", PluginConfigEnv)
	}
	return pc, nil
}

func defaultHolder() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "parley"
	}
	return h
}
