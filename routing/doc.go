// Package routing answers the questions calls and messages ask of an
// account's configuration: who takes an inbound call (Calls implements
// calls.Router and calls.Runner), who a <Dial><Client> reaches (Targets),
// where a message goes (Messages implements messaging.Resolver), how the
// REST API places a call (Originator; the composition root adapts it to
// api.Originator, since routing sits beside the REST API, not above it),
// and what is kept of calls as they run (Records implements calls.Events).
//
// It reaches durable data through Store, an interface it owns (the core
// store implements it), and admission through Admitter. The composition
// root (server) wires it to the transports and the call engine.
package routing
