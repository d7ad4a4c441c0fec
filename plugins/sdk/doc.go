// Package sdk is what a policy-plugin author imports: the handshake shared
// with the Parley host, one Serve function per plugin kind (ServeAdmission,
// ServeUsage, ServePartners), an hclog logger the host understands, and a
// parent-PID watchdog that ends the plugin when its host dies.
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
// Only the gRPC protocol is offered (no net/rpc), and the handshake is
// versioned: protocol version 1 serves the v1 services under
// plugins/proto/<kind>/v1.
package sdk
