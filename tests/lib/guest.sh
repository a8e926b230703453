# shellcheck shell=bash
# Boot throw-away QEMU (TCG) guests for vmprobe integration tests.
#
# Source this file from a bash test, then:
#   guest_build                                  # kernel + base initramfs
#   guest_make_initrd "$tmp/initrd" workload.sh  # base + /workload.sh
#   trap guest_stop EXIT
#   guest_start "vm one" vpt0 "$tmp/initrd"      # sets GUEST_PID, GUEST_LOG, ...
#   guest_wait_done "$GUEST_LOG" 60              # returns the workload's rc
#   guest_stop
# See tests/guest/README.md for the tap setup and the guest environment.
#
# Do not call guest_start in a subshell (e.g. $(...)): the QEMU process must
# be a child of the test's shell so guest_stop can reap it.

_guest_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# PID -> run directory of each guest started and not yet stopped. -g: the
# file may be sourced from inside a function; the test keeps the map when the
# file is sourced again.
declare -p _guest_dirs >/dev/null 2>&1 || declare -gA _guest_dirs=()

# guest_build [CACHE_DIR]
# Runs tests/guest/build.sh (idempotent) and sets GUEST_KERNEL and
# GUEST_BASE_INITRD.
guest_build() {
    local paths
    paths=$("$_guest_root/tests/guest/build.sh" "$@") || return
    GUEST_KERNEL=${paths%%$'\n'*}
    GUEST_BASE_INITRD=${paths#*$'\n'}
}

# guest_build_or_fail [WHAT]
# guest_build into $WORK/build.log; if it fails, the test fails and ends.
guest_build_or_fail() {
    guest_build >"$WORK/build.log" 2>&1 && return
    tap_fail "build the test guest${1:+ ($1)}" "$(tail -5 "$WORK/build.log")"
    tap_done; exit
}

# guest_tap_add TAP...
# Taps for guests, up, without IPv6 (no router solicitations in the counts).
guest_tap_add() {
    local t
    for t in "$@"; do
        ip tuntap add dev "$t" mode tap || return
        sysctl -qw "net.ipv6.conf.$t.disable_ipv6=1"
        ip link set "$t" up || return
    done
}

# guest_stat PHASE DEV FIELD
# Field FIELD of the guest's /sys/block/DEV/stat in the workload's line
# "STAT PHASE DEV fields..." of $GUEST_LOG.
guest_stat() {
    tr -d '\r' <"$GUEST_LOG" |
        awk -v p="$1" -v d="$2" -v f="$3" '$1 == "STAT" && $2 == p && $3 == d { print $(3 + f) }'
}

# guest_delta DEV FIELD: the field's growth from phase BEFORE to AFTER.
guest_delta() {
    echo $(( $(guest_stat AFTER "$1" "$2") - $(guest_stat BEFORE "$1" "$2") ))
}

# guest_make_initrd OUT WORKLOAD
# Writes OUT: the base initramfs followed by a cpio holding WORKLOAD as
# /workload.sh (mode 755; "-" reads it from stdin). The kernel unpacks
# concatenated archives in order. The appended one is compressed too: the
# kernel takes an uncompressed archive only at a 4-byte aligned offset, and
# the base's gzip stream has no aligned length.
guest_make_initrd() {
    local out=$1 workload=$2 dir rc=0
    if [[ -z ${GUEST_BASE_INITRD:-} ]]; then
        echo "guest_make_initrd: call guest_build first" >&2
        return 1
    fi
    [[ $workload == - ]] && workload=/dev/stdin
    dir=$(mktemp -d) || return
    # One && chain, so the temporary directory goes whatever step fails.
    cat "$workload" >"$dir/workload.sh" &&
        chmod 755 "$dir/workload.sh" &&
        { cat "$GUEST_BASE_INITRD" &&
            (cd "$dir" && echo workload.sh | cpio -o -H newc --owner=0:0 --quiet | gzip -n); } >"$out" ||
        rc=$?
    rm -rf "$dir"
    return "$rc"
}

# QEMU splits option values at commas; a literal comma is written doubled.
_guest_qemu_escape() {
    printf '%s' "${1//,/,,}"
}

# guest_start NAME TAP INITRD [EXTRA_QEMU_ARGS...]
# Boots GUEST_KERNEL with INITRD in the background: one virtio-net NIC on the
# existing tap device TAP, serial console to a log file, QMP on a unix socket.
# NAME is passed as -name guest=NAME (any characters). Returns once QEMU
# answers on QMP, i.e. its setup (tap, drives) succeeded.
#
# Optional inputs (environment):
#   GUEST_IP      eth0 address in the guest, ADDR/PREFIX (default 10.77.0.2/24;
#                 empty: eth0 comes up without an address)
#   GUEST_MAC     NIC MAC (default 52:54:00 + 3 bytes of the generated UUID)
#   GUEST_NIC_ID  the NIC device's id= (none by default; KubeVirt's are ua-NAME)
#   GUEST_MEM     memory in MiB (default 256)
#   GUEST_APPEND  extra kernel command line
#   GUEST_RUN_DIR where run directories are made (default ${TMPDIR:-/tmp})
# Outputs (globals describing this guest):
#   GUEST_PID   QEMU's PID          GUEST_UUID  its -uuid
#   GUEST_DIR   run directory       GUEST_LOG   serial console log ($GUEST_DIR/serial.log)
#   GUEST_QMP   QMP socket ($GUEST_DIR/qmp.sock); QEMU's own stderr is in $GUEST_DIR/qemu.log
# shellcheck disable=SC2034  # the GUEST_* globals are for the caller
guest_start() {
    local name=$1 tap=$2 initrd=$3
    shift 3
    if [[ -z ${GUEST_KERNEL:-} ]]; then
        echo "guest_start: call guest_build first" >&2
        return 1
    fi
    local dir uuid hex mac pid
    dir=$(mktemp -d "${GUEST_RUN_DIR:-${TMPDIR:-/tmp}}/vmprobe-guest.XXXXXX") || return
    uuid=$(cat /proc/sys/kernel/random/uuid)
    hex=${uuid//-/}
    mac=${GUEST_MAC:-52:54:00:${hex:0:2}:${hex:2:2}:${hex:4:2}}

    # shellcheck disable=SC2054  # commas inside QEMU option values
    local -a args=(
        -accel tcg -cpu max -m "${GUEST_MEM:-256}"
        # No default devices (VGA, floppy, default NIC...): only what we add.
        -nodefaults -no-user-config -display none
        # The guest powers off or panics when done; either way, exit.
        -no-reboot
        -kernel "$GUEST_KERNEL" -initrd "$initrd"
        -append "console=ttyS0 quiet panic=-1 vmprobe.ip=${GUEST_IP-10.77.0.2/24} ${GUEST_APPEND:-}"
        # debug-threads names the vCPU threads ("CPU 0/TCG"), as libvirt does.
        -name "guest=$(_guest_qemu_escape "$name"),debug-threads=on"
        -uuid "$uuid"
        -chardev "file,id=serial0,path=$(_guest_qemu_escape "$dir/serial.log")"
        -serial chardev:serial0
        -chardev "socket,id=qmp0,path=$(_guest_qemu_escape "$dir/qmp.sock"),server=on,wait=off"
        -mon chardev=qmp0,mode=control
        -netdev "tap,id=n0,ifname=$(_guest_qemu_escape "$tap"),script=no,downscript=no"
        -device "virtio-net-pci,netdev=n0,mac=$mac${GUEST_NIC_ID:+,id=$GUEST_NIC_ID}"
        "$@"
    )
    qemu-system-x86_64 "${args[@]}" </dev/null >"$dir/qemu.log" 2>&1 &
    pid=$!
    _guest_dirs[$pid]=$dir
    echo "$pid" >"$dir/pid"

    # QMP answers only once QEMU has created every backend and device, so
    # an answer means the tap and drives were accepted. Waits up to ~15 s.
    local i up=0
    for ((i = 0; i < 100; i++)); do
        if guest_qmp "$dir/qmp.sock" query-status >/dev/null 2>&1; then
            up=1
            break
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if ((!up)); then
        echo "guest_start: QEMU failed to start:" >&2
        cat "$dir/qemu.log" >&2
        guest_stop "$pid"
        return 1
    fi

    GUEST_PID=$pid
    GUEST_UUID=$uuid
    GUEST_DIR=$dir
    GUEST_LOG=$dir/serial.log
    GUEST_QMP=$dir/qmp.sock
}

# guest_three_drives DIR NATIVE_DEV THREADS_ID [DRIVE_OPTS]
# Sets GUEST_DRIVES, guest_start's options for three virtio-blk drives, one
# per AIO mode, all cache=none: DIR/thr.img (aio=threads, device id
# THREADS_ID), DIR/uring.img (aio=io_uring, id uring) and NATIVE_DEV
# (aio=native, id native); vda, vdb and vdc in the guest. DRIVE_OPTS
# (",werror=report"...) ends each -drive.
guest_three_drives() {
    local dir=$1 native=$2 thr_id=$3 opts=${4:-}
    # shellcheck disable=SC2034,SC2054  # for the caller; commas inside QEMU option values
    GUEST_DRIVES=(
        -drive "file=$dir/thr.img,format=raw,if=none,id=d0,cache=none,aio=threads$opts"
        -device "virtio-blk-pci,drive=d0,id=$thr_id"
        -drive "file=$dir/uring.img,format=raw,if=none,id=d1,cache=none,aio=io_uring$opts"
        -device virtio-blk-pci,drive=d1,id=uring
        -drive "file=$native,format=raw,if=none,id=d2,cache=none,aio=native$opts"
        -device virtio-blk-pci,drive=d2,id=native
    )
}

# guest_qmp SOCKET COMMAND [ARGUMENTS_JSON]
# Runs one QMP command and prints its "return" value as JSON; fails if QEMU
# answers with an error. E.g. pause and resume the guest:
#   guest_qmp "$GUEST_QMP" stop; guest_qmp "$GUEST_QMP" cont
# HMP commands: guest_qmp "$GUEST_QMP" human-monitor-command '{"command-line":"info status"}'
guest_qmp() {
    python3 - "$@" <<'EOF'
import json, socket, sys

sock = socket.socket(socket.AF_UNIX)
sock.settimeout(10)
sock.connect(sys.argv[1])
f = sock.makefile("rw")

def call(cmd, args=None):
    msg = {"execute": cmd}
    if args is not None:
        msg["arguments"] = args
    f.write(json.dumps(msg) + "\n")
    f.flush()
    while True:
        line = f.readline()
        if not line:
            sys.exit("guest_qmp: QEMU closed the connection")
        reply = json.loads(line)
        if "error" in reply:
            sys.exit("guest_qmp: %s: %s" % (cmd, reply["error"].get("desc", reply["error"])))
        if "return" in reply:  # anything else is an asynchronous event
            return reply["return"]

f.readline()  # greeting
call("qmp_capabilities")
args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
print(json.dumps(call(sys.argv[2], args)))
EOF
}

# Prints N from the "VMPROBE-WORKLOAD-END rc=N" line of serial log $1; fails
# if there is none yet. -o: the line ends in \r (the console tty turns \n
# into \r\n).
_guest_end_rc() {
    local line
    line=$(grep -a -o -m1 'VMPROBE-WORKLOAD-END rc=[0-9]*' "$1" 2>/dev/null) || return
    echo "${line##*=}"
}

# guest_wait_done LOGFILE TIMEOUT_SECONDS
# Waits for the "VMPROBE-WORKLOAD-END rc=N" marker in a guest's serial log and
# returns N. Returns 124 on timeout and 125 if QEMU exited without the
# marker; both print the log's tail to stderr. Under set -e, call it as
# "rc=0; guest_wait_done ... || rc=$?".
guest_wait_done() {
    local log=$1 timeout=$2 pidfile deadline rc
    pidfile=$(dirname "$log")/pid
    deadline=$((SECONDS + timeout))
    while :; do
        rc=$(_guest_end_rc "$log") && return "$rc"
        if [[ -f $pidfile ]] && ! kill -0 "$(<"$pidfile")" 2>/dev/null; then
            # QEMU exits right after the marker: look once more.
            rc=$(_guest_end_rc "$log") && return "$rc"
            echo "guest_wait_done: QEMU exited without finishing the workload; log tail:" >&2
            tail -n 30 "$log" >&2
            return 125
        fi
        if ((SECONDS >= deadline)); then
            echo "guest_wait_done: no workload end after ${timeout}s; log tail:" >&2
            tail -n 30 "$log" >&2
            return 124
        fi
        sleep 0.2
    done
}

# guest_stop [PID...]
# Stops the given guests (default: every guest started and not yet stopped):
# SIGTERM, SIGKILL after 5 s, then reaps QEMU and removes its run directory
# unless GUEST_KEEP_RUN_DIR=1. Safe as an EXIT trap and after QEMU exited.
guest_stop() {
    local pid i
    (($#)) || set -- "${!_guest_dirs[@]}"
    for pid in "$@"; do
        # Every step may race with QEMU exiting on its own: ignore failures.
        if kill -TERM "$pid" 2>/dev/null; then
            for ((i = 0; i < 50; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
        if [[ -n ${_guest_dirs[$pid]:-} && ${GUEST_KEEP_RUN_DIR:-0} != 1 ]]; then
            rm -rf "${_guest_dirs[$pid]}"
        fi
        unset "_guest_dirs[$pid]"
    done
    return 0
}

# guest_pack_binaries OUT BINARY...
# Writes OUT: a gzipped cpio to append to an initrd, holding each BINARY in
# /usr/bin and every shared library it loads (ldd) at its own path, so that
# host programs (vmprobe itself) run in the guest's busybox world. The host
# and the guest both being Debian 12 amd64, the libraries fit.
guest_pack_binaries() {
    local out=$1 dir b lib rc=0
    shift
    dir=$(mktemp -d) || return
    mkdir -p "$dir/usr/bin"
    for b in "$@"; do
        cp "$b" "$dir/usr/bin/" || rc=1
        while read -r lib; do
            mkdir -p "$dir$(dirname "$lib")" && cp -L "$lib" "$dir$lib" || rc=1
        done < <(ldd "$b" | grep -o '/[^ ]*')
    done
    ((rc == 0)) && (cd "$dir" && find . -mindepth 1 | LC_ALL=C sort |
        cpio -o -H newc --owner=0:0 --quiet) | gzip -1 >"$out" || rc=1
    rm -rf "$dir"
    return "$rc"
}

# Runs COMMAND with the guest paused (QMP stop ... cont): a scrape of the
# "before" counters or frames injected at a moment the guest does nothing.
guest_paused() { # COMMAND...
	local rc
	guest_qmp "$GUEST_QMP" stop >/dev/null
	"$@"; rc=$?
	guest_qmp "$GUEST_QMP" cont >/dev/null
	return $rc
}
