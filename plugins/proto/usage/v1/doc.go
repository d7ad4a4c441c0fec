// Package usagev1 is version 1 of the gRPC protocol between Parley and a
// usage policy plugin, generated from usage.proto by scripts/gen-proto.sh
// (make gen). Do not edit the *.pb.go files by hand.
package usagev1
