#!/usr/bin/env bash
# Call setup: SIPp callers → Parley (Digest, webhook on loopback answering
# <Dial answerOnBridge="true"><Client>alice</Client></Dial>, anchored RTP
# ports, a B2BUA leg to the phone) → a SIPp phone registered as alice; and,
# in the same run, the same callers → Kamailio 5.6 as a stateful proxy
# (in-memory registrar, lookup + t_relay, no auth, no media) → the same kind
# of phone. Prints for each: the highest calls/s with < 0.1 % failed calls,
# and p50/p99 of the caller's INVITE → 200 time at each rate (for Parley it
# includes the 401 round trip of Digest and the webhook fetch).
#
# Usage: bench/calls/run.sh                    (from the repository root)
# Env:   RATES ("25 50 100 200 300") STEP_SECONDS (10) HOLD_MS (call length, 0)
#        KEEP=1 keeps the work directory.
# Needs: go, sipp, kamailio (make deps).
set -euo pipefail

RATES=${RATES:-"25 50 100 200 300"}
STEP_SECONDS=${STEP_SECONDS:-10}
HOLD_MS=${HOLD_MS:-0}
PARLEY_SIP=127.0.0.1:5090
KAM_ADDR=127.0.0.1:5072
HTTP=127.0.0.1:18098
DOMAIN=bench.test

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
scenarios=$root/signaling/sip/testdata
for bin in go sipp kamailio; do
	command -v "$bin" >/dev/null || { echo "missing $bin (run make deps)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/parley-calls.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ "${KEEP:-}" = 1 ] && echo "work dir kept: $work" || rm -rf "$work"
}
trap cleanup EXIT

echo "== building parley and the webhook" >&2
(cd "$root" && CGO_ENABLED=1 go build -o "$work/parley" ./cmd/parley && go build -o "$work/webhook" ./bench/calls/webhook)

"$work/webhook" -addr 127.0.0.1:0 >"$work/webhook.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/webhook.out" 2>/dev/null && break; sleep 0.05; done
hook=$(awk '/listening/{print $2}' "$work/webhook.out")

export PARLEY_DATA_DIR=$work/data PARLEY_HTTP_ADDR=$HTTP PARLEY_LOG_LEVEL=warn PARLEY_MEDIA_ADDRESS=127.0.0.1
parley() { "$work/parley" "$@"; }
"$work/parley" serve --sip-udp "$PARLEY_SIP" --sip-tcp "" --sip-tls "" --sip-ws "" --sip-wss "" >"$work/parley.out" 2>"$work/parley.err" &
pids+=($!)
for _ in $(seq 200); do grep -q "HTTP API" "$work/parley.out" 2>/dev/null && break; sleep 0.1; done
acct=$(parley account create --name bench --json | awk -F'"' '/"sid"/{print $4; exit}')
parley sip domain create --account "$acct" --name "$DOMAIN" --voice-url "http://$hook/voice" >/dev/null
parley sip user add --domain "$DOMAIN" --username alice --password alice-password >/dev/null
parley sip user add --domain "$DOMAIN" --username bob --password bob-password >/dev/null
parley limits set --account "$acct" --resource calls --limit -1 >/dev/null
parley limits set --account "$acct" --resource calls-cps --limit -1 >/dev/null

kamailio -f "$here/kamailio.cfg" -DD -E -m 256 -M 32 -l "udp:$KAM_ADDR" -w "$work" >"$work/kamailio.log" 2>&1 &
pids+=($!)
sleep 1

# phone TARGET_ADDR PORT REGISTER_SCENARIO [auth args]: registers alice from PORT, then answers calls there.
phone() {
	local addr=$1 port=$2 reg=$3
	shift 3
	(cd "$work" && sipp -sf "$reg" -key user alice -key domain "$DOMAIN" "$@" -i 127.0.0.1 -p "$port" \
		-m 1 -timeout 10s -timeout_error -nostdin "$addr" >"$work/reg-$port.out" 2>&1) ||
		{ cat "$work/reg-$port.out" >&2; echo "phone did not register at $addr" >&2; exit 1; }
	(cd "$work" && exec sipp -sf "$scenarios/sipp_uas_answer.xml" -key user alice -i 127.0.0.1 -p "$port" \
		-mi 127.0.0.1 -mp $((port + 1000)) -nostdin >"$work/phone-$port.out" 2>&1) &
	pids+=($!)
}
phone "$PARLEY_SIP" 16090 "$scenarios/sipp_register_keep.xml" -au alice -ap alice-password
phone "$KAM_ADDR" 16072 "$here/kamailio_register_keep.xml"

# load NAME SCENARIO ADDR RATE [args]: prints "ok failed p50 p99" of one step.
load() {
	local name=$1 scen=$2 addr=$3 rate=$4 dir
	shift 4
	dir=$(mktemp -d "$work/$name-$rate.XXXX")
	(cd "$dir" && sipp -sf "$scen" -s alice -key user bob -key domain "$DOMAIN" "$@" -i 127.0.0.1 -p $((20000 + rate)) \
		-mi 127.0.0.1 -mp $((30000 + rate * 2)) -r "$rate" -m $((rate * STEP_SECONDS)) -l $((rate * 4)) -d "$HOLD_MS" \
		-recv_timeout 5000 -timeout $((STEP_SECONDS * 3 + 30))s -nostdin -trace_stat -stf stats.csv -fd 1 \
		-trace_rtt -rtt_freq 1 "$addr" >sipp.out 2>&1) || true
	awk -F';' 'NR==1{for(i=1;i<=NF;i++){if($i=="SuccessfulCall(C)")s=i;if($i=="FailedCall(C)")f=i}} END{printf "%s %s ", $s+0, $f+0}' "$dir/stats.csv"
	cat "$dir"/*_rtt.csv 2>/dev/null | awk -F';' '$2 ~ /^[0-9.]+$/ {print $2}' | sort -n |
		awk '{v[NR]=$1} END{if(NR==0){print "n/a n/a"} else {i=int(NR*0.5); if(i<1)i=1; j=int(NR*0.99); if(j<1)j=1; printf "%.1f %.1f\n", v[i], v[j]}}'
}

declare -A best lines
for target in parley kamailio; do
	best[$target]=none
	for rate in $RATES; do
		echo "== $target: $rate calls/s for ${STEP_SECONDS}s" >&2
		if [ "$target" = parley ]; then
			read -r ok failed p50 p99 <<<"$(load parley "$scenarios/sipp_call_basic.xml" "$PARLEY_SIP" "$rate" -au bob -ap bob-password)"
		else
			read -r ok failed p50 p99 <<<"$(load kamailio "$here/kamailio_call.xml" "$KAM_ADDR" "$rate")"
		fi
		total=$((ok + failed))
		echo "   ok=$ok failed=$failed INVITE→200 p50=${p50}ms p99=${p99}ms" >&2
		lines[$target]+="$(printf '  %4s/s  ok %6s  failed %5s  p50 %6s ms  p99 %6s ms' "$rate" "$ok" "$failed" "$p50" "$p99")"$'\n'
		if [ "$total" -gt 0 ] && [ $((failed * 1000)) -lt "$total" ]; then best[$target]=$rate; else break; fi
		sleep 2
	done
done

for target in parley kamailio; do
	printf '\n%s: highest rate with < 0.1%% failed calls: %s/s\n%s' "$target" "${best[$target]}" "${lines[$target]}"
done
echo "(Parley: Digest on INVITE, webhook fetch, B2BUA with anchored RTP ports; Kamailio: proxy, no auth, no media.)"
