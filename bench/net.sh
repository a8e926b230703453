#!/bin/bash
# Network bench: a real path between two network namespaces (a veth pair,
# iperf3 client in A, server in B), alternating in one run: no probe,
# vmprobe's TC programs attached to B's end as vmprobe attaches them to a
# tap, and the naive reference program (bench/ref.bpf.c) attached to both
# directions of that end. Small packets (UDP, 64-byte payloads, unlimited
# offered rate: packets/s received) and bulk TCP (bits/s received). Medians
# over interleaved rounds, as ratios. Client and server are pinned to two
# CPUs; the frames' receive path (veth, TC ingress, UDP/TCP) runs on the
# client's CPU, which is the bottleneck, so that is where a probe's cost shows.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$REPO/build/bench/bench
ROUNDS=${ROUNDS:-7} SECS=${SECS:-2} PORT=5299
NS_A=vmpb-bench-a NS_B=vmpb-bench-b IF_A=vmpbn0 IF_B=vmpbn1
ADDR_B=10.77.0.2

command -v iperf3 >/dev/null || { echo "# network bench skipped: iperf3 is not installed"; exit 0; }
[ -x "$BENCH" ] || { echo "net bench: $BENCH is not built (make $BENCH)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/vmprobe-bench-net.XXXXXX)
PROBE= SERVER=
cleanup() {
	set +e
	[ -n "$PROBE" ] && kill -INT "$PROBE" 2>/dev/null && wait "$PROBE" 2>/dev/null
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
	# The namespaces take the veth pair and every filter on it with them.
	ip netns del $NS_A 2>/dev/null
	ip netns del $NS_B 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Left by a run killed before its cleanup could run.
ip netns del $NS_A 2>/dev/null || true
ip netns del $NS_B 2>/dev/null || true
ip netns add $NS_A
ip netns add $NS_B
ip link add $IF_A netns $NS_A type veth peer name $IF_B netns $NS_B
ip -n $NS_A addr add 10.77.0.1/24 dev $IF_A
ip -n $NS_B addr add $ADDR_B/24 dev $IF_B
for ns in $NS_A $NS_B; do ip -n $ns link set lo up; done
ip -n $NS_A link set $IF_A up
ip -n $NS_B link set $IF_B up

ip netns exec $NS_B taskset -c 1 iperf3 -s -p $PORT >"$WORK/server.log" 2>&1 &
SERVER=$!
for ((i = 0; i < 50; i++)); do
	ip netns exec $NS_B ss -Hltn "sport = :$PORT" | grep -q . && break
	sleep 0.1
done

with_probe() { # vmprobe|naive: attached when it returns
	ip netns exec $NS_B "$BENCH" attach $IF_B "$1" >"$WORK/probe.out" 2>"$WORK/probe.log" &
	PROBE=$!
	for ((i = 0; i < 100; i++)); do
		grep -q '^ready$' "$WORK/probe.out" && return 0
		kill -0 $PROBE 2>/dev/null || break
		sleep 0.1
	done
	echo "net bench: $1 did not attach:" >&2; cat "$WORK/probe.log" >&2; exit 1
}
stop_probe() { # the frames the probe counted, into COUNTED
	kill -INT "$PROBE"
	wait "$PROBE" || { echo "net bench: the probe failed:" >&2; cat "$WORK/probe.log" >&2; exit 1; }
	PROBE=
	COUNTED=$(sed -n 's/^counted //p' "$WORK/probe.out")
}
# One iperf3 run; prints received packets/s (udp) or bits/s (tcp) and the
# packets the receiver got (udp) or 0.
run() {
	local args=()
	[ "$1" = udp ] && args=(-u -l 64 -b 0)
	# A bounded wait: a run that hangs fails the bench instead of holding the machine.
	ip netns exec $NS_A timeout $((SECS + 20)) taskset -c 0 \
		iperf3 -c $ADDR_B -p $PORT -t "$SECS" -J "${args[@]}" >"$WORK/run.json" || { echo "net bench: iperf3 $1 failed:" >&2; cat "$WORK/run.json" >&2; exit 1; }
	python3 - "$1" "$WORK/run.json" <<-'EOF'
		import json, sys
		r = json.load(open(sys.argv[2]))["end"]["sum_received"]
		if sys.argv[1] == "udp":
		    got = r["packets"] - r["lost_packets"]
		    print(f'{got / r["seconds"]:.0f} {got}')
		else:
		    print(f'{r["bits_per_second"]:.0f} 0')
	EOF
}

declare -A runs
run udp >/dev/null # warm up
for ((r = 0; r < ROUNDS; r++)); do
	for p in none vmprobe naive; do
		[ $p != none ] && with_probe $p
		out=$(run udp)
		read -r pps udp_pkts <<<"$out"
		out=$(run tcp)
		read -r bps _ <<<"$out"
		if [ $p != none ]; then
			stop_probe
			# Every datagram the server got crossed the probe's ingress.
			if [ "${COUNTED:-0}" -lt "$udp_pkts" ]; then
				echo "net bench: $p counted ${COUNTED:-nothing}, fewer frames than the $udp_pkts UDP datagrams received" >&2
				exit 1
			fi
		fi
		runs[udp_$p]+="$pps " runs[tcp_$p]+="$bps "
	done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for t in udp tcp; do
	for p in none vmprobe naive; do
		eval "${t}_$p=$(median <<<"${runs[${t}_$p]}")"
	done
done
echo "# veth between two netns, iperf3 client on CPU 0, server on CPU 1, ${SECS} s per run," \
	"$ROUNDS interleaved rounds, medians; probes on the server's end, both directions"
echo "# UDP 64-byte payloads, received pps by round: none ${runs[udp_none]}| vmprobe ${runs[udp_vmprobe]}| naive ${runs[udp_naive]}"
echo "# TCP received bit/s by round: none ${runs[tcp_none]}| vmprobe ${runs[tcp_vmprobe]}| naive ${runs[tcp_naive]}"
echo "BENCH net_udp64_pps_none $udp_none pps"
echo "BENCH net_udp64_pps_vmprobe $udp_vmprobe pps"
echo "BENCH net_udp64_pps_naive $udp_naive pps"
echo "BENCH net_tcp_bps_none $tcp_none bit/s"
echo "BENCH net_tcp_bps_vmprobe $tcp_vmprobe bit/s"
echo "BENCH net_tcp_bps_naive $tcp_naive bit/s"
# Run-to-run noise: the spread of the no-probe rounds around their median.
spread() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { printf "%.3f", (v[NR] - v[1]) / v[int((NR + 1) / 2)] }'; }
udp_spread=$(spread <<<"${runs[udp_none]}") tcp_spread=$(spread <<<"${runs[tcp_none]}")
echo "BENCH net_udp64_none_spread_ratio $udp_spread ratio"
echo "BENCH net_tcp_none_spread_ratio $tcp_spread ratio"
awk -v n="$udp_none" -v v="$udp_vmprobe" -v b="$udp_naive" \
	-v tn="$tcp_none" -v tv="$tcp_vmprobe" -v tb="$tcp_naive" \
	-v us="$udp_spread" -v ts="$tcp_spread" 'BEGIN {
	rv = v / n; rb = b / n; trv = tv / tn; trb = tb / tn
	printf "BENCH net_udp64_vmprobe_kept_ratio %.3f ratio\n", rv
	printf "BENCH net_udp64_naive_kept_ratio %.3f ratio\n", rb
	printf "BENCH net_tcp_vmprobe_kept_ratio %.3f ratio\n", trv
	printf "BENCH net_tcp_naive_kept_ratio %.3f ratio\n", trb
	if (rb < 1) {
		loss = (1 - rv) / (1 - rb)
		printf "BENCH net_udp64_loss_vmprobe_vs_naive_ratio %.3f ratio\n", loss
		printf "# goal: vmprobe loses at most half of what naive loses in UDP pps (<= 0.50): %s\n",
			(loss <= 0.5 ? "met" : "NOT met")
	} else {
		printf "# goal: UDP loss ratio undefined: naive lost nothing (kept %.3f) in this run\n", rb
	}
	printf "# goal: bulk TCP with vmprobe keeps >= 0.98: %s\n", (trv >= 0.98 ? "met" : "NOT met")
	printf "# caveat: the no-probe rounds spread over %.0f%% (UDP) and %.0f%% (TCP) of their median;" \
		" a kept ratio closer to 1 than that is within this machine'"'"'s noise, and so is a" \
		" verdict drawn from it. tc_tcp_* and tc_* above time the programs themselves.\n", \
		us * 100, ts * 100
}'
