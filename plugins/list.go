package plugins

import (
	"context"
	"log/slog"
	"time"
)

// Probe starts every plugin in the catalog once (built-in and external,
// selected or not), asks its Info, and stops it: the body of `parley plugin
// list`. A plugin that answered is reported StateRunning with its version
// and PID at probe time; one that failed (bad checksum, crash, wrong kind)
// is StateStopped with LastError.
func Probe(ctx context.Context, cfg Config, catalog *Catalog, log *slog.Logger) ([]Status, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(nil)
	if err != nil {
		return nil, err
	}
	s := &Supervisor{cfg: cfg, catalog: catalog, log: log, m: m}
	var out []Status
	for _, e := range catalog.Entries() {
		in := &instance{sup: s, entry: e}
		st := Status{Entry: e, State: StateStopped, Since: time.Now()}
		proc, err := in.start(ctx)
		if err != nil {
			st.LastError = err.Error()
		} else {
			st.State, st.PID, st.Version = StateRunning, proc.pid, in.version
			proc.stop()
		}
		out = append(out, st)
	}
	return out, nil
}
