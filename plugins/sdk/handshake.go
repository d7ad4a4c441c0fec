package sdk

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	admissionv1 "github.com/parleyhq/parley/plugins/proto/admission/v1"
	partnersv1 "github.com/parleyhq/parley/plugins/proto/partners/v1"
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
	switch k {
	case KindAdmission, KindUsage, KindPartners:
		return true
	}
	return false
}

// ProtocolVersion is the newest plugin protocol version this SDK speaks.
const ProtocolVersion = 1

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

// HostPluginSets is the VersionedPlugins map the host offers: for each
// protocol version, one go-plugin Plugin per kind, dispensed by kind name.
func HostPluginSets() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		1: {
			string(KindAdmission): &AdmissionPlugin{},
			string(KindUsage):     &UsagePlugin{},
			string(KindPartners):  &PartnersPlugin{},
		},
	}
}

// AdmissionPlugin adapts an admission service to go-plugin. Impl is set on
// the plugin side; the host side dispenses an admissionv1.AdmissionClient.
type AdmissionPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl admissionv1.AdmissionServer
}

// GRPCServer registers Impl.
func (p *AdmissionPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return fmt.Errorf("admission plugin: no implementation")
	}
	admissionv1.RegisterAdmissionServer(s, p.Impl)
	return nil
}

// GRPCClient returns an admissionv1.AdmissionClient.
func (p *AdmissionPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return admissionv1.NewAdmissionClient(c), nil
}

// UsagePlugin adapts a usage service to go-plugin.
type UsagePlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl usagev1.UsageServer
}

// GRPCServer registers Impl.
func (p *UsagePlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return fmt.Errorf("usage plugin: no implementation")
	}
	usagev1.RegisterUsageServer(s, p.Impl)
	return nil
}

// GRPCClient returns a usagev1.UsageClient.
func (p *UsagePlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return usagev1.NewUsageClient(c), nil
}

// PartnersPlugin adapts a partners service to go-plugin.
type PartnersPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl partnersv1.PartnersServer
}

// GRPCServer registers Impl.
func (p *PartnersPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return fmt.Errorf("partners plugin: no implementation")
	}
	partnersv1.RegisterPartnersServer(s, p.Impl)
	return nil
}

// GRPCClient returns a partnersv1.PartnersClient.
func (p *PartnersPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return partnersv1.NewPartnersClient(c), nil
}
