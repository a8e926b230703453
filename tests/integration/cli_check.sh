#!/bin/bash
# vmprobe check on this machine: everything vmprobe needs is available
# (tracefs mounted or not), kprobes and fentry are reported absent (this
# kernel has neither) without
# failing, and the exit code says so; without a needed capability it
# says what is missing and exits 3. Running it while `serve` counts a tap
# adds no filter to that tap.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_root "vmprobe check"
WORK=$(mktemp -d /tmp/vmprobe-check.XXXXXX)
TAP=vmpt-c0 PORT=19584 GUEST=
cleanup() {
	vmprobe_stop >/dev/null 2>&1
	[ -n "$GUEST" ] && kill "$GUEST" 2>/dev/null && wait "$GUEST" 2>/dev/null
	ip link del "$TAP" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

rc=0; "$VMPROBE" check >"$WORK/check.txt" 2>&1 || rc=$?
check_eq "check exits 0 here" 0 "$rc"
check "kprobes are reported absent" grep -qE '^absent +kprobes' "$WORK/check.txt"
check "fentry is reported absent" grep -qE '^absent +fentry' "$WORK/check.txt"
check_eq "every other check is ok" "" "$(grep -vE '^(ok|absent) |^$|^verdict:' "$WORK/check.txt")"
TCX_ITEM=()
have_tcx && TCX_ITEM=("TC attach (tcx)")
for item in "kernel BTF" "bpf() syscall" "tracefs" "${TCX_ITEM[@]}" "TC attach (clsact)" "disk source aio=threads" \
	"disk source aio=io_uring" "disk source aio=native" "host block latency" "process exec/exit events"; do
	check "check reports '$item' ok" grep -qF "ok        $item" "$WORK/check.txt"
done

# A fresh host may not have tracefs mounted: check mounts it, as serve
# does, and says so. Shown in a mount namespace of its own without it
# (nor debugfs, whose tracing directory would mount tracefs on its own).
rc=0
unshare -m --propagation private sh -c 'for m in /sys/kernel/debug/tracing /sys/kernel/tracing /sys/kernel/debug; do
	while umount -l "$m" 2>/dev/null; do :; done; done
	! grep -qE " (tracefs|debugfs) " /proc/self/mounts || { echo "tracefs still mounted"; exit 9; }
	"$1" check' sh "$VMPROBE" >"$WORK/notracefs.txt" 2>&1 || rc=$?
check_eq "with tracefs not mounted, check exits 0" 0 "$rc"
check "with tracefs not mounted, check mounts it and says so" \
	grep -qE '^ok +tracefs +/sys/kernel/tracing \(mounted now, as serve does\)$' "$WORK/notracefs.txt"

"$VMPROBE" check --json >"$WORK/check.json"
check_eq "check --json: verdict ok, kprobes and fentry absent" "ok absent absent" "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
s = {c["name"].split(" ")[0]: c["status"] for c in d["checks"]}
print(d["verdict"], s["kprobes"], s["fentry/fexit"])' "$WORK/check.json")"

if command -v capsh >/dev/null; then
	rc=0
	capsh --drop=cap_sys_admin -- -c "'$VMPROBE' check" >"$WORK/nocap.txt" 2>&1 || rc=$?
	# Only VMs in other network namespaces (pods) need it: see service_caps.sh.
	check_eq "without CAP_SYS_ADMIN check exits 1 (runs, measuring less)" 1 "$rc"
	check "without CAP_SYS_ADMIN check names it degraded, and nothing missing" \
		bash -c "grep -qE '^degraded +privilege CAP_SYS_ADMIN' '$WORK/nocap.txt' &&
			! grep -qE '^missing' '$WORK/nocap.txt'"
	# With CAP_SYS_ADMIN, TCX links need no CAP_NET_ADMIN: only the clsact hook does.
	rc=0
	capsh --drop=cap_net_admin -- -c "'$VMPROBE' check" >"$WORK/nonet.txt" 2>&1 || rc=$?
	if have_tcx; then
		check_eq "without CAP_NET_ADMIN, on this kernel with TCX, check exits 0" 0 "$rc"
		check "and reports CAP_NET_ADMIN and the clsact hook absent, not needed" \
			bash -c "grep -qE '^absent +privilege CAP_NET_ADMIN' '$WORK/nonet.txt' &&
				grep -qE '^absent +TC attach \(clsact\)' '$WORK/nonet.txt' &&
				grep -qE '^ok +TC attach \(tcx\)' '$WORK/nonet.txt'"
	else
		check_eq "without CAP_NET_ADMIN, on this kernel without TCX, check exits 3" 3 "$rc"
		check "and names CAP_NET_ADMIN missing" \
			grep -qE '^missing +privilege CAP_NET_ADMIN' "$WORK/nonet.txt"
	fi
	# CAP_NET_ADMIN is judged by the hook serve will use, as tried, not by
	# the kernel: network.tc_hook: clsact needs it on any kernel.
	printf 'network: {tc_hook: clsact}\n' >"$WORK/clsact.yaml"
	rc=0
	capsh --drop=cap_net_admin -- -c "'$VMPROBE' check -c '$WORK/clsact.yaml'" >"$WORK/nonet-clsact.txt" 2>&1 || rc=$?
	check_eq "without CAP_NET_ADMIN, with network.tc_hook: clsact, check exits 3" 3 "$rc"
	check "and names CAP_NET_ADMIN missing, for the clsact filters, as tried" \
		grep -qE '^missing +privilege CAP_NET_ADMIN +taps hang from clsact filters here, which need it \(tried: Operation not permitted\)$' \
		"$WORK/nonet-clsact.txt"
	if have_tcx; then
		# TCX links refused for real (the kernel answers EINVAL, as one
		# without TCX does: a seccomp filter's supervisor says it for it):
		# taps fall back to clsact, so CAP_NET_ADMIN is needed after all.
		rc=0
		capsh --drop=cap_net_admin -- -c "'$SYSFAULT' -f tcx:EINVAL -- '$VMPROBE' check" \
			>"$WORK/nonet-notcx.txt" 2>&1 || rc=$?
		check_eq "without CAP_NET_ADMIN, where TCX links fail, check exits 3" 3 "$rc"
		check "and names CAP_NET_ADMIN missing: taps fall back to clsact" \
			grep -qE '^missing +privilege CAP_NET_ADMIN +TCX links do not attach here \(tried: Invalid argument\), so taps fall back to clsact filters' \
			"$WORK/nonet-notcx.txt"
		rc=0
		"$SYSFAULT" -f tcx:EINVAL -- "$VMPROBE" check >"$WORK/notcx.txt" 2>&1 || rc=$?
		check_eq "with CAP_NET_ADMIN, where TCX links fail, check exits 1 (degraded)" 1 "$rc"
		check "and says the taps fall back to clsact filters, which attach" \
			bash -c "grep -qE '^degraded +TC attach \(tcx\) +links do not attach: Invalid argument; every tap falls back to clsact' '$WORK/notcx.txt' &&
				grep -qE '^ok +TC attach \(clsact\)' '$WORK/notcx.txt' &&
				grep -qE '^ok +privilege CAP_NET_ADMIN' '$WORK/notcx.txt'"
	fi
else
	tap_skip "check without CAP_SYS_ADMIN or CAP_NET_ADMIN" "capsh (libcap2-bin) is not installed"
fi

# While serve counts a tap, check adds nothing to it.
ip tuntap add dev "$TAP" mode tap && ip link set "$TAP" up
"$(tapguest_dir)" -name guest=check-vm -netdev "tap,id=n0,ifname=$TAP" >/dev/null 2>&1 &
GUEST=$!
vmprobe_start $PORT || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
counted() { [ "$(vmprobe_progs "$TAP" | grep -c 'vmprobe_tap_ing')" = 1 ]; }
check "serve counts the tap" wait_for 5 counted
before=$(tap_progs "$TAP")
"$VMPROBE" check >/dev/null 2>&1
check_eq "check while serve runs leaves the VM tap's filters as they were" "$before" \
	"$(tap_progs "$TAP")"
check_eq "check leaves no test tap behind" "" "$(ip -o link show vmprobe-check0 2>/dev/null)"
tap_done
