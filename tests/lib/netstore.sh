# shellcheck shell=bash
# Network storage for the netdisk suites: a single-node Ceph cluster
# (ceph.sh) and an iSCSI target (iscsi.sh), required and started as TAP
# lines. Source it (it sources both) from a test that sourced tap.sh and
# set WORK, then:
#   netstore_require "what the suite shows"   # skips the suite without them
#   netstore_start img1:32 other:16            # images NAME:MiB; ISCSI_THIN=1 for a thin LUN
# and call netstore_stop from the test's cleanup.
_NETSTORE_LIB=$(dirname "${BASH_SOURCE[0]}")
. "$_NETSTORE_LIB/ceph.sh"
. "$_NETSTORE_LIB/iscsi.sh"

netstore_require() { # DESC
	local req why
	for req in ceph_require iscsi_require; do
		if ! why=$($req); then
			tap_skip "$1" "$why"
			tap_done; exit
		fi
	done
}

netstore_stop() {
	iscsi_stop >/dev/null 2>&1
	ceph_stop >/dev/null 2>&1
}

# Starts both, or fails the suite with the tail of the failing start's log.
netstore_start() { # IMAGE:MIB...
	local img ok=0
	if ceph_start "$WORK/ceph" >"$WORK/ceph-start.log" 2>&1; then
		ok=1
		for img in "$@"; do
			ceph_image_create "${img%%:*}" "${img##*:}" >>"$WORK/ceph-start.log" 2>&1 || ok=0
		done
	fi
	if ((ok)); then
		tap_ok "a single-node Ceph cluster runs, with images $*"
	else
		tap_fail "a single-node Ceph cluster runs" "$(tail -5 "$WORK/ceph-start.log")"
		tap_done; exit
	fi
	if iscsi_start "$WORK/iscsi" 32 >"$WORK/iscsi-start.log" 2>&1; then
		tap_ok "an iSCSI target runs${ISCSI_THIN:+ (thin LUN: discards reach it)}"
	else
		tap_fail "an iSCSI target runs" "$(tail -5 "$WORK/iscsi-start.log")"
		tap_done; exit
	fi
}
