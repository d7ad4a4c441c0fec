#!/usr/bin/env bash
# WebRTC gateway load: a Parley server (loopback, admission unlimited) and
# loadgen, which holds SESSIONS registered WebSocket sessions, then, for each
# step of CALLS, that many concurrent browser↔SIP bridged calls (pion
# "browsers" answering <Dial><Client> calls from sipgo callers with real
# PCMU RTP both ways). Server CPU and RSS come from /proc/<pid>; the load
# generator's own CPU is not counted. Prints a Markdown table.
#
# Usage: bench/webrtc/run.sh              (from the repository root)
# Env:   SESSIONS (1000) CALLS ("25,50,100") HOLD (10s) KEEP=1 keeps the work directory.
set -euo pipefail

SESSIONS=${SESSIONS:-1000}
CALLS=${CALLS:-25,50,100}
HOLD=${HOLD:-10s}
SIP=127.0.0.1:5094
HTTP=127.0.0.1:18096
HOOK=127.0.0.1:18097
DOMAIN=bench.test

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/parley-webrtc.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ "${KEEP:-}" = 1 ] && echo "work dir kept: $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

echo "== building parley and loadgen" >&2
(cd "$root" && CGO_ENABLED=1 go build -o "$work/parley" ./cmd/parley && go build -o "$work/loadgen" ./bench/webrtc/loadgen)

export PARLEY_DATA_DIR=$work/data PARLEY_HTTP_ADDR=$HTTP PARLEY_LOG_LEVEL=warn PARLEY_MEDIA_ADDRESS=127.0.0.1
parley() { "$work/parley" "$@"; }
"$work/parley" serve --sip-udp "$SIP" --sip-tcp "" --sip-tls "" --sip-ws "" --sip-wss "" >"$work/parley.out" 2>"$work/parley.err" &
server=$!
pids+=($server)
for _ in $(seq 200); do grep -q "HTTP API" "$work/parley.out" 2>/dev/null && break; sleep 0.1; done
acct=$(parley account create --name bench --json | awk -F'"' '/"sid"/{print $4; exit}')
key=$(parley key create --account "$acct" --name bench --json)
key_sid=$(echo "$key" | awk -F'"' '/"sid"/{print $4; exit}')
secret=$(echo "$key" | awk -F'"' '/"secret"/{print $4; exit}')
parley sip domain create --account "$acct" --name "$DOMAIN" --voice-url "http://$HOOK/voice" >/dev/null
parley sip user add --domain "$DOMAIN" --username bob --password bob-password >/dev/null
parley limits set --account "$acct" --resource calls --limit -1 >/dev/null
parley limits set --account "$acct" --resource calls-cps --limit -1 >/dev/null

echo "== $(nproc) cores; sessions=$SESSIONS calls=$CALLS hold=$HOLD" >&2
ulimit -n 65536 2>/dev/null || true
"$work/loadgen" -pid "$server" -ws "ws://$HTTP/v1/signal" -sip "$SIP" -domain "$DOMAIN" -account "$acct" \
	-key "$key_sid" -secret "$secret" -hook "$HOOK" -sessions "$SESSIONS" -calls "$CALLS" -hold "$HOLD"
