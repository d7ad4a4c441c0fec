package partners

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/parleyhq/parley/internal/sqlite"
	"github.com/parleyhq/parley/plugins/sdk"
)

// PluginConfig is what the plugin process receives from the host, as JSON
// in PluginConfigEnv.
type PluginConfig struct {
	DB     string `json:"db"`
	SkewMS int64  `json:"skew_ms"`
}

// PluginConfigEnv is the environment variable carrying PluginConfig.
const PluginConfigEnv = "PARLEY_PARTNERS_CONFIG"

// PluginEnv returns the environment entries that configure the built-in
// partners plugin: its database file and the tolerated clock skew.
func PluginEnv(dbFile string, skew time.Duration) ([]string, error) {
	b, err := json.Marshal(PluginConfig{DB: dbFile, SkewMS: skew.Milliseconds()})
	if err != nil {
		return nil, fmt.Errorf("partners plugin config: %w", err)
	}
	return []string{PluginConfigEnv + "=" + string(b)}, nil
}

// ServePlugin runs the built-in partners plugin in this process until the
// host ends it: `parley plugin serve partners` calls it.
func ServePlugin(ctx context.Context, getenv func(string) string) error {
	raw := getenv(PluginConfigEnv)
	if raw == "" {
		return fmt.Errorf("%s is not set (the built-in partners plugin is started by parley serve)", PluginConfigEnv)
	}
	var pc PluginConfig
	if err := json.Unmarshal([]byte(raw), &pc); err != nil || pc.DB == "" {
		return fmt.Errorf("%s: want {\"db\": FILE}: %v", PluginConfigEnv, err)
	}
	db, err := sqlite.Open(ctx, pc.DB, Migrations())
	if err != nil {
		return fmt.Errorf("partners plugin database: %w", err)
	}
	defer db.Close()
	srv := NewServer(db, nil, time.Duration(pc.SkewMS)*time.Millisecond)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go srv.Run(ctx, time.Minute)
	sdk.ServePartners(srv, sdk.Options{Name: PluginName, Version: PluginVersion})
	return nil
}
