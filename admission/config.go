package admission

import (
	"fmt"
	"os"
	"time"

	admissionv1 "github.com/parleyhq/parley/plugins/proto/admission/v1"
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

// PluginEnv returns the environment entries that configure the built-in
// admission plugin: its database file (e.g. <data_dir>/admission.db) and
// the defaults of c. Pass it to plugins.NewCatalog as builtinEnv["admission"].
func (c Config) PluginEnv(dbFile string) ([]string, error) {
	return admissionv1.PluginConfig{DB: dbFile, Defaults: c.Defaults, RetryAfterMS: c.RetryAfter.Milliseconds()}.Env()
}

func defaultHolder() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "parley"
	}
	return h
}
