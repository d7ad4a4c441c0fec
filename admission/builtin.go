package admission

import (
	"context"
	"fmt"
	"time"

	"github.com/parleyhq/parley/internal/sqlite"
	"github.com/parleyhq/parley/plugins/sdk"
)

// ServePlugin runs the built-in admission plugin in this process until the
// host ends it: `parley plugin serve admission` calls it (through
// plugins/builtin). Its configuration comes from PluginConfigEnv, set by the
// host. Nothing is written to stdout before the go-plugin handshake.
func ServePlugin(ctx context.Context, getenv func(string) string) error {
	pc, err := pluginConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	db, err := sqlite.Open(ctx, pc.DB, Migrations())
	if err != nil {
		return fmt.Errorf("admission plugin database: %w", err)
	}
	defer db.Close()
	srv, err := NewServer(ctx, db, pc.Defaults, time.Duration(pc.RetryAfterMS)*time.Millisecond, nil)
	if err != nil {
		return fmt.Errorf("admission plugin: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go srv.Run(ctx, time.Second)
	sdk.ServeAdmission(srv, sdk.Options{Name: PluginName, Version: PluginVersion})
	return nil
}
