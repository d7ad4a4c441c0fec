// Package plugins is Parley's host runtime for policy plugins
// (hashicorp/go-plugin over gRPC, SPEC §4).
//
// The Catalog knows which plugins exist: built-in plugins compiled into the
// parley binary, run as subprocesses by re-executing it (`parley plugin serve
// <name>`), and external plugins, executables in the configured plugin
// directory each pinned by its sha256. Nothing outside that directory is
// executed and a symlink that escapes it is refused.
//
// The Supervisor runs the plugin selected for each kind: it starts it (with
// Pdeathsig set from a locked OS thread, so the kernel kills the plugin when
// the host dies, and the SDK's parent watchdog as a second line), checks its
// Info answer, health-checks it periodically, puts a deadline on every call
// (gRPC interceptor) and records calls, errors, latency and restarts in the
// prometheus.Registerer it is given. When a plugin exits or stops answering
// it is restarted with exponential back-off; while it is down, callers ask
// FailOpen(kind) to apply the per-kind on_failure setting. Plugin stderr
// (hclog JSON) is re-emitted through the host's slog.Logger with
// plugin=<name>.
package plugins
