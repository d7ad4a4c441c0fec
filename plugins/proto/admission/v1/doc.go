// Package admissionv1 is version 1 of the gRPC protocol between Parley and a
// admission policy plugin, generated from admission.proto by scripts/gen-proto.sh
// (make gen). Do not edit the *.pb.go files by hand.
package admissionv1
