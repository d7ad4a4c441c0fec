// Package admissionv1 is the contract of admission policy plugins in one
// place: the gRPC service generated from admission.proto by
// scripts/gen-proto.sh (make gen; do not edit the *.pb.go files by hand),
// served under plugin protocol version 2 beside plugins/proto/plugin/v1,
// and the kind's vocabulary (vocab.go): the resource types and the built-in
// plugin's configuration.
package admissionv1
