#!/bin/bash
# Churn soak: SOAK_VMS VMs (default 100; make soak: 1000) start and stop,
# up to SOAK_PARALLEL at once (20; make soak: 40), while /metrics is
# scraped every 200 ms (tests/lib/churn.py does the churn and the
# scraping). Most VMs are stand-ins (tapguest) holding fresh taps (some by
# fd, as libvirt passes them; some deleted under the running VM) and
# images, writing frames into their taps and reading their images; one in
# ten is Debian's QEMU (TCG, paused), where installed. Proven: every VM is
# counted (all its taps and drives) within 30 s of its start; one VM in
# ten, and every QEMU, has counters equal to the ground truth (its taps'
# own counters, the reads it made) before it stops; no scrape fails, every
# one passes a structural check of the text format and a sample passes
# `promtool check metrics`; every exited VM's series are gone from the
# scrapes within 30 s of its exit and never come back; after the run,
# vmprobe holds the same fds, BPF programs, maps and links (by id), and
# bpftool lists as many of its programs, maps and links, as after a
# warm-up round, and its RSS grew by less than 1 MiB.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_root "churn soak" tun
VMS=${SOAK_VMS:-100} PARALLEL=${SOAK_PARALLEL:-20}
WORK=$(mktemp -d /tmp/vmprobe-soak.XXXXXX)
PORT=19661 DRIVER=

# The soak's taps (vmskINrJ), left by an interrupted run or by this one.
soak_taps() { ip -o link show | awk -F': ' '$2 ~ /^vmsk[0-9]+n[0-9]+(@.*)?$/ { sub(/@.*/, "", $2); print $2 }'; }
cleanup() {
	[ -n "$DRIVER" ] && kill "$DRIVER" 2>/dev/null && wait "$DRIVER" 2>/dev/null
	vmprobe_stop >/dev/null 2>&1
	for t in $(soak_taps); do ip link del "$t" 2>/dev/null; done
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
for t in $(soak_taps); do ip link del "$t"; done

STANDIN=$(tapguest_dir)
QEMU=$(command -v qemu-system-x86_64 || true)
[ -n "$QEMU" ] || tap_skip "real QEMU among the churned VMs" "qemu-system-x86_64 is not installed: stand-ins only"
# The product's own rescan interval, not the tests' faster one.
VMPROBE_RESCAN_MS=500 vmprobe_start $PORT ||
	{ tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }

python3 "$REPO/tests/lib/churn.py" --port $PORT --pid "$VMPROBE_PID" --work "$WORK" \
	--standin "$STANDIN" --qemu "$QEMU" --vms "$VMS" --parallel "$PARALLEL" \
	--json "$WORK/result.json" ${SOAK_SEED:+--seed "$SOAK_SEED"} &
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
check_num "no tap counted any more" 0 "$(metric "$WORK/end.txt" vmprobe_network_interfaces)"
check_num "no frame seen on a tap without a slot" 0 \
	"$(metric "$WORK/end.txt" vmprobe_network_unknown_interface_frames_total)"
vmprobe_stop; check_num "vmprobe exits cleanly after the churn (status)" 0 $?
echo "# churn soak: $(r "r['vms']") VMs, $(r "r['parallel']") at once, seed $(r "r['seed']"):" \
	"$(r "r['duration_s']") s, $(r "r['scrapes_main']") scrapes (median $(r "r['scrape_median_s']") s," \
	"p99 $(r "r['scrape_p99_s']") s, max $(r "r['scrape_max_s']") s), at most" \
	"$(r "r['max_vms_in_a_scrape']") VMs in a scrape; start to counted max $(r "r['start_to_counted_max_s']") s;" \
	"exit to gone median $(r "r['reaped_to_gone_median_s']") s, max $(r "r['reaped_to_gone_max_s']") s;" \
	"vmprobe CPU $(r "r['vmprobe_cpu_s']") s; VmRSS $(r "r['base']['rss_kb']") -> $(r "r['end']['rss_kb']") kB;" \
	"fds $(r "r['base']['fds']") -> $(r "r['end']['fds']")"
tap_done
