package admission

import (
	"context"
	"time"

	"github.com/parleyhq/parley/internal/sqlite"
	"github.com/parleyhq/parley/plugins/builtin/internal/runner"
	admissionv1 "github.com/parleyhq/parley/plugins/proto/admission/v1"
	"github.com/parleyhq/parley/plugins/sdk"
)

// Serve runs the built-in admission plugin in this process until the host
// ends it: `parley plugin serve admission` calls it (through
// plugins/builtin). Its configuration comes from
// admissionv1.PluginConfigEnv, set by the host.
func Serve(ctx context.Context, getenv func(string) string) error {
	pc, err := admissionv1.PluginConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	return runner.Serve(ctx, runner.Plugin{
		Kind: sdk.KindAdmission, Name: Name, Version: Version, DB: pc.DB, Migrations: Migrations(),
		New: func(ctx context.Context, db *sqlite.DB) (any, func(context.Context), error) {
			srv, err := NewServer(ctx, db, pc.Defaults, time.Duration(pc.RetryAfterMS)*time.Millisecond, nil)
			if err != nil {
				return nil, nil, err
			}
			return srv, func(ctx context.Context) { srv.Run(ctx, time.Second) }, nil
		},
	})
}
