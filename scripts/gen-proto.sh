#!/bin/sh
# Regenerates the Go code for the policy-plugin protocols under plugins/proto.
#
# usage: scripts/gen-proto.sh [OUTDIR]
#   OUTDIR defaults to the repository root; the staleness test passes a temp
#   dir and compares. Needs protoc (Debian: protobuf-compiler) and the pinned
#   generators (make deps):
#     go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#     go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.3.0
# protoc-gen-go-grpc is pinned to v1.3.0 because newer generators emit code
# that needs google.golang.org/grpc >= 1.62 (go.mod has v1.61.0).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root}
PATH="$PATH:$(go env GOPATH)/bin"
export PATH
for tool in protoc protoc-gen-go protoc-gen-go-grpc; do
	command -v "$tool" >/dev/null 2>&1 || { echo "gen-proto: $tool not found; run make deps" >&2; exit 127; }
done
cd "$root"
for f in plugins/proto/*/v1/*.proto; do
	protoc -I . \
		--go_out="$out" --go_opt=paths=source_relative \
		--go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
		"$f"
done
