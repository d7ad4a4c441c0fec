package sdk

import (
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	admissionv1 "github.com/parleyhq/parley/plugins/proto/admission/v1"
	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
)

// Options configures a served plugin.
type Options struct {
	// Name and Version identify the plugin in logs; the plugin's Info RPC
	// should answer the same values (see AdmissionInfo and friends).
	Name    string
	Version string
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
	serve(KindAdmission, &AdmissionPlugin{Impl: impl}, opts)
}

// ServeUsage serves impl as a usage plugin until the host ends it.
func ServeUsage(impl usagev1.UsageServer, opts Options) {
	serve(KindUsage, &UsagePlugin{Impl: impl}, opts)
}

// ServePartners serves impl as a partners plugin until the host ends it.
func ServePartners(impl partnersv1.PartnersServer, opts Options) {
	serve(KindPartners, &PartnersPlugin{Impl: impl}, opts)
}

func serve(kind Kind, p plugin.Plugin, opts Options) {
	log := opts.Logger
	if log == nil {
		log = Logger(opts.Name)
	}
	if opts.ParentCheck >= 0 {
		every := opts.ParentCheck
		if every == 0 {
			every = time.Second
		}
		go watchParent(os.Getppid(), every, log)
	}
	log.Debug("serving", "kind", string(kind), "version", opts.Version)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake(),
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: {string(kind): p}},
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           log,
	})
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

// AdmissionInfo builds the answer to the admission Info RPC.
func AdmissionInfo(name, version string) *admissionv1.InfoResponse {
	return &admissionv1.InfoResponse{Name: name, Kind: string(KindAdmission), Version: version, ProtocolVersions: []int32{ProtocolVersion}}
}

// UsageInfo builds the answer to the usage Info RPC.
func UsageInfo(name, version string) *usagev1.InfoResponse {
	return &usagev1.InfoResponse{Name: name, Kind: string(KindUsage), Version: version, ProtocolVersions: []int32{ProtocolVersion}}
}

// PartnersInfo builds the answer to the partners Info RPC.
func PartnersInfo(name, version string) *partnersv1.InfoResponse {
	return &partnersv1.InfoResponse{Name: name, Kind: string(KindPartners), Version: version, ProtocolVersions: []int32{ProtocolVersion}}
}

// CheckInfo verifies that an Info answer matches what the host expects.
func CheckInfo(kind Kind, gotKind string, versions []int32) error {
	if gotKind != string(kind) {
		return fmt.Errorf("plugin reports kind %q, want %q", gotKind, kind)
	}
	for _, v := range versions {
		if v == ProtocolVersion {
			return nil
		}
	}
	return fmt.Errorf("plugin speaks protocol versions %v, host needs %d", versions, ProtocolVersion)
}
