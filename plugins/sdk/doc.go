// Package sdk is what a policy-plugin author imports: the handshake shared
// with the Parley host, Serve (and one typed Serve function per plugin kind:
// ServeAdmission, ServeUsage, ServePartners), an hclog logger the host
// understands, and a parent-PID watchdog that ends the plugin when its host
// dies.
//
// A plugin is an ordinary executable. The host starts it with the handshake
// cookie in its environment; the plugin must not write to stdout before
// Serve runs (go-plugin negotiates over stdout), so log through Logger, which
// writes JSON lines to stderr that the host re-emits tagged with the plugin's
// name.
//
//	func main() {
//		sdk.ServeAdmission(myPolicy{}, sdk.Options{Name: "business-hours", Version: "1.0.0"})
//	}
//
// Every kind is served the same way, from one table (kind → the generated
// Register and New functions of its service): the plugin implements only its
// kind's service (plugins/proto/<kind>/v1), and the SDK serves the shared
// PluginInfo service (plugins/proto/plugin/v1) beside it from Options — name,
// kind, version, protocol version, and the plugin's own Health check if it
// has one. Only the gRPC protocol is offered (no net/rpc), and the handshake
// is versioned: protocol version 2 is the v1 kind services plus PluginInfo; a
// plugin built against protocol 1 (an Info RPC in each kind's service) is
// refused at the handshake.
//
// The SDK imports no database driver: plugins may be built with
// CGO_ENABLED=0.
package sdk
