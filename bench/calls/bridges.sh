#!/usr/bin/env bash
# Concurrent bridged calls with SIP signalling and RTP: a Go load generator
# (bench/calls/bridges) registers alice, places CALLS calls from bob through
# Parley (Digest, webhook answering <Dial><Client>alice</Client>, anchored
# media), streams 20 ms PCMU both ways on every call for HOLD, and prints the
# packet loss each way and Parley's CPU and RSS with all calls up.
#
# Usage: bench/calls/bridges.sh          (from the repository root)
# Env:   CALLS (500) HOLD (20s) RATE (50 call attempts/s) KEEP=1 keeps the work dir.
set -euo pipefail

CALLS=${CALLS:-500}
HOLD=${HOLD:-20s}
RATE=${RATE:-50}
PARLEY_SIP=127.0.0.1:5094
HTTP=127.0.0.1:18099
DOMAIN=bench.test

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/parley-bridges.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ "${KEEP:-}" = 1 ] && echo "work dir kept: $work" || rm -rf "$work"
}
trap cleanup EXIT

echo "== building parley, the webhook and the load generator" >&2
(cd "$root" && CGO_ENABLED=1 go build -o "$work/parley" ./cmd/parley && go build -o "$work/webhook" ./bench/calls/webhook &&
	go build -o "$work/bridges" ./bench/calls/bridges)

"$work/webhook" -addr 127.0.0.1:0 >"$work/webhook.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/webhook.out" 2>/dev/null && break; sleep 0.05; done
hook=$(awk '/listening/{print $2}' "$work/webhook.out")

export PARLEY_DATA_DIR=$work/data PARLEY_HTTP_ADDR=$HTTP PARLEY_LOG_LEVEL=warn PARLEY_MEDIA_ADDRESS=127.0.0.1
parley() { "$work/parley" "$@"; }
"$work/parley" serve --sip-udp "$PARLEY_SIP" --sip-tcp "" --sip-tls "" --sip-ws "" --sip-wss "" >"$work/parley.out" 2>"$work/parley.err" &
parley_pid=$!
pids+=("$parley_pid")
for _ in $(seq 200); do grep -q "HTTP API" "$work/parley.out" 2>/dev/null && break; sleep 0.1; done
acct=$(parley account create --name bench --json | awk -F'"' '/"sid"/{print $4; exit}')
parley sip domain create --account "$acct" --name "$DOMAIN" --voice-url "http://$hook/voice" >/dev/null
parley sip user add --domain "$DOMAIN" --username alice --password alice-password >/dev/null
parley sip user add --domain "$DOMAIN" --username bob --password bob-password >/dev/null
parley limits set --account "$acct" --resource calls --limit -1 >/dev/null
parley limits set --account "$acct" --resource calls-cps --limit -1 >/dev/null

echo "== $CALLS calls at $RATE/s, held $HOLD" >&2
"$work/bridges" -parley "$PARLEY_SIP" -pid "$parley_pid" -domain "$DOMAIN" -calls "$CALLS" -rate "$RATE" -hold "$HOLD"
