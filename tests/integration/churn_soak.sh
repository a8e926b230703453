#!/bin/bash
# Churn soak: SOAK_VMS VMs (default 100; make soak: 1000) start and stop,
# up to SOAK_PARALLEL at once (20; make soak: 40), after a warm-up of
# SOAK_WARMUP VMs (2 x SOAK_PARALLEL) as baseline, while /metrics is
# scraped every 200 ms (tests/lib/churn.py does the churn and the
# scraping), and SOAK_SURVIVORS stand-ins (2) live through it all, doing
# rounds of IO. Most churned VMs are stand-ins (tapguest) holding fresh
# taps (tap names used again by the next VM, as libvirt's vnetN are; some
# held by fd, as libvirt passes them; some deleted under the running VM)
# and images, writing frames into their taps and reading their images;
# one in ten is Debian's QEMU (TCG, paused), where installed. Proven:
# every VM is counted (all its taps and drives) within 30 s of its start;
# one VM in ten, and every QEMU, has counters equal to the ground truth
# (its taps' own counters, the reads it made) and one program of
# vmprobe's on each TC hook of each tap before it stops; no scrape fails,
# every one passes a structural check of the text format and a sample
# passes `promtool check metrics`; every exited VM's series are gone from
# the scrapes within 30 s of its exit and never come back; the survivors
# are in every scrape, their counters never go back, and equal the ground
# truth exactly after the churn; after the run, vmprobe holds the same
# fds, BPF programs, maps and links (by id), and bpftool lists as many of
# its programs, maps and links, as after a warm-up round, and its RSS grew
# by less than 1 MiB; once vmprobe has exited, every device's TC state
# (qdiscs, clsact filters, TCX programs; another tool's on a survivor's
# tap) is what it was before vmprobe started.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/lib/guest.sh"

tap_require_root "churn soak" tun
tap_require_cmds "churn soak" python3 bpftool tc ip promtool
VMS=${SOAK_VMS:-100} PARALLEL=${SOAK_PARALLEL:-20} SURVIVORS=${SOAK_SURVIVORS:-2}
WORK=$(mktemp -d /tmp/vmprobe-soak.XXXXXX)
PORT=19661 DRIVER= HOLD=

# The soak's taps (vmskSnJ: worker S's VM's tap J; vmsklJ: survivor J's),
# left by an interrupted run or by this one.
soak_taps() { ip -o link show | awk -F': ' '$2 ~ /^vmsk(l[0-9]+|[0-9]+n[0-9]+)(@.*)?$/ { sub(/@.*/, "", $2); print $2 }'; }
cleanup() {
	[ -n "$DRIVER" ] && kill "$DRIVER" 2>/dev/null && wait "$DRIVER" 2>/dev/null
	vmprobe_stop >/dev/null 2>&1
	[ -s "$WORK/survivors.pids" ] && kill $(cat "$WORK/survivors.pids") 2>/dev/null
	[ -n "$HOLD" ] && kill "$HOLD" 2>/dev/null && wait "$HOLD" 2>/dev/null
	for t in $(soak_taps); do ip link del "$t" 2>/dev/null; done
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
for t in $(soak_taps); do ip link del "$t"; done

STANDIN=$(tapguest_dir)
QEMU=$(command -v qemu-system-x86_64 || true)
[ -n "$QEMU" ] || tap_skip "real QEMU among the churned VMs" "qemu-system-x86_64 is not installed: stand-ins only"

# The VMs that live through the churn (SURVIVORS stand-ins, started by
# churn.py) get their taps before vmprobe starts; the first one also has
# another tool's clsact filter and, where the kernel has TCX, TCX program.
LIVE_TAPS=()
for ((j = 0; j < SURVIVORS; j++)); do LIVE_TAPS+=("vmskl$j"); done
guest_tap_add "${LIVE_TAPS[@]}" || { tap_fail "the survivors' taps are made"; tap_done; exit; }
if [ "$SURVIVORS" -gt 0 ]; then
	tc qdisc add dev vmskl0 clsact &&
		tc filter add dev vmskl0 ingress pref 10 bpf da obj "$REPO/build/tests/tools/foreign.bpf.o" sec tc ||
		{ tap_fail "a foreign clsact filter on vmskl0"; tap_done; exit; }
	if have_tcx; then
		"$TCX" hold vmskl0 "$REPO/build/tests/tools/foreign.bpf.o" foreign_next >"$WORK/hold.log" 2>&1 &
		HOLD=$!
		wait_for 10 grep -q attached "$WORK/hold.log" ||
			{ tap_fail "a foreign TCX program on vmskl0" "$(cat "$WORK/hold.log")"; tap_done; exit; }
	fi
fi
# The TC state (qdiscs, clsact filters, TCX programs) of every device there
# before vmprobe starts, to be found again once it has exited.
TC_DEVS=$(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }')
tc_state() {
	local dev
	for dev in $TC_DEVS; do
		tc qdisc show dev "$dev" 2>&1 | sed "s/^/$dev: /"
		tap_progs "$dev" | sed "s/^/$dev: /"
	done
}
TC_BEFORE=$(tc_state)
# The product's own rescan interval, not the tests' faster one.
VMPROBE_RESCAN_MS=500 vmprobe_start $PORT ||
	{ tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }

python3 "$REPO/tests/lib/churn.py" --port $PORT --pid "$VMPROBE_PID" --work "$WORK" \
	--standin "$STANDIN" --qemu "$QEMU" --vms "$VMS" --parallel "$PARALLEL" --tcx "$TCX" \
	--survivor-taps "$(IFS=,; echo "${LIVE_TAPS[*]}")" \
	--json "$WORK/result.json" ${SOAK_SEED:+--seed "$SOAK_SEED"} ${SOAK_WARMUP:+--warmup "$SOAK_WARMUP"} &
DRIVER=$!
wait "$DRIVER"
rc=$? DRIVER=
if [ $rc -ne 0 ] || [ ! -s "$WORK/result.json" ]; then
	tap_fail "the churn ran to its end" "exit status $rc" "$(tail -20 "$WORK/vmprobe.log")"
	tap_done; exit
fi
r() { python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$WORK/result.json" "$1"; }
lines() { r "'\n'.join(str(x) for x in ($1)[:10])"; } # a list, one per line (10 at most)

check_num "all $(( VMS + $(r "r['warmup']") )) VMs (warm-up included) started and stopped" \
	"$(( VMS + $(r "r['warmup']") ))" "$(r "sum(r['started'].values())")"
[ -z "$QEMU" ] || check_range "real QEMU among them" 1 "$VMS" "$(r "r['started']['qemu']")"
check_num "up to $PARALLEL VMs ran at once" "$PARALLEL" "$(r "r['max_live']")"
check_eq "every VM counted within 30 s of its start, its IO done, sampled ones exact (no error)" "" \
	"$(lines "r['errors']")"
check_num "stand-ins whose counters were compared with the ground truth, exactly" \
	"$(r "r['sampled']['standin']")" "$(r "r['exact_checked']['standin']")"
check_num "real QEMUs whose tap counters were compared with the ground truth, exactly" \
	"$(r "r['sampled']['qemu']")" "$(r "r['exact_checked']['qemu']")"
check_num "VMs that live through the churn, counted before it" "$SURVIVORS" "$(r "r['survivors_counted']")"
check_eq "they are in every scrape since, with all their taps and drives" "" "$(lines "r['survivor_missing']")"
check_range "their counters (packets, bytes, disk operations and bytes) followed from scrape to scrape" \
	$(( SURVIVORS * 12 )) 1e9 "$(r "r['survivor_series']")"
check_eq "none of them went back or vanished from a scrape" "" "$(lines "r['survivor_went_back']")"
check_num "their counters equal the ground truth after the churn's IO rounds, exactly" \
	"$SURVIVORS" "$(r "r['survivors_exact']")"
check_range "scrapes every 200 ms through the run" 10 1e9 "$(r "r['scrapes']")"
check_num "failed scrapes (HTTP status other than 200, or none)" 0 "$(r "r['failed_scrapes']")"
check_num "invalid scrapes (structural check of the text format)" 0 "$(r "r['invalid_scrapes']")"
[ "$(r "r['scrape_failures']")" = "[]" ] || echo "# $(lines "r['scrape_failures']")"
check_range "scrapes sampled for promtool" 1 1e9 "$(r "r['promtool_runs']")"
check_eq "promtool check metrics on the sampled scrapes: clean" "" "$(lines "r['promtool_errors']")"
check_num "every exited VM judged by scrapes begun after its exit" \
	"$(r "sum(r['started'].values())")" "$(r "r['vms_judged_gone'] + len(r['stale_vms'])")"
check_eq "no series of an exited VM left 30 s after its exit" "" "$(lines "r['stale_vms']")"
check_eq "no series of an exited VM came back" "" "$(lines "r['back_vms']")"
check_num "vmprobe's open fds back to the baseline" "$(r "r['base']['fds']")" "$(r "r['end']['fds']")"
check_eq "vmprobe's fds of each kind (files, sockets, BPF maps, programs, links by type) as at the baseline" \
	"$(r "sorted(r['base']['fd_kinds'].items())")" "$(r "sorted(r['end']['fd_kinds'].items())")"
for kind in prog map link; do
	check_eq "vmprobe holds the same BPF ${kind}s as at the baseline (ids)" \
		"$(r "r['base']['${kind}_ids']")" "$(r "r['end']['${kind}_ids']")"
	check_num "bpftool lists as many of vmprobe's ${kind}s as at the baseline" \
		"$(r "r['base']['bpftool_${kind}s']")" "$(r "r['end']['bpftool_${kind}s']")"
done
check_eq "vmprobe's pins in bpffs as at the baseline" "$(r "r['base']['pins']")" "$(r "r['end']['pins']")"
check_range "RSS growth after the warm-up < 1 MiB (kB)" -1e9 1023 "$(r "r['rss_growth_kb']")"
scrape "$WORK/end.txt"
check_num "only the survivors' taps counted any more" "$SURVIVORS" \
	"$(metric "$WORK/end.txt" vmprobe_network_interfaces)"
check_num "no frame seen on a tap without a slot" 0 \
	"$(metric "$WORK/end.txt" vmprobe_network_unknown_interface_frames_total)"
for t in "${LIVE_TAPS[@]}"; do
	check_eq "$t, a survivor's tap, has one program of vmprobe's on each hook" \
		"vmprobe_tap_egr vmprobe_tap_ing" "$(vmprobe_progs "$t" | sort | xargs)"
done
vmprobe_stop; check_num "vmprobe exits cleanly after the churn (status)" 0 $?
check_eq "every device's TC state (qdiscs, filters, TCX programs) as before vmprobe started" \
	"$TC_BEFORE" "$(tc_state)"
echo "# churn soak: $(r "r['vms']") VMs, $(r "r['parallel']") at once, seed $(r "r['seed']"):" \
	"$(r "r['duration_s']") s, $(r "r['scrapes_main']") scrapes (median $(r "r['scrape_median_s']") s," \
	"p99 $(r "r['scrape_p99_s']") s, max $(r "r['scrape_max_s']") s), at most" \
	"$(r "r['max_vms_in_a_scrape']") VMs in a scrape; start to counted max $(r "r['start_to_counted_max_s']") s;" \
	"exit to gone median $(r "r['reaped_to_gone_median_s']") s, max $(r "r['reaped_to_gone_max_s']") s;" \
	"vmprobe CPU $(r "r['vmprobe_cpu_s']") s; VmRSS $(r "r['base']['rss_kb']") -> $(r "r['end']['rss_kb']") kB;" \
	"fds $(r "r['base']['fds']") -> $(r "r['end']['fds']"); survivors' IO rounds $(r "[s['rounds'] for s in r['survivors']]")"
tap_done
