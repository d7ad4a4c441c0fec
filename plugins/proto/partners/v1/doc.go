// Package partnersv1 is the contract of partner-delegation plugins in one
// place: the gRPC service generated from partners.proto by
// scripts/gen-proto.sh (make gen; do not edit the *.pb.go files by hand),
// served under plugin protocol version 2 beside plugins/proto/plugin/v1,
// and the kind's vocabulary (vocab.go): portal features, partner statuses,
// key types, the reasons an assertion is refused, and the built-in
// plugin's configuration.
package partnersv1
