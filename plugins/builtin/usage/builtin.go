package usage

import (
	"context"
	"time"

	"github.com/parleyhq/parley/internal/sqlite"
	"github.com/parleyhq/parley/plugins/builtin/internal/runner"
	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
	"github.com/parleyhq/parley/plugins/sdk"
)

// Serve runs the built-in usage plugin in this process until the host ends
// it: `parley plugin serve usage` calls it (through plugins/builtin). Its
// configuration comes from usagev1.PluginConfigEnv, set by the host.
func Serve(ctx context.Context, getenv func(string) string) error {
	file, cfg, err := usagev1.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	return runner.Serve(ctx, runner.Plugin{
		Kind: sdk.KindUsage, Name: Name, Version: Version, DB: file, Migrations: Migrations(),
		New: func(ctx context.Context, db *sqlite.DB) (any, func(context.Context), error) {
			srv, err := NewServer(ctx, db, cfg, nil)
			if err != nil {
				return nil, nil, err
			}
			return srv, func(ctx context.Context) { srv.Run(ctx, time.Hour) }, nil
		},
	})
}
