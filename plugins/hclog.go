package plugins

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// slogHCLog adapts a *slog.Logger to hclog.Logger, the interface go-plugin
// logs through (including the plugin's own stderr lines, which it parses and
// replays). Every record carries plugin=<name>.
type slogHCLog struct {
	l    *slog.Logger
	name string
	args []any
}

func newHCLog(l *slog.Logger, plugin string) hclog.Logger {
	return &slogHCLog{l: l.With("plugin", plugin), name: plugin}
}

var _ hclog.Logger = (*slogHCLog)(nil)

func toSlogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (h *slogHCLog) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	lv := toSlogLevel(level)
	if !h.l.Enabled(context.Background(), lv) {
		return
	}
	h.l.Log(context.Background(), lv, msg, cleanArgs(args)...)
}

// cleanArgs drops go-plugin's replayed "timestamp" pair (slog stamps its
// own) and keeps key/value pairs well-formed.
func cleanArgs(args []any) []any {
	out := make([]any, 0, len(args))
	for i := 0; i+1 < len(args); i += 2 {
		k, ok := args[i].(string)
		if !ok {
			continue
		}
		if k == "timestamp" {
			continue
		}
		out = append(out, k, args[i+1])
	}
	if len(args)%2 == 1 {
		out = append(out, "extra", args[len(args)-1])
	}
	return out
}

func (h *slogHCLog) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *slogHCLog) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *slogHCLog) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *slogHCLog) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *slogHCLog) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }
func (h *slogHCLog) IsTrace() bool                 { return h.l.Enabled(context.Background(), slog.LevelDebug) }
func (h *slogHCLog) IsDebug() bool                 { return h.l.Enabled(context.Background(), slog.LevelDebug) }
func (h *slogHCLog) IsInfo() bool                  { return h.l.Enabled(context.Background(), slog.LevelInfo) }
func (h *slogHCLog) IsWarn() bool                  { return h.l.Enabled(context.Background(), slog.LevelWarn) }
func (h *slogHCLog) IsError() bool                 { return h.l.Enabled(context.Background(), slog.LevelError) }
func (h *slogHCLog) ImpliedArgs() []any            { return h.args }
func (h *slogHCLog) Name() string                  { return h.name }
func (h *slogHCLog) SetLevel(hclog.Level)          {}

func (h *slogHCLog) GetLevel() hclog.Level {
	switch {
	case h.IsDebug():
		return hclog.Debug
	case h.IsInfo():
		return hclog.Info
	case h.IsWarn():
		return hclog.Warn
	default:
		return hclog.Error
	}
}

func (h *slogHCLog) With(args ...any) hclog.Logger {
	return &slogHCLog{l: h.l.With(cleanArgs(args)...), name: h.name, args: append(append([]any{}, h.args...), args...)}
}

// Named keeps the plugin tag; go-plugin names sub-loggers after the
// executable path, which adds nothing.
func (h *slogHCLog) Named(string) hclog.Logger      { return h }
func (h *slogHCLog) ResetNamed(string) hclog.Logger { return h }

func (h *slogHCLog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

func (h *slogHCLog) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		h.Info(string(trimNL(p)))
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func trimNL(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}
