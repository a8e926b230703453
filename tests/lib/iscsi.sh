# shellcheck shell=bash
# A throw-away iSCSI target for vmprobe integration tests: Debian's tgtd
# (package tgt) as a child of the test's shell, one target with one LUN
# backed by a file, reachable on 127.0.0.1 only. QEMU reaches it with its
# libiscsi driver (package qemu-block-extra: block-iscsi.so -> libiscsi.so.7).
#
# Source this file from a bash test (set -u safe), then:
#   iscsi_require || { tap_skip "..." "$(iscsi_require)"; ...; }
#   trap iscsi_stop EXIT                 # or call it from the test's cleanup
#   iscsi_start "$WORK/iscsi" 64         # DIR (created, removed by iscsi_stop), SIZE_MB
#   guest_start ... -drive "file=$ISCSI_URL,format=raw,if=none,id=isc0,cache=none" \
#       -device virtio-blk-pci,drive=isc0,id=vdisk-iscsi
#   # or: -blockdev "$(iscsi_blockdev_json isc0)" -device virtio-blk-pci,drive=isc0,...
#   iscsi_stop
#
# Do not call iscsi_start in a subshell (e.g. $(...)): tgtd must be a child
# of the test's shell so iscsi_stop can reap it.
#
# Isolation from a system tgtd: tgtd and tgtadm take their control socket
# path from TGT_IPC_SOCKET (default /var/run/tgtd/socket, plus ".N" for
# control port N, plus a ".N.lock" file); here it lives in DIR, so a system
# tgtd (socket.0, iSCSI port 3260) and other test instances cannot clash.
# The iSCSI portal is 127.0.0.1:ISCSI_PORT (default: a free port picked
# here). tgtd ignores SIGTERM; iscsi_stop asks it to exit over its control
# socket and SIGKILLs it if it has not after 3 s. tgtd keeps no state
# outside DIR (iSCSI is all user space; RDMA/iSER init fails harmlessly).
#
# Optional inputs (environment, read by iscsi_start):
#   ISCSI_PORT       portal port (default: a free one in 20000..39999)
#   ISCSI_THIN=1     thin-provisioned LUN (advertises LBP: UNMAP, WRITE SAME
#                    with UNMAP, GET LBA STATUS; tgtd punches holes). Off by
#                    default: then QEMU drops guest discards (lbpu=0) and
#                    sends no GET LBA STATUS before large reads.
#   ISCSI_BLOCKSIZE  logical block size of the LUN (default 512)
# Outputs (globals):
#   ISCSI_URL     iscsi://127.0.0.1:PORT/IQN/1, as QEMU's -drive file= takes it
#   ISCSI_PORTAL  127.0.0.1:PORT      ISCSI_IQN  the target's name
#   ISCSI_LUN     1                   ISCSI_IMG  the LUN's backing file
#   ISCSI_PID     tgtd's PID          ISCSI_DIR  DIR; tgtd's output is in $ISCSI_DIR/tgtd.log

ISCSI_PID=${ISCSI_PID-}
ISCSI_DIR=${ISCSI_DIR-}
ISCSI_URL=${ISCSI_URL-}

# Absolute paths: /usr/sbin may be missing from a non-login PATH.
_iscsi_bin() { # NAME: prints its path
	command -v "$1" 2>/dev/null && return
	[[ -x /usr/sbin/$1 ]] && echo "/usr/sbin/$1"
}

# tgtadm against this file's tgtd.
_iscsi_adm() {
	TGT_IPC_SOCKET="$ISCSI_DIR/tgt.sock" "$(_iscsi_bin tgtadm)" -C 0 "$@"
}

# iscsi_require
# Returns 0 if everything iscsi_start and a QEMU iscsi drive need is here;
# otherwise prints one line saying what is missing and returns 1.
iscsi_require() {
	local m=()
	[[ -n $(_iscsi_bin tgtd) && -n $(_iscsi_bin tgtadm) ]] || m+=("tgtd/tgtadm (package tgt)")
	compgen -G "/usr/lib/*/qemu/block-iscsi.so" >/dev/null ||
		m+=("QEMU's iscsi driver block-iscsi.so (package qemu-block-extra)")
	compgen -G "/usr/lib/*/libiscsi.so.[0-9]*" >/dev/null || m+=("libiscsi (package libiscsi7)")
	command -v ss >/dev/null || m+=("ss (package iproute2)")
	if ((${#m[@]})); then
		local IFS=';'
		echo "iSCSI test environment incomplete: missing ${m[*]}"
		return 1
	fi
	[[ $(id -u) -eq 0 ]] || { echo "iSCSI target needs root"; return 1; }
}

# Is TCP port $1 on 127.0.0.1 (or the wildcard) unused?
_iscsi_port_free() {
	[[ -z $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
}

# iscsi_start DIR SIZE_MB
# Starts tgtd, creates the target and its LUN (a sparse file of SIZE_MB MiB in
# DIR) and sets the ISCSI_* globals. Returns non-zero (with the reason and
# tgtd's log on stderr) on failure, leaving nothing behind.
# shellcheck disable=SC2034  # the ISCSI_* globals are for the caller
iscsi_start() {
	local dir=$1 size=$2 tgtd port tries pid i ok
	if [[ -n $ISCSI_PID ]]; then
		echo "iscsi_start: already running (pid $ISCSI_PID); call iscsi_stop first" >&2
		return 1
	fi
	tgtd=$(_iscsi_bin tgtd) || { echo "iscsi_start: tgtd not found" >&2; return 1; }
	mkdir -p "$dir" || return
	ISCSI_DIR=$(cd "$dir" && pwd) || return
	ISCSI_IMG=$ISCSI_DIR/lun1.img
	truncate -s "${size}M" "$ISCSI_IMG" || { iscsi_stop; return 1; }

	for ((tries = 0; tries < 8; tries++)); do
		port=${ISCSI_PORT:-$((20000 + (RANDOM * 32768 + RANDOM) % 20000))}
		if [[ -z ${ISCSI_PORT:-} ]] && ! _iscsi_port_free "$port"; then
			continue
		fi
		TGT_IPC_SOCKET="$ISCSI_DIR/tgt.sock" "$tgtd" -f -C 0 --iscsi "portal=127.0.0.1:$port" \
			</dev/null >"$ISCSI_DIR/tgtd.log" 2>&1 &
		pid=$!
		ISCSI_PID=$pid
		# Ready: the control socket answers and our tgtd listens on the
		# portal. tgtd keeps running when it cannot bind the portal (it
		# only logs "unable to bind"), so look at the listener's pid.
		ok=0
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			grep -q "failed to create/bind" "$ISCSI_DIR/tgtd.log" 2>/dev/null && break
			if ss -Hltnp "sport = :$port" 2>/dev/null | grep -q "pid=$pid," &&
				_iscsi_adm --op show --mode sys >/dev/null 2>&1; then
				ok=1
				break
			fi
			sleep 0.05
		done
		((ok)) && break
		_iscsi_kill
		[[ -n ${ISCSI_PORT:-} ]] && break # a fixed port: no point retrying
	done
	if [[ -z $ISCSI_PID ]]; then
		echo "iscsi_start: tgtd did not come up on 127.0.0.1:${port:-?}:" >&2
		cat "$ISCSI_DIR/tgtd.log" >&2 2>/dev/null
		iscsi_stop
		return 1
	fi

	ISCSI_PORTAL=127.0.0.1:$port
	ISCSI_IQN=iqn.2024-01.org.vmprobe.test:lun-$port
	ISCSI_LUN=1
	local -a lu=(--lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$ISCSI_IMG")
	[[ -n ${ISCSI_BLOCKSIZE:-} ]] && lu+=(--blocksize "$ISCSI_BLOCKSIZE")
	if ! { _iscsi_adm --lld iscsi --op new --mode target --tid 1 -T "$ISCSI_IQN" &&
		_iscsi_adm "${lu[@]}" &&
		{ [[ ${ISCSI_THIN:-0} != 1 ]] ||
			_iscsi_adm --lld iscsi --op update --mode logicalunit --tid 1 --lun 1 \
				--params thin_provisioning=1; } &&
		_iscsi_adm --lld iscsi --op bind --mode target --tid 1 -I 127.0.0.1; } >>"$ISCSI_DIR/tgtd.log" 2>&1; then
		echo "iscsi_start: tgtadm failed to set up the target:" >&2
		cat "$ISCSI_DIR/tgtd.log" >&2
		iscsi_stop
		return 1
	fi
	ISCSI_URL=iscsi://$ISCSI_PORTAL/$ISCSI_IQN/1
}

# iscsi_blockdev_json NODE_NAME
# Prints the -blockdev JSON for the LUN (protocol driver iscsi, cache.direct=on),
# e.g. -blockdev "$(iscsi_blockdev_json isc0)" -device virtio-blk-pci,drive=isc0
iscsi_blockdev_json() {
	printf '{"driver":"iscsi","node-name":"%s","transport":"tcp","portal":"%s","target":"%s","lun":%s,"cache":{"direct":true,"no-flush":false}}' \
		"$1" "$ISCSI_PORTAL" "$ISCSI_IQN" "$ISCSI_LUN"
}

# SIGKILL and reap tgtd (after asking it to exit).
_iscsi_kill() {
	local pid=$ISCSI_PID i
	[[ -n $pid ]] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		# Graceful: drop the target (and any session) and ask tgtd to exit.
		_iscsi_adm --lld iscsi --op delete --mode target --tid 1 --force >/dev/null 2>&1
		_iscsi_adm --op delete --mode system >/dev/null 2>&1
		for ((i = 0; i < 60; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	ISCSI_PID=
	return 0
}

# iscsi_stop
# Stops tgtd (if this shell started it) and removes DIR. Safe as an EXIT
# trap, twice, and after a failed iscsi_start. Stop QEMU first: a QEMU still
# logged in sees its session drop (its iscsi drive gets I/O errors).
iscsi_stop() {
	_iscsi_kill
	[[ -n $ISCSI_DIR ]] && rm -rf "$ISCSI_DIR"
	ISCSI_DIR='' ISCSI_URL=''
	return 0
}
