#!/bin/bash
# The host tax: the disk probe's hooks on the host's IO paths (syscall and
# io_uring tracepoints, block completion) run only while there is a VM to
# measure. With no VM, vmprobe serve has none of them attached, so every
# other process's pread, pwrite, fsync... runs as if vmprobe were not there
# (bench/syscall.sh measures what they cost when attached). A VM that
# appears attaches them and is counted exactly; when it exits they go; the
# next VM attaches them anew and is counted exactly again, with nothing
# left from before. Host block latency off here: it hooks block completion
# on purpose, for every device. The same for the network probe's drop
# tracepoint (kfree_skb, every frame the host drops): only while a tap is
# counted.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_root "the disk hooks run only while a VM does"
command -v bpftool >/dev/null || { tap_skip "the disk hooks run only while a VM does" "no bpftool"; tap_done; exit; }

WORK=$(mktemp -d /tmp/vmprobe-hosttax.XXXXXX)
PORT=19589 VM= TAP=vmtax-t0
cleanup() {
	vmprobe_stop >/dev/null 2>&1
	[ -n "$VM" ] && kill "$VM" 2>/dev/null && wait "$VM" 2>/dev/null
	ip link del "$TAP" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# The tracepoints vmprobe's own fds hold now, one name a line.
hooks() { bpftool perf show pid "$VMPROBE_PID" 2>/dev/null | awk '{ print $NF }' | sort; }
# How many of the disk probe's hooks (syscalls, io_uring, block) are attached.
disk_hooks() { hooks | grep -cE '^(sys_(enter|exit)_|io_uring_|block_rq_complete$)'; }
no_disk_hooks() { [ "$(disk_hooks)" -eq 0 ]; }
has_hook() { hooks | grep -qx "$1"; }

QEMU=$(tapguest_dir)
truncate -s 1M "$WORK/thr.img" "$WORK/nat.img"
ip tuntap add dev "$TAP" mode tap && ip link set "$TAP" up ||
	{ tap_fail "a tap for the stand-in VM"; tap_done; exit; }
vmprobe_start $PORT "disk:
  host_block_latency: false" || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
if ! grep -q "disk sources: threads on, io_uring on, native on" "$WORK/vmprobe.log"; then
	tap_skip "the disk hooks run only while a VM does" "a disk source is off on this kernel (see the log)"
	tap_done; exit
fi
check "vmprobe serves with no VM and holds no disk hook (no syscall, io_uring or block tracepoint)" \
	no_disk_hooks
check "nor the drop tracepoint (kfree_skb)" eval '! has_hook kfree_skb'
hooks >"$WORK/hooks.novm"

export TAPGUEST_READS=8
start_vm() { # a stand-in VM: one aio=threads drive, one aio=native
	"$QEMU" -name guest=tax-vm \
		-drive "file=$WORK/thr.img,format=raw,if=none,id=thr,cache=none,aio=threads" \
		-device virtio-blk-pci,drive=thr,id=disk0 \
		-drive "file=$WORK/nat.img,format=raw,if=none,id=nat,cache=none,aio=native" \
		-device virtio-blk-pci,drive=nat,id=disk1 -netdev tap,id=n0,ifname="$TAP" \
		-device virtio-net-pci,netdev=n0,id=net0 >"$WORK/vm.out" 2>&1 &
	VM=$!
}
reads() { # [DRIVE]: the drive's read operations now (default: the aio=threads one)
	scrape && metric "$WORK/metrics.txt" vmprobe_disk_latency_seconds_count name=tax-vm \
		drive="${1:-disk0}" operation=read
}
counted() { [ -n "$(reads)" ]; }
read_done() { grep -q '^read 16$' "$WORK/vm.out"; } # 8 blocks from each drive
# VM_ROUND: the VM counts from its start, its pread(2)s exactly.
vm_round() {
	start_vm
	check "$1: the VM's drive is counted" wait_for 10 counted
	check "$1: the syscall hooks are attached (sys_enter_pread64, sys_exit_pwritev)" \
		eval 'has_hook sys_enter_pread64 && has_hook sys_exit_pwritev'
	check "$1: io_uring's hooks too" has_hook io_uring_submit_req
	check "$1: block completion too (the VM has an aio=native drive)" has_hook block_rq_complete
	check "$1: and the drop tracepoint, its tap being counted" wait_for 10 has_hook kfree_skb
	local before before1
	before=$(reads) before1=$(reads disk1)
	kill -USR2 "$VM"
	check "$1: the VM read its images" wait_for 5 read_done
	check_num "$1: every pread of the VM counts for its drive, exactly" $((before + 8)) "$(reads)"
	check_num "$1: on the aio=native drive's image too" $((before1 + 8)) "$(reads disk1)"
	kill "$VM"; wait "$VM" 2>/dev/null; VM=
	check "$1: the VM exited, its series go" wait_for 10 eval '! counted'
	check "$1: and every disk hook is detached again" wait_for 10 no_disk_hooks
	check "$1: and the drop tracepoint" wait_for 10 eval '! has_hook kfree_skb'
}
vm_round "first VM"
vm_round "second VM (hooks attached anew)"
hooks >"$WORK/hooks.after"
check "vmprobe holds the same hooks as before any VM" cmp -s "$WORK/hooks.novm" "$WORK/hooks.after"
check_num "no in-flight request was lost" 0 \
	"$(scrape && metric "$WORK/metrics.txt" vmprobe_disk_unmeasured_requests_total reason=inflight_full)"
tap_done
