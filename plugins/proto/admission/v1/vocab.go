package admissionv1

import (
	"encoding/json"
	"fmt"
)

// Resource is a kind of work that is admitted per account: the resource
// field of AcquireRequest, SetLimitRequest and Limit.
type Resource string

// The resource types of SPEC §4a.
const (
	ResourceAPI      Resource = "api"       // concurrent REST requests
	ResourceCalls    Resource = "calls"     // concurrent calls
	ResourceCallsCPS Resource = "calls-cps" // call setups per second
	ResourceMessages Resource = "messages"  // concurrent message sends
)

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

// PluginConfig is what the built-in admission plugin receives from the
// host, as JSON in the PluginConfigEnv environment variable.
type PluginConfig struct {
	DB           string             `json:"db"`
	Defaults     map[Resource]int64 `json:"defaults"`
	RetryAfterMS int64              `json:"retry_after_ms"`
}

// PluginConfigEnv is the environment variable carrying PluginConfig.
const PluginConfigEnv = "PARLEY_ADMISSION_CONFIG"

// Env returns the environment entries that carry c to the plugin process.
func (c PluginConfig) Env() ([]string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("admission plugin config: %w", err)
	}
	return []string{PluginConfigEnv + "=" + string(b)}, nil
}

// PluginConfigFromEnv reads the PluginConfig the host set.
func PluginConfigFromEnv(getenv func(string) string) (PluginConfig, error) {
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
