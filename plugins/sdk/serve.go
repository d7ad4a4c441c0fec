package sdk

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	admissionv1 "github.com/parleyhq/parley/plugins/proto/admission/v1"
	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
	pluginv1 "github.com/parleyhq/parley/plugins/proto/plugin/v1"
	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
)

// Options configures a served plugin.
type Options struct {
	// Name and Version identify the plugin: in logs, and in the answer to
	// the PluginInfo service, which the SDK gives for the plugin.
	Name    string
	Version string
	// Health, when set, is asked before each Info answer: the host calls
	// Info as its health check, and an error from Health fails the check
	// (three failures in a row restart the plugin).
	Health func(ctx context.Context) error
	// Logger defaults to Logger(Name). It must write to stderr, never stdout.
	Logger hclog.Logger
	// ParentCheck is how often the watchdog compares the parent PID with the
	// one seen at start; 0 means one second, a negative value disables it.
	ParentCheck time.Duration
}

// Logger returns the logger a plugin should use: JSON lines on stderr, which
// the host parses and re-emits under the plugin's name and level.
func Logger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.Trace,
		Output:     os.Stderr,
		JSONFormat: true,
	})
}

// ServeAdmission serves impl as an admission plugin until the host ends it.
func ServeAdmission(impl admissionv1.AdmissionServer, opts Options) {
	mustServe(KindAdmission, impl, opts)
}

// ServeUsage serves impl as a usage plugin until the host ends it.
func ServeUsage(impl usagev1.UsageServer, opts Options) {
	mustServe(KindUsage, impl, opts)
}

// ServePartners serves impl as a partners plugin until the host ends it.
func ServePartners(impl partnersv1.PartnersServer, opts Options) {
	mustServe(KindPartners, impl, opts)
}

func mustServe(kind Kind, impl any, opts Options) {
	if err := Serve(kind, impl, opts); err != nil {
		logger(opts).Error("cannot serve", "err", err)
		os.Exit(1)
	}
}

func logger(opts Options) hclog.Logger {
	if opts.Logger != nil {
		return opts.Logger
	}
	return Logger(opts.Name)
}

// Serve serves impl as a plugin of kind until the host ends it; impl
// implements the kind's gRPC service (admissionv1.AdmissionServer for
// KindAdmission, usagev1.UsageServer for KindUsage, partnersv1.PartnersServer
// for KindPartners). The SDK serves the PluginInfo service beside it from
// opts. It returns an error, before serving, for an unknown kind or an impl
// of another kind's service.
func Serve(kind Kind, impl any, opts Options) error {
	svc, ok := kinds[kind]
	if !ok {
		return fmt.Errorf("unknown plugin kind %q", kind)
	}
	if impl == nil || !svc.implements(impl) {
		return fmt.Errorf("%T does not implement the %s service", impl, kind)
	}
	log := logger(opts)
	if opts.ParentCheck >= 0 {
		every := opts.ParentCheck
		if every == 0 {
			every = time.Second
		}
		go watchParent(os.Getppid(), every, log)
	}
	log.Debug("serving", "kind", string(kind), "version", opts.Version)
	info := &infoServer{name: opts.Name, kind: kind, version: opts.Version, health: opts.Health}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake(),
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: {string(kind): &grpcPlugin{kind: kind, impl: impl, info: info}}},
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           log,
	})
	return nil
}

// infoServer answers PluginInfo for every plugin the SDK serves.
type infoServer struct {
	pluginv1.UnimplementedPluginInfoServer
	name, version string
	kind          Kind
	health        func(context.Context) error
}

// Info implements pluginv1.PluginInfoServer.
func (s *infoServer) Info(ctx context.Context, _ *pluginv1.InfoRequest) (*pluginv1.InfoResponse, error) {
	if s.health != nil {
		if err := s.health(ctx); err != nil {
			return nil, status.Errorf(codes.Unavailable, "%s is unhealthy: %v", s.name, err)
		}
	}
	return &pluginv1.InfoResponse{Name: s.name, Kind: string(s.kind), Version: s.version, ProtocolVersions: []int32{ProtocolVersion}}, nil
}

// watchParent ends the process when the parent that started it is gone: the
// plugin gets re-parented (to PID 1 or a subreaper), so its parent PID
// changes. This backs up the host's Pdeathsig, which a host can lose (e.g.
// when the OS thread that started the plugin exits).
func watchParent(ppid int, every time.Duration, log hclog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		if now := os.Getppid(); now != ppid {
			log.Error("host process is gone; exiting", "parent_pid", ppid, "now", now)
			os.Exit(3)
		}
	}
}
