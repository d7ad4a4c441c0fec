// Package pluginv1 is the service every policy plugin serves beside its
// kind's service: PluginInfo (name, kind, version, protocol versions; the
// host's health check), generated from plugin.proto by scripts/gen-proto.sh
// (make gen). Do not edit the *.pb.go files by hand.
package pluginv1
