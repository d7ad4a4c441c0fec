package sdk

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	admissionv1 "github.com/parleyhq/parley/plugins/proto/admission/v1"
	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
	pluginv1 "github.com/parleyhq/parley/plugins/proto/plugin/v1"
	usagev1 "github.com/parleyhq/parley/plugins/proto/usage/v1"
)

// Kind is a policy-plugin kind. Each kind has its own gRPC service.
type Kind string

// The plugin kinds of SPEC §4.
const (
	KindAdmission Kind = "admission"
	KindUsage     Kind = "usage"
	KindPartners  Kind = "partners"
)

// Kinds lists every kind in a stable order.
func Kinds() []Kind { return []Kind{KindAdmission, KindUsage, KindPartners} }

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	_, ok := kinds[k]
	return ok
}

// ProtocolVersion is the plugin protocol version this SDK speaks: the
// kind's v1 service (plugins/proto/<kind>/v1) beside the shared PluginInfo
// service (plugins/proto/plugin/v1). Version 1 had an Info RPC in each
// kind's service; a host and a plugin of different versions refuse each
// other at the handshake.
const ProtocolVersion = 2

// Handshake is the go-plugin handshake shared by host and plugins. The magic
// cookie only stops a plugin binary from being run by hand by mistake; it is
// not a security measure (the host pins external plugins by sha256).
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  ProtocolVersion,
		MagicCookieKey:   "PARLEY_PLUGIN",
		MagicCookieValue: "b3c1f0a2-policy-plugin",
	}
}

// service is how one kind's gRPC service is registered in a plugin and
// dialled by the host.
type service struct {
	implements func(impl any) bool
	register   func(s *grpc.Server, impl any)
	dial       func(c *grpc.ClientConn) any
}

// serviceOf builds a kind's entry from its generated Register and New
// functions.
func serviceOf[S, C any](register func(grpc.ServiceRegistrar, S), newClient func(grpc.ClientConnInterface) C) service {
	return service{
		implements: func(impl any) bool { _, ok := impl.(S); return ok },
		register:   func(s *grpc.Server, impl any) { register(s, impl.(S)) },
		dial:       func(c *grpc.ClientConn) any { return newClient(c) },
	}
}

// kinds is the table every kind is served and dispensed from; a new kind
// is one line here (and its proto package).
var kinds = map[Kind]service{
	KindAdmission: serviceOf(admissionv1.RegisterAdmissionServer, admissionv1.NewAdmissionClient),
	KindUsage:     serviceOf(usagev1.RegisterUsageServer, usagev1.NewUsageClient),
	KindPartners:  serviceOf(partnersv1.RegisterPartnersServer, partnersv1.NewPartnersClient),
}

// Dispensed is what the host gets for a running plugin: the kind's gRPC
// client (an admissionv1.AdmissionClient, usagev1.UsageClient or
// partnersv1.PartnersClient) and the shared PluginInfo client.
type Dispensed struct {
	Kind    Kind
	Service any
	Info    pluginv1.PluginInfoClient
}

// grpcPlugin adapts any kind to go-plugin. In a plugin, impl serves the
// kind's service and info the PluginInfo service; in the host it dispenses
// a *Dispensed.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	kind Kind
	impl any
	info pluginv1.PluginInfoServer
}

// GRPCServer registers the kind's service and PluginInfo.
func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	svc, ok := kinds[p.kind]
	if !ok || p.impl == nil || !svc.implements(p.impl) || p.info == nil {
		return fmt.Errorf("%s plugin: no implementation", p.kind)
	}
	svc.register(s, p.impl)
	pluginv1.RegisterPluginInfoServer(s, p.info)
	return nil
}

// GRPCClient returns a *Dispensed.
func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	svc, ok := kinds[p.kind]
	if !ok {
		return nil, fmt.Errorf("unknown plugin kind %q", p.kind)
	}
	return &Dispensed{Kind: p.kind, Service: svc.dial(c), Info: pluginv1.NewPluginInfoClient(c)}, nil
}

// HostPluginSets is the VersionedPlugins map the host offers: for the
// protocol version, one go-plugin Plugin per kind, dispensed by kind name.
func HostPluginSets() map[int]plugin.PluginSet {
	set := plugin.PluginSet{}
	for _, k := range Kinds() {
		set[string(k)] = &grpcPlugin{kind: k}
	}
	return map[int]plugin.PluginSet{ProtocolVersion: set}
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
