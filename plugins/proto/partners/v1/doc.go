// Package partnersv1 is version 1 of the gRPC protocol between Parley and a
// partners policy plugin, generated from partners.proto by scripts/gen-proto.sh
// (make gen). Do not edit the *.pb.go files by hand.
package partnersv1
