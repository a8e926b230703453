#!/bin/bash
# Faults, each made for real, each said by one log line and counted in
# vmprobe_faults_total{kind}, while a steady stand-in VM (a tap and a
# drive) keeps being counted exactly, and tried again where that makes
# sense:
#   tcx_attach  a kernel that refuses TCX links (EINVAL, as one without
#               TCX answers; a seccomp filter's supervisor, sysfault, has
#               the kernel fail the call): every tap hangs from clsact
#   tap_gone    a tap deleted while vmprobe attaches to it (sysfault holds
#               the link's bpf() call while `ip link del` runs)
#   vm_exited   a QEMU killed while vmprobe walks its fds (sysfault holds
#               the opendir of /proc/PID/fd while `kill -9` runs)
#   map_full    more VMs than max_vms (tap slots, host socket entries),
#               more TCP connections than network.max_tcp_flows
#   tracefs     unmounted under a running vmprobe (its own mount
#               namespace), remounted by it, or, without CAP_SYS_ADMIN, not
#   btf         /sys/kernel/btf/vmlinux hidden by a bind mount
#   bpffs       not mounted, and not mountable without CAP_SYS_ADMIN
#   map_memory  a memory cgroup too small for the maps max_vms asks
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_root "fault handling" tun
tap_require_cmds "fault handling" capsh

WORK=$(mktemp -d /tmp/vmprobe-faults.XXXXXX)
PORT=19588
REAL=$VMPROBE
STAP=vmpt-s0 GTAP=vmpt-g0 ETAP=vmpt-e0 CTAP=vmpt-c0
CG=
PIDS=() GS=
cleanup() {
	vmprobe_stop >/dev/null 2>&1
	"$REAL" uninstall >/dev/null 2>&1 # what a persistent serve of a failed check left
	for p in "${PIDS[@]}" $GS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	for t in $STAP $GTAP $ETAP $CTAP; do ip link del "$t" 2>/dev/null; done
	[ -n "$CG" ] && rmdir "$CG" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
mktap() {
	ip link del "$1" 2>/dev/null
	ip tuntap add dev "$1" mode tap && sysctl -qw "net.ipv6.conf.$1.disable_ipv6=1" && ip link set "$1" up
}
for t in $STAP $GTAP $ETAP $CTAP; do mktap $t; done
truncate -s 1M "$WORK/steady.img" "$WORK/exit.img"
QEMU=$(tapguest_dir)
export TAPGUEST_BURST="10:60,5:1514" TAPGUEST_READS=8

start_vm() { # NAME TAP [IMAGE]: echoes its pid once it runs
	local drive=()
	[ -n "${3:-}" ] && drive=(-drive "file=$3,format=raw,if=none,id=d0,cache=none,aio=threads"
		-device virtio-blk-pci,drive=d0,id=disk0)
	"$QEMU" -name "guest=$1" -netdev "tap,id=n0,ifname=$2,script=no,downscript=no" "${drive[@]}" \
		>"$WORK/$1.log" 2>&1 &
	local pid=$!
	# It prints "ready" once its taps are open; generous for a loaded host.
	wait_for 20 grep -q ready "$WORK/$1.log" || echo "start_vm: $1 not ready after 20 s" >&2
	echo $pid
}
steady_start() { GS=$(start_vm steady $STAP "$WORK/steady.img"); }
steady_stop() { [ -n "$GS" ] && kill "$GS" && wait "$GS" 2>/dev/null; GS=; }

# A vmprobe run as `PREFIX... vmprobe serve ...`, its PID vmprobe's own.
wrapped() { # PREFIX...: sets VMPROBE to a script that runs the real one so
	VMPROBE=$WORK/vmprobe-wrapped
	{ echo '#!/bin/bash'; printf 'exec'; printf ' %q' "$@"; printf ' %q "$@"\n' "$REAL"; } >"$VMPROBE"
	chmod +x "$VMPROBE"
}
plain() { VMPROBE=$REAL; }
CONF="max_vms: 8"
serve() { # SECTION: starts vmprobe (as wrapped) with $CONF; its log is $WORK/SECTION.log
	SECTION=$1
	vmprobe_start $PORT "$CONF" || { tap_fail "$1: vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; return 1; }
}
serve_end() { vmprobe_stop; cp "$WORK/vmprobe.log" "$WORK/$SECTION.log"; }
faults() { # KIND: vmprobe_faults_total of that kind now
	scrape "$WORK/f.txt" && metric "$WORK/f.txt" vmprobe_faults_total kind="$1"
}
logged() { grep -cE "$1" "$WORK/vmprobe.log"; } # ERE: how many lines of the log match
info_is() { # KIND(drive|interface) NAME MEASURED [REASON]: its _info series says so
	scrape "$WORK/i.txt" &&
		[ "$(metric "$WORK/i.txt" "vmprobe_$1_info" name="$2" measured="$3" ${4:+reason="$4"})" = 1 ]
}

# The steady VM's frames (a burst out, frames in) and drive reads from
# one scrape to the next, against the tap's own counters and the reads made.
steady_round() { # [net]: a burst out, 4 frames in (and 8 reads but with "net"), done
	local sent reads
	sent=$(grep -c '^sent' "$WORK/steady.log") reads=$(grep -c '^read' "$WORK/steady.log")
	kill -USR1 "$GS"; [ "${1:-}" = net ] || kill -USR2 "$GS"
	"$TAPGUEST" inject $STAP 4 100 >/dev/null
	done_() { [ "$(grep -c '^sent' "$WORK/steady.log")" -gt "$sent" ] &&
		{ [ "${1:-}" = net ] || [ "$(grep -c '^read' "$WORK/steady.log")" -gt "$reads" ]; }; }
	wait_for 5 done_ "$@"
}
steady_counted() { # WHAT [net]: with "net", its frames only
	local -A T0=()
	local k d
	wait_for 10 info_is interface steady true || { tap_fail "$1: the steady VM's tap is measured"; return; }
	[ "${2:-}" = net ] || wait_for 10 info_is drive steady true || { tap_fail "$1: the steady VM's drive is measured"; return; }
	scrape_with_tap $STAP "$WORK/s0.txt"
	for k in "${!TAPC[@]}"; do T0[$k]=${TAPC[$k]}; done
	steady_round "${2:-}"
	scrape_with_tap $STAP "$WORK/s1.txt"
	d() { metric_delta "$WORK/s0.txt" "$WORK/s1.txt" "$@" name=steady; }
	check_eq "$1: the steady VM's frames, out and in, are the tap's (15 and 4)" \
		"$((TAPC[rx_packets] - T0[rx_packets])) $((TAPC[tx_packets] + TAPC[tx_dropped] - T0[tx_packets] - T0[tx_dropped])) 15 4" \
		"$(d vmprobe_network_packet_size_bytes_count direction=tx) $(d vmprobe_network_packet_size_bytes_count direction=rx) $(d vmprobe_network_packet_size_bytes_count direction=tx) $(d vmprobe_network_packet_size_bytes_count direction=rx)"
	[ "${2:-}" = net ] ||
		check_num "$1: the steady VM's drive reads are its 8 preads" 8 \
			"$(d vmprobe_disk_latency_seconds_count drive=disk0 operation=read)"
}

# --- tcx_attach: the kernel refuses every TCX link.
if have_tcx; then
	wrapped "$SYSFAULT" -f tcx:EINVAL --
	steady_start
	if serve tcx; then
		steady_counted "TCX refused"
		check_num "TCX refused: counted once per tap that fell back" 1 "$(faults tcx_attach)"
		check_num "TCX refused: the tap hangs from clsact" 1 \
			"$(metric "$WORK/f.txt" vmprobe_network_tc_hook_interfaces hook=clsact)"
		check_num "TCX refused: one log line says so" 1 \
			"$(logged "warn: attaching TCX links to tap $STAP failed: Invalid argument \(the kernel does not take TCX links\); it is counted from clsact filters instead")"
		serve_end
	fi
	steady_stop
else
	tap_skip "TCX refused" "this kernel has no TCX: taps hang from clsact from the start"
fi

# --- tap_gone: the tap is deleted while its TCX link is being made.
if have_tcx; then
	wrapped "$SYSFAULT" -r "tcx@$GTAP:ip link del $GTAP" --
	steady_start
	# Running before vmprobe, so that it holds its tap when vmprobe first
	# sees it: a stand-in seen between its exec and its open of the tap
	# would make a new tap of that name once the rule has deleted the old.
	GG=$(start_vm gone-vm $GTAP); PIDS+=("$GG")
	if serve tap_gone; then
		check "tap gone: the race happened (the tap was deleted during the attach)" \
			wait_for 10 bash -c "! ip link show $GTAP >/dev/null 2>&1"
		check "tap gone: one log line says so" wait_for 10 grep -q \
			"info: tap $GTAP of VM gone-vm went away while vmprobe attached to it: counted if it comes back" "$WORK/vmprobe.log"
		check_num "tap gone: counted" 1 "$(faults tap_gone)"
		check_num "tap gone: no fallback to clsact for a tap that is gone" 0 "$(faults tcx_attach)"
		check_num "tap gone: no attach error" 0 "$(metric "$WORK/f.txt" vmprobe_attach_errors_total)"
		check "tap gone: its NIC is declared unmeasured" \
			wait_for 5 info_is interface gone-vm false "tap $GTAP not found in the VM's network namespace"
		steady_counted "tap gone"
		mktap $GTAP
		check "tap gone: back, it is counted (tried at every scan)" wait_for 10 info_is interface gone-vm true
		serve_end
	fi
	kill "$GG"; wait "$GG" 2>/dev/null
	steady_stop
else
	tap_skip "tap gone during the attach" "the race is made on a TCX link; this kernel has no TCX"
fi

# --- vm_exited: a QEMU killed while vmprobe walks its fds.
GE=$(start_vm exit-vm $ETAP "$WORK/exit.img"); PIDS+=("$GE")
ZOMBIE_OR_GONE="kill -9 $GE; while grep -qv '^[0-9]* ([^)]*) Z' /proc/$GE/stat 2>/dev/null; do sleep 0.01; done"
wrapped "$SYSFAULT" -r "open:/proc/$GE/fd:$ZOMBIE_OR_GONE" --
steady_start
if serve vm_exited; then
	check "VM exited: one log line says so" wait_for 10 grep -qE \
		"info: VM exit-vm \(pid $GE\) exited while vmprobe read it: dropped" "$WORK/vmprobe.log"
	wait "$GE" 2>/dev/null
	check_num "VM exited: counted" 1 "$(faults vm_exited)"
	check_num "VM exited: no attach error" 0 "$(metric "$WORK/f.txt" vmprobe_attach_errors_total)"
	check_eq "VM exited: nothing of it is said unmeasured or counted (no half-read state)" "" \
		"$(grep -E "exit-vm: (drive|interface) .* is not measured|counting (tap $ETAP|drive disk0 .* of VM exit-vm)" "$WORK/vmprobe.log")"
	check_eq "VM exited: not listed" "" "$(metric "$WORK/f.txt" vmprobe_vm_info name=exit-vm)"
	check_eq "VM exited: no vmprobe program left on its tap" "" "$(vmprobe_progs $ETAP)"
	steady_counted "VM exited"
	serve_end
fi
steady_stop

# --- map_full: a second VM where max_vms is 1; more TCP connections than flows.
plain
CONF="max_vms: 1
network: {max_tcp_flows: 4}"
steady_start
if serve map_full; then
	wait_for 10 info_is interface steady true
	GC=$(start_vm crowd-vm $CTAP); PIDS+=("$GC")
	check "map full: the second VM's tap is declared unmeasured" \
		wait_for 10 info_is interface crowd-vm false "attaching to tap $CTAP failed: No space left on device"
	check_num "map full: the log says it once" 1 \
		"$(logged "warn: cannot count tap $CTAP of VM crowd-vm: No space left on device \(raise network.max_interfaces\)")"
	check_num "map full: and once that its host sockets are not counted" 1 \
		"$(logged "warn: cannot count the host TCP sockets of VM crowd-vm \(pid $GC\): Argument list too long \(more VMs than max_vms\)")"
	check_num "map full: each counted once (tap slot, host socket entry)" 2 "$(faults map_full)"
	steady_counted "map full"
	# Ten connections opened to the steady VM, where four fit.
	scrape "$WORK/t0.txt"
	"$TAPGUEST" syn $STAP 10 >/dev/null
	evicted() { scrape "$WORK/t1.txt" && [ "$(metric "$WORK/t1.txt" vmprobe_network_tcp_flows_evicted_total)" -gt 0 ]; }
	check "map full: the flow table evicts" wait_for 5 evicted
	check_num "map full: ten flows made" 10 "$(metric_delta "$WORK/t0.txt" "$WORK/t1.txt" vmprobe_network_tcp_flows_created_total)"
	check_num "map full: evicted = made - in the table" \
		"$(( $(metric "$WORK/t1.txt" vmprobe_network_tcp_flows_created_total) - $(metric "$WORK/t1.txt" vmprobe_network_tcp_flows) ))" \
		"$(metric "$WORK/t1.txt" vmprobe_network_tcp_flows_evicted_total)"
	check_num "map full: the full flow table is said once" 1 \
		"$(logged "warn: the TCP flow table is full \(network.max_tcp_flows: 4\)")"
	check_num "map full: and counted" 3 "$(faults map_full)"
	# Room again: the VM that was first goes, the second is counted.
	steady_stop
	check "map full: once the first VM is gone, the second's tap is counted" \
		wait_for 10 info_is interface crowd-vm true
	check "map full: and its host sockets" wait_for 10 grep -q \
		"info: counting the host TCP sockets of VM crowd-vm (pid $GC) now" "$WORK/vmprobe.log"
	serve_end
	kill "$GC"; wait "$GC" 2>/dev/null
fi
CONF="max_vms: 8"

# --- tracefs: unmounted in vmprobe's mount namespace while no VM runs.
UMOUNT_TRACEFS='for m in /sys/kernel/debug/tracing /sys/kernel/tracing /sys/kernel/debug; do
	while umount -l "$m" 2>/dev/null; do :; done; done
	! grep -qE " (tracefs|debugfs) " /proc/self/mounts'
in_ns() { nsenter -t "$VMPROBE_PID" -m sh -c "$1"; } # CMD: in vmprobe's mount namespace
wrapped unshare -m --propagation private
if serve tracefs; then
	check "tracefs: unmounted under vmprobe" in_ns "$UMOUNT_TRACEFS"
	steady_start
	steady_counted "tracefs remounted"
	check_num "tracefs: one log line says vmprobe mounted it again" 1 \
		"$(logged "warn: tracefs was not mounted any more: mounted it again at /sys/kernel/tracing")"
	check_num "tracefs: counted" 1 "$(faults tracefs)"
	serve_end
fi
steady_stop
# Without CAP_SYS_ADMIN it cannot be mounted again: the drive is said
# unmeasured until tracefs is back.
wrapped unshare -m --propagation private capsh --drop=cap_sys_admin -- -c 'exec "$@"' vmprobe
if serve tracefs_lost; then
	check "tracefs (no CAP_SYS_ADMIN): unmounted under vmprobe" in_ns "$UMOUNT_TRACEFS"
	steady_start
	check "tracefs (no CAP_SYS_ADMIN): the drive is declared unmeasured" \
		wait_for 10 info_is drive steady false
	check_num "tracefs (no CAP_SYS_ADMIN): one log line says so" 1 \
		"$(logged "error: tracefs is not mounted any more and cannot be \(Operation not permitted; mounting needs CAP_SYS_ADMIN\)")"
	check_eq "tracefs (no CAP_SYS_ADMIN): and no other warning or error but the drive's \"not measured\"" "" \
		"$(grep -E ': (warn|error):' "$WORK/vmprobe.log" | grep -vE 'tracefs is not mounted any more|drive disk0 \(file\) is not measured')"
	check_num "tracefs (no CAP_SYS_ADMIN): counted" 1 "$(faults tracefs)"
	steady_counted "tracefs lost" net
	in_ns "mount -t tracefs nodev /sys/kernel/tracing"
	check "tracefs (no CAP_SYS_ADMIN): back, the drive is measured (tried at each sync)" \
		wait_for 15 info_is drive steady true
	steady_counted "tracefs back"
	serve_end
fi
steady_stop

# --- btf: the kernel's BTF hidden.
wrapped unshare -m --propagation private bash -c 'mount --bind /dev/null /sys/kernel/btf/vmlinux && exec "$@"' vmprobe
steady_start
if serve btf; then
	check_num "no BTF: one log line says so" 1 \
		"$(logged "error: no kernel BTF \(/sys/kernel/btf/vmlinux: not valid BTF\): no probe loads")"
	check_eq "no BTF: and no other warning or error but each NIC's and drive's \"not measured\"" "" \
		"$(grep -E ': (warn|error):' "$WORK/vmprobe.log" | grep -vE 'no kernel BTF|: (drive|interface) .* is not measured: .* not loaded \(no kernel BTF\)$')"
	check_num "no BTF: counted" 1 "$(faults btf)"
	listed() { scrape "$WORK/b.txt" && [ "$(metric "$WORK/b.txt" vmprobe_vm_info name=steady)" = 1 ]; }
	check "no BTF: the VM is listed" wait_for 10 listed
	check "no BTF: its tap is declared unmeasured, with why" \
		wait_for 5 info_is interface steady false "tap: the network probe is not loaded (no kernel BTF)"
	check "no BTF: its drive too" \
		info_is drive steady false "local image: the disk probe is not loaded (no kernel BTF)"
	in_ns "umount /sys/kernel/btf/vmlinux"
	check "no BTF: back, the probes load (tried again 10 s, then 20 s after the start)" \
		wait_for 40 grep -qE "info: the disk probe loaded \(try [23]\)" "$WORK/vmprobe.log"
	steady_counted "BTF back"
	check_num "no BTF: counted once, not at every try" 1 "$(faults btf)"
	serve_end
fi
steady_stop

# --- btf, after a serve that persisted: the probes that load late adopt
# its programs and counters as at start; nothing is lost meanwhile.
plain
CONF="max_vms: 8
persist: true"
steady_start
if serve btf_persist; then
	steady_counted "persistent serve"
	wait_for 10 info_is drive steady true && scrape_with_tap $STAP "$WORK/a0.txt"
	declare -A A0=()
	for k in "${!TAPC[@]}"; do A0[$k]=${TAPC[$k]}; done
	serve_end
	steady_round # while no serve runs
	wrapped unshare -m --propagation private bash -c 'mount --bind /dev/null /sys/kernel/btf/vmlinux && exec "$@"' vmprobe
	CONF="max_vms: 8"
	if serve btf_adopt; then
		check "no BTF after a persistent serve: its pins are left for the probes to come" \
			test -e /sys/fs/bpf/vmprobe/net/stamp -a -e /sys/fs/bpf/vmprobe/disk/stamp
		steady_round # no probe loaded: the earlier serve's programs count
		in_ns "umount /sys/kernel/btf/vmlinux"
		for t in network disk; do
			check "no BTF, back: the $t probe loads and adopts the earlier serve's counters" \
				wait_for 40 grep -qE "info: the $t probe loaded \(try [23]\): it adopts the programs and counters an earlier serve left" "$WORK/vmprobe.log"
		done
		wait_for 10 info_is interface steady true && wait_for 10 info_is drive steady true &&
			scrape_with_tap $STAP "$WORK/a1.txt"
		a() { metric_delta "$WORK/a0.txt" "$WORK/a1.txt" "$@" name=steady; }
		check_eq "adopted late: the frames of the gap and the down time, out and in, are the tap's (30 and 8)" \
			"$((TAPC[rx_packets] - A0[rx_packets])) $((TAPC[tx_packets] + TAPC[tx_dropped] - A0[tx_packets] - A0[tx_dropped])) 30 8" \
			"$(a vmprobe_network_packet_size_bytes_count direction=tx) $(a vmprobe_network_packet_size_bytes_count direction=rx) $(a vmprobe_network_packet_size_bytes_count direction=tx) $(a vmprobe_network_packet_size_bytes_count direction=rx)"
		check_num "adopted late: the drive reads of the gap and the down time (16)" 16 \
			"$(a vmprobe_disk_latency_seconds_count drive=disk0 operation=read)"
		steady_counted "adopted late"
		serve_end
	fi
	check "without persist the last serve removed the pins" test ! -e /sys/fs/bpf/vmprobe/net
fi
steady_stop
CONF="max_vms: 8"

# --- bpffs: not mounted, and vmprobe may not mount it (no CAP_SYS_ADMIN).
wrapped unshare -m --propagation private bash -c 'while umount -l /sys/fs/bpf 2>/dev/null; do :; done
	exec capsh --drop=cap_sys_admin -- -c "exec \"\$@\"" vmprobe "$@"' vmprobe
CONF="max_vms: 8
persist: true"
steady_start
if serve bpffs; then
	check_num "no bpffs: one log line says so" 1 \
		"$(logged "warn: cannot use bpffs at /sys/fs/bpf \(.*\): top and hist will load their own probes; tried again every 10 s")"
	check_num "no bpffs: counted" 1 "$(faults bpffs)"
	steady_counted "no bpffs"
	in_ns "mount -t bpf bpf /sys/fs/bpf"
	check "no bpffs: mounted, the maps are pinned (tried every 10 s)" \
		wait_for 25 in_ns "test -e /sys/fs/bpf/vmprobe/net/net_stats"
	check_num "no bpffs: counted once, not at every try" 1 "$(faults bpffs)"
	check_num "no bpffs: the retries said nothing more" 1 "$(logged "cannot use bpffs")"
	late() { grep -oE "warn: [a-z]+ probe: its links were attached before bpffs could be used and are not pinned" \
		"$WORK/vmprobe.log" | cut -d' ' -f2 | sort | xargs; }
	all_late() { [ "$(in_ns "ls /sys/fs/bpf/vmprobe" | sort | xargs)" = "$(late)" ]; }
	check "no bpffs, persist: pinned late, each probe says its links are not (they do not persist)" \
		wait_for 10 all_late
	serve_end
	check_num "no bpffs, persist: at exit, nothing is said to persist" 1 \
		"$(logged "info: signal 15: detaching and exiting \(nothing was pinned to persist\)")"
fi
steady_stop

# --- map_memory: the maps max_vms asks for do not fit vmprobe's memory cgroup.
plain
for root in /sys/fs/cgroup/memory /sys/fs/cgroup; do
	if [ -f "$root/memory.limit_in_bytes" ]; then LIMIT=memory.limit_in_bytes; break; fi
	if [ -f "$root/cgroup.controllers" ] && grep -qw memory "$root/cgroup.controllers"; then LIMIT=memory.max; break; fi
	root=
done
if [ -n "$root" ] && mkdir "$root/vmprobe-faults-$$" 2>/dev/null; then
	CG=$root/vmprobe-faults-$$
	[ $LIMIT = memory.max ] && echo +memory >"$root/cgroup.subtree_control" 2>/dev/null
	echo $((96 << 20)) >"$CG/$LIMIT"
	wrapped bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG"
	# 65535 VMs: the disk probes' maps alone ask for about 600 MiB; the
	# network probe's are kept small.
	CONF="max_vms: 65535
network: {max_interfaces: 16, max_tcp_flows: 64}"
	steady_start
	if serve map_memory; then
		check_num "no memory: one log line for the disk probe" 1 \
			"$(logged "error: loading the disk probe failed \(Cannot allocate memory\): its maps do not fit in the memory vmprobe may use .*; the other probes run, and it is tried again in 10 s")"
		check_num "no memory: counted for each probe that did not load (disk, network-disk)" 2 "$(faults map_memory)"
		check "no memory: the drive is declared unmeasured, with why" \
			wait_for 10 info_is drive steady false "local image: the disk probe is not loaded (Cannot allocate memory)"
		steady_counted "no memory" net
		echo $((2 << 30)) >"$CG/$LIMIT"
		check "no memory: room again, the disk probe loads (tried after 10 s)" \
			wait_for 40 grep -qE "info: the disk probe loaded \(try [23]\)" "$WORK/vmprobe.log"
		steady_counted "memory back"
		serve_end
	fi
	steady_stop
else
	tap_skip "out of memory for the maps" "no writable memory cgroup here"
fi
tap_done
