#!/usr/bin/env bash
# REGISTER load: Parley (auth on: Digest, and Bearer access tokens) against
# Kamailio 5.6 (in-memory usrloc, no auth), same machine, same SIPp, same run.
# Each target has its own server, started fresh. Prints per target:
#   - the highest offered rate with < 0.1 % failed registrations,
#   - p99 response time at 5 000/s (whole exchange: REGISTER/401/REGISTER/200 for Digest),
#   - the server's CPU time per registration in that 5 000/s run (all its processes),
#   - memory after USERS unique users are registered (RSS; PSS summed over processes).
# The rate ladder is interleaved: each rung is offered to every target still
# climbing, one after the other, before the next rung, so that a change in the
# machine's load between rungs falls on every target alike.
#
# Usage: bench/register/run.sh            (from the repository root)
# Env:   USERS (100000) RATES ("5000 10000 15000 20000 25000 30000 35000 40000") STEP_SECONDS (5)
#        P99_RATE (5000) SETTLE_SECONDS (35: the least time between two loads of one
#        target, so that the UDP transactions of its previous load, kept 32 s by
#        RFC 3261 Timer J, are gone) TARGETS ("parley-digest parley-bearer kamailio")
#        KEEP=1 keeps the work directory.
# Needs: go, sipp, kamailio (Debian packages sip-tester and kamailio).
set -euo pipefail

USERS=${USERS:-100000}
RATES=${RATES:-"5000 10000 15000 20000 25000 30000 35000 40000"}
STEP_SECONDS=${STEP_SECONDS:-5}
P99_RATE=${P99_RATE:-5000}
SETTLE_SECONDS=${SETTLE_SECONDS:-35}
TARGETS=${TARGETS:-"parley-digest parley-bearer kamailio"}
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

declare -A scen csv addr port pid best p99 okfail mem_after cpu_reg last_load
for target in $TARGETS; do
	case $target in
	parley-digest) scen[$target]="$here/parley_register.xml" csv[$target]="$work/parley.csv" addr[$target]=127.0.0.1:5080 port[$target]=15080 ;;
	parley-bearer) scen[$target]="$here/parley_register_bearer.xml" csv[$target]="$work/$target/tokens.csv" addr[$target]=127.0.0.1:5082 port[$target]=15082 ;;
	kamailio) scen[$target]="$here/kamailio_register.xml" csv[$target]="$work/kamailio.csv" addr[$target]=127.0.0.1:5070 port[$target]=15070 ;;
	*) echo "unknown target $target (parley-digest, parley-bearer, kamailio)" >&2; exit 1 ;;
	esac
done

# start_server TARGET: starts a fresh server for TARGET and sets pid[TARGET].
start_server() {
	local t=$1 dir="$work/$1" p
	mkdir -p "$dir"
	case $t in
	parley-*)
		"$work/parleyreg" -udp "${addr[$t]}" -users "$USERS" -password "$PASSWORD" -domain "$DOMAIN" -dir "$dir" \
			-tokens "$dir/tokens.csv" >"$dir/server.out" 2>"$dir/server.err" &
		p=$!
		for _ in $(seq 900); do grep -q ready "$dir/server.out" 2>/dev/null && break; sleep 0.1; done
		grep -q ready "$dir/server.out" || { cat "$dir/server.err" >&2; echo "parleyreg did not start" >&2; exit 1; }
		;;
	kamailio)
		kamailio -f "$here/kamailio.cfg" -DD -E -m 1024 -M 32 -l "udp:${addr[$t]}" -w "$dir" >"$dir/kamailio.log" 2>&1 &
		p=$!
		sleep 1
		kill -0 "$p" || { cat "$dir/kamailio.log" >&2; echo "kamailio did not start" >&2; exit 1; }
		;;
	esac
	pids+=("$p")
	pid[$t]=$p
	sleep 1
}

# tree PID: PID and its children.
tree() { echo "$1 $(pgrep -P "$1" | tr '\n' ' ')"; }

# mem PID: "RSS_MB PSS_MB" summed over PID and its children.
mem() {
	local rss=0 pss=0 p
	for p in $(tree "$1"); do
		[ -r "/proc/$p/smaps_rollup" ] || continue
		rss=$((rss + $(awk '/^Rss:/{print $2}' "/proc/$p/smaps_rollup")))
		pss=$((pss + $(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup")))
	done
	echo "$((rss / 1024)) $((pss / 1024))"
}

# cputicks PID: user + system clock ticks of PID and its children.
cputicks() {
	local t=0 p
	for p in $(tree "$1"); do
		[ -r "/proc/$p/stat" ] || continue
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$t"
}

# load TARGET RATE CALLS: runs SIPp; prints "ok failed p99_ms".
load() {
	local t=$1 rate=$2 calls=$3 dir
	dir=$(mktemp -d "$work/$t-$rate.XXXX")
	(cd "$dir" && sipp -sf "${scen[$t]}" -inf "${csv[$t]}" -i 127.0.0.1 -p "${port[$t]}" -t u1 \
		-r "$rate" -rp 1000 -m "$calls" -l $((rate * 4)) -recv_timeout 5000 -timeout $((STEP_SECONDS * 4 + 60))s \
		-max_socket 1 -buff_size 4194304 -nostdin -trace_stat -stf stats.csv -fd 1 -trace_rtt -rtt_freq 1000 \
		"${addr[$t]}" >sipp.out 2>&1) || true
	last_load[$t]=$(date +%s)
	awk -F';' 'NR==1{for(i=1;i<=NF;i++){if($i=="SuccessfulCall(C)")s=i;if($i=="FailedCall(C)")f=i}} END{printf "%s %s ", $s, $f}' "$dir/stats.csv"
	cat "$dir"/*_rtt.csv 2>/dev/null | awk -F';' '$2 ~ /^[0-9.]+$/ {print $2}' | sort -n |
		awk '{v[NR]=$1} END{if(NR==0){print "n/a"} else {i=int(NR*0.99); if(i<1)i=1; printf "%.2f\n", v[i]}}'
}

# settle TARGET: waits until SETTLE_SECONDS have passed since TARGET's last load.
settle() {
	local wait=$((last_load[$1] + SETTLE_SECONDS - $(date +%s)))
	[ "$wait" -gt 0 ] && sleep "$wait"
	return 0
}

for target in $TARGETS; do
	echo "== $target: starting" >&2
	start_server "$target"
	echo "== $target: registering $USERS unique users at ${P99_RATE}/s" >&2
	c0=$(cputicks "${pid[$target]}")
	# load sets last_load, so it runs in this shell, not in a command substitution.
	load "$target" "$P99_RATE" "$USERS" >"$work/$target.first"
	read -r ok failed p <"$work/$target.first"
	c1=$(cputicks "${pid[$target]}")
	cpu_reg[$target]=$(((c1 - c0) * 1000000 / $(getconf CLK_TCK) / (ok > 0 ? ok : 1)))
	p99[$target]=$p
	okfail[$target]="$ok/$failed"
	sleep 2
	mem_after[$target]=$(mem "${pid[$target]}")
	best[$target]=none
done

climbing="$TARGETS"
for rate in $RATES; do
	next=""
	for target in $climbing; do
		settle "$target"
		echo "== $target: $rate/s for ${STEP_SECONDS}s" >&2
		load "$target" "$rate" $((rate * STEP_SECONDS)) >"$work/$target.step"
		read -r ok failed p <"$work/$target.step"
		total=$((ok + failed))
		echo "   ok=$ok failed=$failed p99=${p}ms" >&2
		if [ "$total" -gt 0 ] && [ $((failed * 1000)) -lt "$total" ]; then
			best[$target]=$rate
			next="$next $target"
		fi
	done
	climbing=$next
	[ -n "$climbing" ] || break
done

printf '\n%-14s %-22s %-18s %-20s %-28s %s\n' server "max rate <0.1% fail" "p99 @${P99_RATE}/s (ms)" "CPU µs/registration" "mem after ${USERS} (RSS/PSS MB)" "ok/failed in that run"
for target in $TARGETS; do
	read -r rss pss <<<"${mem_after[$target]}"
	printf '%-14s %-22s %-18s %-20s %-28s %s\n' "$target" "${best[$target]}/s" "${p99[$target]}" "${cpu_reg[$target]}" "$rss / $pss" "${okfail[$target]}"
done
echo "(parley-digest: Digest MD5, two round trips per registration; parley-bearer: access token (RFC 8898),"
echo " signature, key, account and grant checked, one round trip; kamailio: no auth, one round trip."
echo " CPU: the server's user+system time during the ${P99_RATE}/s run of ${USERS} users, per registration.)"
