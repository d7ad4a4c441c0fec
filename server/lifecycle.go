package server

import (
	"context"
	"errors"
	"log/slog"
)

// step is one component of a running server, as Run starts and stops it.
// Steps start in order and stop in reverse, so each stops while what it
// depends on (started before it) is still there. A step may only start
// (its stop is another step's, placed where the stop must come) or only
// stop (it releases what New took).
type step struct {
	name  string
	start func(ctx context.Context) error // nil: nothing to start
	stop  func(ctx context.Context) error // nil: nothing to stop
}

// runSteps starts steps in order and runs until ctx ends or failed reports
// (a component that stopped on its own); then it stops the started steps
// in reverse, each with a context that outlives ctx's cancellation. When a
// step fails to start, the steps before it are stopped the same way.
func runSteps(ctx context.Context, log *slog.Logger, steps []step, failed <-chan error) (err error) {
	started := 0
	defer func() {
		sctx := context.WithoutCancel(ctx)
		for i := started - 1; i >= 0; i-- {
			if stop := steps[i].stop; stop != nil {
				log.Debug("stopping", "step", steps[i].name)
				err = errors.Join(err, stop(sctx))
			}
		}
	}()
	for _, st := range steps {
		if st.start != nil {
			log.Debug("starting", "step", st.name)
			if err := st.start(ctx); err != nil {
				return err
			}
		}
		started++
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	}
}
