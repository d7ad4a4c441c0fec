#!/usr/bin/env bash
# REGISTER load: Parley (auth on: Digest, and Bearer access tokens) against
# Kamailio 5.6 (in-memory usrloc, no auth), same machine, same SIPp, same run.
# Each target gets a fresh server, started when its turn comes. Prints per target:
#   - the highest offered rate with < 0.1 % failed registrations,
#   - p99 response time at 5 000/s (whole exchange: REGISTER/401/REGISTER/200 for Digest),
#   - memory after USERS unique users are registered (RSS; PSS summed over processes).
#
# Usage: bench/register/run.sh            (from the repository root)
# Env:   USERS (100000) RATES ("5000 10000 15000 20000 25000 30000 35000 40000") STEP_SECONDS (5)
#        P99_RATE (5000) SETTLE_SECONDS (35: pause between runs so that UDP server
#        transactions of the previous run, kept 32 s by RFC 3261 Timer J, are gone)
#        TARGETS ("parley-digest parley-bearer kamailio")
#        KEEP=1 keeps the work directory.
# Needs: go, sipp, kamailio (Debian packages sip-tester and kamailio).
set -euo pipefail

USERS=${USERS:-100000}
RATES=${RATES:-"5000 10000 15000 20000 25000 30000 35000 40000"}
STEP_SECONDS=${STEP_SECONDS:-5}
P99_RATE=${P99_RATE:-5000}
SETTLE_SECONDS=${SETTLE_SECONDS:-35}
TARGETS=${TARGETS:-"parley-digest parley-bearer kamailio"}
PARLEY_ADDR=127.0.0.1:5080
KAM_ADDR=127.0.0.1:5070
DOMAIN=bench.test
PASSWORD=bench-password

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
for bin in go sipp kamailio; do
	command -v "$bin" >/dev/null || { echo "missing $bin (run make deps)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/parley-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ "${KEEP:-}" = 1 ] && echo "work dir kept: $work" || rm -rf "$work"
}
trap cleanup EXIT

echo "== building parleyreg" >&2
(cd "$root" && CGO_ENABLED=1 go build -o "$work/parleyreg" ./bench/register/parleyreg)

echo "== generating $USERS users" >&2
{ echo SEQUENTIAL; seq -f "u%06g" 1 "$USERS" | awk -v d="$DOMAIN" -v p="$PASSWORD" '{print $1";[authentication username="$1" password="p"];"d}'; } >"$work/parley.csv"
{ echo SEQUENTIAL; seq -f "u%06g" 1 "$USERS" | awk -v d="$DOMAIN" '{print $1";;"d}'; } >"$work/kamailio.csv"

# start_server TARGET: starts a fresh server for TARGET and sets pid.
start_server() {
	case $1 in
	parley-*)
		rm -f "$work"/core.db*
		"$work/parleyreg" -udp "$PARLEY_ADDR" -users "$USERS" -password "$PASSWORD" -domain "$DOMAIN" -dir "$work" \
			-tokens "$work/tokens.csv" >"$work/$1.out" 2>"$work/$1.err" &
		pid=$!
		pids+=("$pid")
		for _ in $(seq 900); do grep -q ready "$work/$1.out" 2>/dev/null && break; sleep 0.1; done
		grep -q ready "$work/$1.out" || { cat "$work/$1.err" >&2; echo "parleyreg did not start" >&2; exit 1; }
		;;
	kamailio)
		kamailio -f "$here/kamailio.cfg" -DD -E -m 1024 -M 32 -l "udp:$KAM_ADDR" -w "$work" >"$work/kamailio.log" 2>&1 &
		pid=$!
		pids+=("$pid")
		sleep 1
		kill -0 "$pid" || { cat "$work/kamailio.log" >&2; echo "kamailio did not start" >&2; exit 1; }
		;;
	esac
	sleep 1
}

stop_server() {
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# mem PID: "RSS_MB PSS_MB" summed over PID and its children.
mem() {
	local all rss=0 pss=0 p
	all="$1 $(pgrep -P "$1" | tr '\n' ' ')"
	for p in $all; do
		[ -r "/proc/$p/smaps_rollup" ] || continue
		rss=$((rss + $(awk '/^Rss:/{print $2}' "/proc/$p/smaps_rollup")))
		pss=$((pss + $(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup")))
	done
	echo "$((rss / 1024)) $((pss / 1024))"
}

# load NAME SCENARIO CSV ADDR RATE CALLS PORT: runs SIPp; prints "ok failed p99_ms".
load() {
	local name=$1 scen=$2 csv=$3 addr=$4 rate=$5 calls=$6 port=$7 dir
	dir=$(mktemp -d "$work/$name-$rate.XXXX")
	(cd "$dir" && sipp -sf "$scen" -inf "$csv" -i 127.0.0.1 -p "$port" -t u1 \
		-r "$rate" -rp 1000 -m "$calls" -l $((rate * 4)) -recv_timeout 5000 -timeout $((STEP_SECONDS * 4 + 60))s \
		-max_socket 1 -buff_size 4194304 -nostdin -trace_stat -stf stats.csv -fd 1 -trace_rtt -rtt_freq 1000 \
		"$addr" >sipp.out 2>&1) || true
	awk -F';' 'NR==1{for(i=1;i<=NF;i++){if($i=="SuccessfulCall(C)")s=i;if($i=="FailedCall(C)")f=i}} END{printf "%s %s ", $s, $f}' "$dir/stats.csv"
	cat "$dir"/*_rtt.csv 2>/dev/null | awk -F';' '$2 ~ /^[0-9.]+$/ {print $2}' | sort -n |
		awk '{v[NR]=$1} END{if(NR==0){print "n/a"} else {i=int(NR*0.99); if(i<1)i=1; printf "%.2f\n", v[i]}}'
}

declare -A best p99 okfail mem_after
for target in $TARGETS; do
	case $target in
	parley-digest) scen="$here/parley_register.xml" csv="$work/parley.csv" addr=$PARLEY_ADDR port=15080 ;;
	parley-bearer) scen="$here/parley_register_bearer.xml" csv="$work/tokens.csv" addr=$PARLEY_ADDR port=15080 ;;
	kamailio) scen="$here/kamailio_register.xml" csv="$work/kamailio.csv" addr=$KAM_ADDR port=15070 ;;
	*) echo "unknown target $target (parley-digest, parley-bearer, kamailio)" >&2; exit 1 ;;
	esac
	echo "== $target: starting" >&2
	start_server "$target"
	echo "== $target: registering $USERS unique users at ${P99_RATE}/s" >&2
	read -r ok failed p <<<"$(load "$target" "$scen" "$csv" "$addr" "$P99_RATE" "$USERS" "$port")"
	p99[$target]=$p
	okfail[$target]="$ok/$failed"
	sleep 2
	mem_after[$target]=$(mem "$pid")
	best[$target]=none
	for rate in $RATES; do
		sleep "$SETTLE_SECONDS"
		echo "== $target: $rate/s for ${STEP_SECONDS}s" >&2
		read -r ok failed p <<<"$(load "$target" "$scen" "$csv" "$addr" "$rate" $((rate * STEP_SECONDS)) "$port")"
		total=$((ok + failed))
		echo "   ok=$ok failed=$failed p99=${p}ms" >&2
		if [ "$total" -gt 0 ] && [ $((failed * 1000)) -lt "$total" ]; then best[$target]=$rate; else break; fi
	done
	stop_server
done

printf '\n%-14s %-22s %-26s %-28s %s\n' server "max rate <0.1% fail" "p99 @${P99_RATE}/s (ms)" "mem after ${USERS} (RSS/PSS MB)" "ok/failed in that run"
for target in $TARGETS; do
	read -r rss pss <<<"${mem_after[$target]}"
	printf '%-14s %-22s %-26s %-28s %s\n' "$target" "${best[$target]}/s" "${p99[$target]}" "$rss / $pss" "${okfail[$target]}"
done
echo "(parley-digest: Digest MD5, two round trips per registration; parley-bearer: access token (RFC 8898),"
echo " signature, key, account and grant checked, one round trip; kamailio: no auth, one round trip.)"
