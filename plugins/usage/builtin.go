package usage

import (
	"context"
	"fmt"
	"time"

	"github.com/parleyhq/parley/internal/sqlite"
	"github.com/parleyhq/parley/plugins/sdk"
)

// ServePlugin runs the built-in usage plugin in this process until the host
// ends it: `parley plugin serve usage` calls it (through plugins/builtin).
// Its configuration comes from PluginConfigEnv, set by the host. Nothing is
// written to stdout before the go-plugin handshake.
func ServePlugin(ctx context.Context, getenv func(string) string) error {
	file, cfg, err := pluginConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	db, err := sqlite.Open(ctx, file, Migrations())
	if err != nil {
		return fmt.Errorf("usage plugin database: %w", err)
	}
	defer db.Close()
	srv, err := NewServer(ctx, db, cfg, nil)
	if err != nil {
		return fmt.Errorf("usage plugin: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go srv.Run(ctx, time.Hour)
	sdk.ServeUsage(srv, sdk.Options{Name: PluginName, Version: PluginVersion})
	return nil
}
