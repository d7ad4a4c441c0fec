// Package builtin is the registry of policy plugins compiled into the parley
// binary. The host lists them in its catalog (Specs) and starts each one by
// re-executing itself as `parley plugin serve <name>`, which calls Serve.
package builtin
