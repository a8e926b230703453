# shellcheck shell=bash
# A throw-away single-node Ceph cluster for vmprobe integration tests: one
# monitor, one OSD on memstore (data in the OSD's memory), no manager, no
# authentication (auth none), bound to 127.0.0.1 only. QEMU opens its images
# through librbd like on a real hypervisor.
#
# Source this file from a bash test, then:
#   ceph_require || { tap_skip "..." "$(ceph_require)"; ...; }
#   trap 'guest_stop; ceph_stop' EXIT
#   ceph_start "$WORK/ceph"           # sets and exports CEPH_CONF, sets CEPH_POOL
#   ceph_image_create disk1 16        # 16 MiB image $CEPH_POOL/disk1
#   guest_start NAME TAP INITRD \
#       -drive "file=rbd:$CEPH_POOL/disk1:conf=$CEPH_CONF,format=raw,if=none,id=r0,cache=none" \
#       -device virtio-blk-pci,drive=r0,id=vdisk-rbd
#   rbd du "$CEPH_POOL/disk1"         # the ceph/rbd/rados tools read $CEPH_CONF
#   ceph_stop
#
# Do not call ceph_start in a subshell (e.g. $(...)): the daemons are
# children of the calling shell, started with a parent-death signal
# (SIGKILL), so they die with the shell that started them even if that
# shell is killed without running its traps.
#
# Everything lives under DIR (config, monitor store, logs, admin sockets);
# ceph_stop removes it unless CEPH_KEEP_DIR=1. Daemon logs: DIR/log/.

# -g: the file may be sourced from inside a function.
declare -p _ceph_pids >/dev/null 2>&1 || declare -ga _ceph_pids=()
_ceph_dir=${_ceph_dir:-}

# ceph_require
# Returns 0 if everything ceph_start and a QEMU rbd drive need is installed;
# otherwise prints a one-line reason on stdout and returns 1. Installs
# nothing (scripts/install-deps.sh test does).
ceph_require() {
    local c
    for c in ceph-mon ceph-osd monmaptool ceph rbd rados setpriv python3 qemu-system-x86_64; do
        if ! command -v "$c" >/dev/null 2>&1; then
            echo "$c is not installed (Debian: ceph-mon ceph-osd ceph-common qemu-block-extra)"
            return 1
        fi
    done
    if ! compgen -G '/usr/lib/*/qemu/block-rbd.so' >/dev/null; then
        echo "QEMU's rbd driver block-rbd.so is not installed (Debian: qemu-block-extra)"
        return 1
    fi
    return 0
}

# A TCP port on 127.0.0.1 nobody listens on right now.
_ceph_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# _ceph_wait SECONDS COMMAND...: retries COMMAND every 0.2 s until it succeeds.
_ceph_wait() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# _ceph_daemon NAME COMMAND...: starts a daemon in the foreground as a child
# of this shell, killed when this shell dies.
_ceph_daemon() {
    local name=$1
    shift
    setpriv --pdeathsig KILL "$@" </dev/null >"$_ceph_dir/log/$name.out" 2>&1 &
    _ceph_pids+=($!)
    echo "$!" >>"$_ceph_dir/pids"
}

_ceph_fail() {
    echo "ceph_start: $1" >&2
    local f
    for f in "$_ceph_dir"/log/*; do
        [[ -s $f ]] || continue
        echo "--- $f" >&2
        tail -n 15 "$f" >&2
    done
    ceph_stop
    return 1
}

# ceph_start DIR [POOL]
# Creates DIR and starts a one-monitor, one-OSD cluster in it, with pool
# POOL (default "vmprobe": size 1, 8 PGs, application rbd). Returns once a
# client can write to the pool (about 3-4 s). Exports CEPH_CONF
# (DIR/ceph.conf, also what QEMU's "conf=" wants); sets CEPH_POOL, CEPH_DIR
# and CEPH_MON_ADDR (127.0.0.1:PORT). Called again while its cluster runs,
# it does nothing. Fails (after printing the daemons' log tails and cleaning
# up) if the cluster does not come up within ~60 s.
# shellcheck disable=SC2034  # the CEPH_* globals are for the caller
ceph_start() {
    local dir=$1 pool=${2:-vmprobe}
    if [[ -n $_ceph_dir && $_ceph_dir == "$dir" ]] && ((${#_ceph_pids[@]})) &&
        kill -0 "${_ceph_pids[@]}" 2>/dev/null; then
        return 0
    fi
    if [[ -n $_ceph_dir ]]; then
        ceph_stop
    fi
    mkdir -p "$dir" || return
    dir=$(cd "$dir" && pwd) || return
    if [[ -n $(ls -A "$dir") ]]; then
        # Left behind by an earlier run (CEPH_KEEP_DIR=1, or a killed
        # test): reuse the directory once no daemon of it runs any more.
        if [[ -f $dir/ceph.conf && -f $dir/pids && -z $(_ceph_live_pids "$dir") ]]; then
            rm -rf "${dir:?}"/*
        else
            echo "ceph_start: $dir is not empty, or its cluster still runs" >&2
            return 1
        fi
    fi
    _ceph_dir=$dir
    mkdir -p "$dir/mon" "$dir/osd" "$dir/run" "$dir/log" || return

    local fsid port osd_uuid osd_id try
    fsid=$(cat /proc/sys/kernel/random/uuid)
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    # The OSD picks the first free port of ms_bind_port_min..max itself; the
    # monitor's port is in the monmap, so pick a free one, and retry with
    # another if someone else takes it between the check and the bind.
    for try in 1 2 3; do
        port=$(_ceph_free_port) || return
        _ceph_write_conf "$dir" "$fsid" "$port" || return
        rm -rf "$dir/mon/a" "$dir/monmap"
        if ! monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$dir/monmap" \
            >"$dir/log/monmaptool.out" 2>&1 ||
            ! ceph-mon -c "$dir/ceph.conf" --mkfs -i a --monmap "$dir/monmap" \
                >"$dir/log/mon-mkfs.out" 2>&1; then
            _ceph_fail "monitor mkfs failed"
            return 1
        fi
        _ceph_daemon mon.a ceph-mon -c "$dir/ceph.conf" -i a -f
        if _ceph_wait 20 _ceph_cli mon stat; then
            break
        fi
        if ((try == 3)) || kill -0 "${_ceph_pids[-1]}" 2>/dev/null; then
            _ceph_fail "monitor does not answer on 127.0.0.1:$port"
            return 1
        fi
        wait "${_ceph_pids[-1]}" 2>/dev/null || true
        unset '_ceph_pids[-1]'
    done
    export CEPH_CONF=$dir/ceph.conf
    CEPH_DIR=$dir
    CEPH_MON_ADDR=127.0.0.1:$port

    osd_id=$(_ceph_cli osd new "$osd_uuid") || { _ceph_fail "ceph osd new failed"; return 1; }
    mkdir -p "$dir/osd/ceph-$osd_id"
    ceph-osd -c "$CEPH_CONF" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" \
        >"$dir/log/osd-mkfs.out" 2>&1 || { _ceph_fail "OSD mkfs failed"; return 1; }
    _ceph_daemon "osd.$osd_id" ceph-osd -c "$CEPH_CONF" -i "$osd_id" -f
    _ceph_wait 30 _ceph_osd_up || { _ceph_fail "OSD $osd_id does not come up"; return 1; }

    if ! _ceph_cli osd pool create "$pool" 8 8 >>"$dir/log/cli.out" 2>&1 ||
        ! _ceph_cli osd pool application enable "$pool" rbd >>"$dir/log/cli.out" 2>&1; then
        _ceph_fail "creating pool $pool failed"
        return 1
    fi
    CEPH_POOL=$pool
    # Usable = a client write to the pool completes (its PGs are active).
    if ! timeout 60 rados -c "$CEPH_CONF" -p "$pool" put ceph_start.probe - </dev/null >/dev/null 2>&1 ||
        ! timeout 20 rados -c "$CEPH_CONF" -p "$pool" rm ceph_start.probe >/dev/null 2>&1; then
        _ceph_fail "pool $pool does not take writes"
        return 1
    fi
}

# ceph and rados with a timeout: the tools otherwise wait forever for an
# unreachable monitor.
_ceph_cli() {
    timeout 20 ceph -c "$_ceph_dir/ceph.conf" --connect-timeout 15 "$@"
}

_ceph_osd_up() {
    [[ $(_ceph_cli osd stat -f json 2>/dev/null) =~ \"num_up_osds\":[[:space:]]*1[,}] ]]
}

_ceph_write_conf() { # DIR FSID PORT
    local dir=$1
    cat >"$dir/ceph.conf" <<EOF
[global]
fsid = $2
mon host = v2:127.0.0.1:$3
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
# OSD ports: the first free one of this range.
ms bind port min = 6800
ms bind port max = 7300
auth cluster required = none
auth service required = none
auth client required = none
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
run dir = $dir/run
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
# No manager daemon: without this, health turns to "no active mgr"
# (HEALTH_WARN, later HEALTH_ERR) 120 s after the cluster's creation.
mon mgr mkfs grace = 31536000
mon data avail crit = 1
# Commit map changes at once, not batched for 1 s: each OSD boot step and
# pool creation waits for one.
paxos propose interval = 0.05
mon data avail warn = 2
# Clients (QEMU, rbd): fail rather than hang for ever if the cluster is gone.
rados osd op timeout = 60
rados mon op timeout = 60
client mount timeout = 30

[mon]
mon data = $dir/mon/\$name
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
mon cluster log file = $dir/log/cluster.log

[osd]
osd data = $dir/osd/\$cluster-\$id
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
osd objectstore = memstore
memstore device bytes = 4294967296
osd op num shards = 1
osd op num threads per shard = 2
EOF
}

# ceph_image_create NAME SIZE_MB
# Creates RBD image CEPH_POOL/NAME of SIZE_MB MiB (format 2, default
# features: layering, exclusive-lock, object-map, fast-diff, deep-flatten).
ceph_image_create() {
    local name=$1 size=$2
    if [[ -z ${CEPH_POOL:-} || -z ${CEPH_CONF:-} ]]; then
        echo "ceph_image_create: call ceph_start first" >&2
        return 1
    fi
    timeout 60 rbd -c "$CEPH_CONF" create --size "$size" "$CEPH_POOL/$name"
}

# ceph_stop
# Stops every daemon ceph_start started, the OSD before the monitor (an OSD
# whose monitor is gone waits 5 s to exit): SIGTERM, SIGKILL after 5 s.
# Reaps them and removes DIR unless CEPH_KEEP_DIR=1. Safe as an EXIT trap,
# when nothing was started and when called twice.
ceph_stop() {
    local pid i
    local -a pids=()
    [[ -n $_ceph_dir ]] && mapfile -t pids < <(_ceph_live_pids "$_ceph_dir")
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[i]}
        kill -TERM "$pid" 2>/dev/null || continue
        _ceph_wait 5 _ceph_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
    done
    # Reap our children, also those that had exited already.
    for pid in "${pids[@]}" "${_ceph_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    _ceph_pids=()
    if [[ -n $_ceph_dir && ${CEPH_KEEP_DIR:-0} != 1 ]]; then
        rm -rf "$_ceph_dir"
    fi
    _ceph_dir=
    return 0
}

_ceph_gone() { ! kill -0 "$1" 2>/dev/null; }

# _ceph_live_pids DIR: the daemons recorded in DIR/pids, in start order,
# that still run with DIR's config (a PID may have been reused since).
# Also finds them when this file was sourced anew, or by another shell.
_ceph_live_pids() {
    local pid cmd
    [[ -f $1/pids ]] || return 0
    while read -r pid; do
        cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
        [[ $cmd == *" $1/ceph.conf "* ]] && echo "$pid"
    done <"$1/pids"
    return 0
}
