// Package usagev1 is the contract of usage-trigger plugins in one place: the
// gRPC service generated from usage.proto by scripts/gen-proto.sh (make gen;
// do not edit the *.pb.go files by hand), served under plugin protocol
// version 2 beside plugins/proto/plugin/v1, and the kind's vocabulary:
// categories and their units, trigger recurrences, measures and actions,
// counter periods (vocab.go), and the built-in plugin's configuration
// (config.go).
package usagev1
