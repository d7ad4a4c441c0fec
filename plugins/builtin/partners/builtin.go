package partners

import (
	"context"
	"time"

	"github.com/parleyhq/parley/internal/sqlite"
	"github.com/parleyhq/parley/plugins/builtin/internal/runner"
	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
	"github.com/parleyhq/parley/plugins/sdk"
)

// Serve runs the built-in partners plugin in this process until the host
// ends it: `parley plugin serve partners` calls it (through plugins/builtin).
// Its configuration comes from partnersv1.PluginConfigEnv, set by the host.
func Serve(ctx context.Context, getenv func(string) string) error {
	pc, err := partnersv1.PluginConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	return runner.Serve(ctx, runner.Plugin{
		Kind: sdk.KindPartners, Name: Name, Version: Version, DB: pc.DB, Migrations: Migrations(),
		New: func(_ context.Context, db *sqlite.DB) (any, func(context.Context), error) {
			srv := NewServer(db, nil, time.Duration(pc.SkewMS)*time.Millisecond)
			return srv, func(ctx context.Context) { srv.Run(ctx, time.Minute) }, nil
		},
	})
}
