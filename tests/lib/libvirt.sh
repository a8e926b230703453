# shellcheck shell=bash
# A private libvirtd for vmprobe integration tests: libvirt-managed QEMU
# (TCG) guests whose drives and NICs are hot-plugged with virsh.
#
#   . tests/lib/guest.sh; . tests/lib/libvirt.sh
#   libvirt_require || { tap_skip "..." "$(libvirt_require 2>&1)"; ...; }
#   guest_build; guest_make_initrd "$tmp/initrd" workload.sh
#   trap libvirt_stop EXIT
#   libvirt_start "$tmp/lv"                        # sets VIRSH, LV_URI, LV_DIR
#   libvirt_define_guest vm1 vpt0 "$GUEST_KERNEL" "$tmp/initrd"
#   $VIRSH attach-disk vm1 "$img" vdb --live --targetbus virtio \
#       --driver qemu --subdriver raw --cache none
#   $VIRSH attach-device vm1 nic.xml --live        # see libvirt_nic_xml
#   guest_wait_done "$LV_LOG" 60                   # guest.sh works on LV_LOG
#   libvirt_stop
#
# Isolation: libvirtd (Debian 12: the monolithic libvirtd 9.0; there is no
# virtqemud) runs as root - the privileged qemu:///system driver - in a
# private mount namespace (unshare -m) where DIR/{etc,run,lib,log} and the
# capabilities cache are bind-mounted over /etc/libvirt, /run/libvirt,
# /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt. Its QEMU
# processes inherit that namespace (libvirt then gives each QEMU its own
# mount namespace with a private /dev), so - as under KubeVirt's
# virt-launcher - the live domain XML is /run/libvirt/qemu/NAME.xml only as
# seen through /proc/QEMU_PID/root; from the host it is also
# DIR/run/qemu/NAME.xml. With LIBVIRT_PIDNS=1 libvirtd (and so its QEMU)
# also runs in a pid namespace of its own, as in a virt-launcher pod (its
# init a shell that reaps, as virt-launcher-monitor is there): the pid in
# the status XML is QEMU's pid in that namespace, LV_PID QEMU's pid on the
# host. A system libvirtd, if any, is untouched. Host
# changes: empty mount points /run/libvirt, /var/lib/libvirt,
# /var/log/libvirt, /var/cache/libvirt are created if missing and left
# (another instance may be using them); the capabilities cache stays.
#
# Guest side: hot-plugged virtio disks are named by the guest kernel in
# probe order (vda, vdb, ...), not by libvirt's <target dev>; with no disk
# at boot the first hot-plugged disk is the guest's vda. Hot-plugged NICs
# are eth1, eth2, ... (ACPI PCI hotplug on the i440fx machine).
#
# Do not call libvirt_start in a subshell ($(...)): libvirtd must be a child
# of the test's shell so libvirt_stop can reap it. If the test is killed
# without running libvirt_stop, libvirtd dies with its process group but
# its QEMU processes (daemonized) keep running, unless they are in
# libvirtd's pid namespace (LIBVIRT_PIDNS=1), which dies with it.

# libvirtd's own state (one instance per sourcing shell). LV_DAEMON_PID is
# libvirtd's pid on the host; LV_WAIT_PID the shell's child that ends with it
# (libvirtd, or with LIBVIRT_PIDNS=1 the unshare that forked it).
LV_DIR=${LV_DIR:-}
LV_DAEMON_PID=${LV_DAEMON_PID:-}
LV_WAIT_PID=${LV_WAIT_PID:-}
LV_PIDNS=${LV_PIDNS:-0}

_lv_qemu_driver=/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so

# libvirt_require
# Returns 0 if a private libvirtd can run here; otherwise prints one line
# saying why to stderr and returns 1. Debian 12 packages (with
# --no-install-recommends): libvirt-daemon libvirt-clients (which pull
# libvirt-daemon-driver-qemu and libvirt0), plus qemu-system-x86.
libvirt_require() {
    local why=
    if [[ $(id -u) != 0 ]]; then
        why="needs root"
    elif [[ ! -x /usr/sbin/libvirtd ]]; then
        why="libvirtd is not installed (Debian: libvirt-daemon)"
    elif ! command -v virsh >/dev/null; then
        why="virsh is not installed (Debian: libvirt-clients)"
    elif [[ ! -e $_lv_qemu_driver ]]; then
        why="libvirt's QEMU driver is not installed (Debian: libvirt-daemon-driver-qemu)"
    elif ! command -v qemu-system-x86_64 >/dev/null; then
        why="qemu-system-x86_64 is not installed (Debian: qemu-system-x86)"
    elif ! command -v unshare >/dev/null; then
        why="unshare is not installed (Debian: util-linux)"
    elif ! unshare -m true 2>/dev/null; then
        why="cannot create a mount namespace (unshare -m)"
    elif [[ ${LIBVIRT_PIDNS:-0} == 1 ]] && ! unshare -m -p -f --mount-proc true 2>/dev/null; then
        why="cannot create a pid namespace (unshare -p -f --mount-proc)"
    fi
    if [[ -n $why ]]; then
        echo "libvirt: $why" >&2
        return 1
    fi
}

# _lv_with_entry FILE NAME LINE: prints FILE, plus LINE if NAME is not in it.
_lv_with_entry() {
    cat "$1"
    grep -q "^$2:" "$1" || echo "$3"
}

# libvirt_start DIR
# Creates DIR (absolute, short: sockets live under it), writes libvirtd.conf
# and qemu.conf there and starts libvirtd in the background. Returns once
# virsh can talk to it: ~4.5 s the first time (libvirtd probes QEMU's
# capabilities), ~0.3-0.7 s later: the probe is cached in
# LIBVIRT_CAPS_CACHE (default /var/cache/vmprobe-libvirt).
# Sets:
#   LV_DIR         DIR
#   LV_URI         qemu:///system?socket=DIR/run/libvirt-sock
#   VIRSH          DIR/virsh: a wrapper running virsh -c "$LV_URI" "$@"
#                  (call it unquoted: $VIRSH list)
#   LV_DAEMON_PID  libvirtd's PID (on the host); its log is DIR/libvirtd.log
# qemu.conf: QEMU runs as root:root, no dynamic ownership, no security
# driver, no cgroups (none are needed, and a host without systemd has no
# machined), QEMU's stderr to DIR/log/qemu/NAME.log (stdio_handler=file,
# so no virtlogd). libvirt's per-QEMU mount namespace (namespaces=["mount"],
# private /dev) stays on, as in a default install.
libvirt_start() {
    local dir=$1 d i
    if [[ -n $LV_DAEMON_PID ]]; then
        echo "libvirt_start: libvirtd already started ($LV_DIR)" >&2
        return 1
    fi
    [[ $dir == /* ]] || dir=$PWD/$dir
    mkdir -p "$dir"/{etc,run,lib,log,ns} || return
    dir=$(cd "$dir" && pwd -P)
    local caps=${LIBVIRT_CAPS_CACHE:-/var/cache/vmprobe-libvirt}
    mkdir -p "$caps" || return

    cat >"$dir/etc/libvirtd.conf" <<EOF
unix_sock_group = "root"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
unix_sock_admin_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:stderr"
EOF
    cat >"$dir/etc/qemu.conf" <<EOF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
EOF
    # libvirt's QEMU driver refuses to start unless the user and group it
    # was built with (libvirt-qemu, made by libvirt-daemon-system's
    # postinst) exist, even when qemu.conf says root. If they are missing,
    # libvirtd sees /etc/passwd and /etc/group with them added (in its
    # mount namespace only).
    local users=0
    if ! getent passwd libvirt-qemu >/dev/null || ! getent group libvirt-qemu >/dev/null; then
        _lv_with_entry /etc/passwd libvirt-qemu \
            'libvirt-qemu:x:64055:64055:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin' >"$dir/ns/passwd"
        _lv_with_entry /etc/group libvirt-qemu 'libvirt-qemu:x:64055:' >"$dir/ns/group"
        users=1
    fi
    for d in /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt /etc/libvirt; do
        mkdir -p "$d" || return
    done

    # unshare execs sh, sh execs libvirtd: $! is libvirtd. With a pid
    # namespace unshare forks the namespace's init (which mounts its /proc):
    # sh, which starts libvirtd and reaps what libvirtd leaves it (its
    # QEMUs, daemonized), as virt-launcher-monitor does in a pod; $! is
    # unshare, which takes the namespace with it if killed.
    LV_PIDNS=${LIBVIRT_PIDNS:-0}
    local ns=(--mount --propagation private)
    [[ $LV_PIDNS == 1 ]] && ns+=(--pid --fork --mount-proc --kill-child)
    # shellcheck disable=SC2016  # $1.. expand in the inner shell
    unshare "${ns[@]}" -- /bin/sh -c '
        d=$1 caps=$2
        if [ "$3" = 1 ]; then
            mount --bind "$d/ns/passwd" /etc/passwd && mount --bind "$d/ns/group" /etc/group || exit 1
        fi
        mount --bind "$d/etc" /etc/libvirt && mount --bind "$d/run" /run/libvirt &&
            mount --bind "$d/lib" /var/lib/libvirt && mount --bind "$d/log" /var/log/libvirt &&
            mount --bind "$caps" /var/cache/libvirt || exit 1
        [ "$4" = 1 ] || exec /usr/sbin/libvirtd --pid-file "$d/libvirtd.pid"
        /usr/sbin/libvirtd --pid-file "$d/libvirtd.pid" &
        lv=$!
        trap "kill -TERM $lv" TERM INT
        while kill -0 $lv 2>/dev/null; do wait; done' \
        sh "$dir" "$caps" "$users" "$LV_PIDNS" </dev/null >"$dir/libvirtd.log" 2>&1 &
    LV_WAIT_PID=$! LV_DAEMON_PID=$!
    LV_DIR=$dir
    LV_URI="qemu:///system?socket=$dir/run/libvirt-sock"
    printf '#!/bin/bash\nexec virsh -c %q "$@"\n' "$LV_URI" >"$dir/virsh"
    chmod 755 "$dir/virsh"
    VIRSH=$dir/virsh
    if [[ $LV_PIDNS == 1 ]] && ! LV_DAEMON_PID=$(_lv_child "$(_lv_child "$LV_WAIT_PID" sh)" libvirtd); then
        echo "libvirt_start: no libvirtd in its pid namespace; its log:" >&2
        tail -n 20 "$dir/libvirtd.log" >&2
        LV_DAEMON_PID=
        libvirt_stop
        return 1
    fi

    for ((i = 0; i < 300; i++)); do
        if [[ -S $dir/run/libvirt-sock ]] && "$VIRSH" version >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$LV_WAIT_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "libvirt_start: libvirtd did not come up; its log:" >&2
    tail -n 20 "$dir/libvirtd.log" >&2
    libvirt_stop
    return 1
}

# For TAP suites (tests/lib/tap.sh): libvirt_start DIR and
# libvirt_define_guest ARGS..., each reported as a check; the suite ends at
# the first that fails, with its log's tail. Not in a subshell either.
libvirt_start_or_fail() { # DIR
    if libvirt_start "$1" >"$1.start.log" 2>&1; then
        tap_ok "a private libvirtd runs"
        return
    fi
    tap_fail "a private libvirtd runs" "$(tail -5 "$1.start.log")"
    tap_done; exit
}
libvirt_define_guest_or_fail() { # as libvirt_define_guest; its log is $LV_DIR/define-NAME.log
    local log=$LV_DIR/define-$1.log
    if libvirt_define_guest "$@" >"$log" 2>&1; then
        tap_ok "libvirt runs the domain (type qemu, TCG)"
        return
    fi
    tap_fail "libvirt runs the domain" "$(tail -5 "$log")"
    tap_done; exit
}

# XML text escaping (names and paths are test input).
_lv_xml() {
    local s=$1
    # Quoted replacements: bash 5.2 (patsub_replacement) reads a bare & as
    # the matched text.
    s=${s//&/"&amp;"}; s=${s//</"&lt;"}; s=${s//>/"&gt;"}; s=${s//\'/"&apos;"}; s=${s//\"/"&quot;"}
    printf '%s' "$s"
}

# libvirt_define_guest NAME TAP KERNEL INITRD [DEVICES_XML]
# Starts a transient domain (virsh create) NAME of type 'qemu' (TCG, CPU
# mode 'maximum', machine pc = i440fx with ACPI PCI hotplug) booting
# KERNEL/INITRD directly, with the serial console in a file (libvirt opens
# it and passes QEMU the fd), no USB/balloon/graphics, ACPI on (without it
# the guest's poweroff only halts), on_poweroff/on_crash/on_reboot destroy
# (the transient domain, its XML and QEMU are gone once the workload ends),
# and one virtio NIC on the existing tap TAP (<interface type='ethernet'>
# <target dev='TAP' managed='no'/>: libvirt opens the tap and passes QEMU
# an fd). TAP "" makes libvirt create its own tap (vnetN).
# DEVICES_XML is appended inside <devices>.
# Same environment inputs as guest_start: GUEST_IP (default 10.77.0.2/24),
# GUEST_MAC, GUEST_MEM (MiB, 256), GUEST_APPEND.
# Sets LV_DOM (NAME), LV_PID (QEMU's PID), LV_LOG (serial log; its
# directory's "pid" file holds LV_PID, so guest_wait_done notices when
# QEMU exits), LV_XML (live domain XML as seen from the host:
# LV_DIR/run/qemu/NAME.xml; /proc/LV_PID/root/run/libvirt/qemu/NAME.xml is
# the same file).
# shellcheck disable=SC2034  # the LV_* globals are for the caller
libvirt_define_guest() {
    local name=$1 tap=$2 kernel=$3 initrd=$4 extra=${5:-}
    if [[ -z $LV_DAEMON_PID ]]; then
        echo "libvirt_define_guest: call libvirt_start first" >&2
        return 1
    fi
    local dir uuid hex mac iface i pid
    dir=$(mktemp -d "$LV_DIR/dom.XXXXXX") || return
    uuid=$(cat /proc/sys/kernel/random/uuid)
    hex=${uuid//-/}
    mac=${GUEST_MAC:-52:54:00:${hex:0:2}:${hex:2:2}:${hex:4:2}}
    if [[ -n $tap ]]; then
        iface="<target dev='$(_lv_xml "$tap")' managed='no'/>"
    else
        iface=""
    fi
    cat >"$dir/domain.xml" <<EOF
<domain type='qemu'>
  <name>$(_lv_xml "$name")</name>
  <uuid>$uuid</uuid>
  <memory unit='MiB'>${GUEST_MEM:-256}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$(_lv_xml "$kernel")</kernel>
    <initrd>$(_lv_xml "$initrd")</initrd>
    <cmdline>$(_lv_xml "console=ttyS0 quiet panic=-1 vmprobe.ip=${GUEST_IP-10.77.0.2/24} ${GUEST_APPEND:-}")</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='maximum' check='none'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    <serial type='file'>
      <source path='$(_lv_xml "$dir/serial.log")'/>
      <target port='0'/>
    </serial>
    <interface type='ethernet'>
      <mac address='$mac'/>
      $iface
      <model type='virtio'/>
    </interface>
$extra
  </devices>
</domain>
EOF
    if ! "$VIRSH" create "$dir/domain.xml" >"$dir/create.log" 2>&1; then
        echo "libvirt_define_guest: virsh create failed:" >&2
        cat "$dir/create.log" >&2
        tail -n 5 "$LV_DIR/log/qemu/$name.log" 2>/dev/null >&2
        return 1
    fi
    # QEMU's pid from <domstatus ... pid='N'> (NAME.xml has the raw name;
    # libvirt 9.0 XML-escapes it in NAME.pid: "a <b>" -> "a &lt;b&gt;.pid").
    for ((i = 0; i < 50; i++)); do
        pid=$(grep -o -m1 "^<domstatus [^>]* pid='[0-9]*'" "$LV_DIR/run/qemu/$name.xml" 2>/dev/null)
        pid=${pid##*pid=\'}
        pid=${pid%\'}
        [[ -n $pid ]] && break
        sleep 0.1
    done
    if [[ -z ${pid:-} ]]; then
        echo "libvirt_define_guest: no QEMU pid for $name" >&2
        return 1
    fi
    if [[ $LV_PIDNS == 1 ]]; then
        local nspid=$pid
        if ! pid=$(_lv_host_pid "$nspid"); then
            echo "libvirt_define_guest: QEMU's pid $nspid in libvirtd's namespace is no process" >&2
            return 1
        fi
    fi
    echo "$pid" >"$dir/pid"
    LV_DOM=$name
    LV_PID=$pid
    LV_LOG=$dir/serial.log
    LV_XML=$LV_DIR/run/qemu/$name.xml
}

# _lv_child PID COMM: prints the pid of PID's child named COMM, waiting up
# to 10 s for it (sh runs mount before it starts libvirtd).
_lv_child() {
    local c i cs comm
    for ((i = 0; i < 200; i++)); do
        # The file has no newline: read fails but fills cs.
        read -r -a cs <"/proc/$1/task/$1/children" 2>/dev/null
        for c in "${cs[@]}"; do
            read -r comm <"/proc/$c/comm" 2>/dev/null || continue
            [[ $comm == "$2" ]] && { echo "$c"; return 0; }
        done
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# _lv_host_pid NSPID: prints the host pid of the process whose pid in
# libvirtd's pid namespace is NSPID (the last field of NSpid in status).
_lv_host_pid() {
    local s p k v
    for s in /proc/[0-9]*/status; do
        p=${s#/proc/}
        p=${p%/status}
        [[ /proc/$p/ns/pid -ef /proc/$LV_DAEMON_PID/ns/pid ]] || continue
        while read -r k v; do
            [[ $k == NSpid: ]] || continue
            [[ ${v##*[[:space:]]} == "$1" ]] && { echo "$p"; return 0; }
            break
        done <"$s" 2>/dev/null
    done
    return 1
}

# libvirt_nic_xml TAP [MAC]
# Prints an <interface> for virsh attach-device/detach-device: virtio on the
# existing tap TAP (managed='no'; libvirt opens it and hands QEMU the fd with
# getfd). TAP "" lets libvirt create vnetN. (virsh 9.0 attach-interface has
# no "ethernet" type; "attach-interface DOM bridge BR --model virtio --live"
# works and makes vnetN on bridge BR.) detach-device needs the same MAC.
libvirt_nic_xml() {
    local tap=$1 mac=${2:-}
    echo "<interface type='ethernet'>"
    [[ -n $mac ]] && echo "  <mac address='$(_lv_xml "$mac")'/>"
    [[ -n $tap ]] && echo "  <target dev='$(_lv_xml "$tap")' managed='no'/>"
    echo "  <model type='virtio'/>"
    echo "</interface>"
}

# libvirt_stop
# Destroys every domain of this libvirtd, kills any QEMU it left, stops
# libvirtd (SIGTERM, SIGKILL after 10 s), reaps it and removes LV_DIR
# (kept with LIBVIRT_KEEP_DIR=1). Safe as an EXIT trap, and when
# libvirt_start failed or was never called.
libvirt_stop() {
    local dom pid f i
    [[ -n $LV_DIR ]] || return 0
    if [[ -n $LV_DAEMON_PID ]] && kill -0 "$LV_DAEMON_PID" 2>/dev/null; then
        while read -r dom; do
            # destroy: SIGTERM, then SIGKILL after 10 s if QEMU is stuck
            # (e.g. in a blocking rbd connect).
            [[ -n $dom ]] && timeout 20 "$VIRSH" destroy "$dom" >/dev/null 2>&1
        done < <(timeout 10 "$VIRSH" list --name 2>/dev/null)
    fi
    # QEMU processes outlive libvirtd: kill those it still knows of. In a
    # pid namespace its pid files name pids there, and its QEMUs die with
    # libvirtd, the namespace's init.
    local files=("$LV_DIR"/dom.*/pid)
    [[ $LV_PIDNS == 1 ]] || files+=("$LV_DIR"/run/qemu/*.pid)
    for f in "${files[@]}"; do
        [[ -f $f ]] || continue
        pid=$(<"$f")
        [[ $pid =~ ^[0-9]+$ ]] || continue
        # Only a QEMU: a stale pid file may name a recycled pid.
        [[ $(cat "/proc/$pid/comm" 2>/dev/null) == qemu-system-* ]] || continue
        kill -KILL "$pid" 2>/dev/null
    done
    # LV_WAIT_PID is this shell's child: its pid is not reused before the
    # wait. Killing unshare (pid namespace) kills the namespace's init.
    if [[ -n $LV_WAIT_PID ]] && kill -0 "$LV_WAIT_PID" 2>/dev/null; then
        [[ -n $LV_DAEMON_PID ]] && kill -TERM "$LV_DAEMON_PID" 2>/dev/null
        for ((i = 0; i < 100; i++)); do
            kill -0 "$LV_WAIT_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$LV_WAIT_PID" 2>/dev/null
    fi
    [[ -n $LV_WAIT_PID ]] && wait "$LV_WAIT_PID" 2>/dev/null
    [[ ${LIBVIRT_KEEP_DIR:-0} == 1 ]] || rm -rf "$LV_DIR"
    LV_DIR='' LV_DAEMON_PID='' LV_WAIT_PID='' LV_PIDNS=0 VIRSH='' LV_URI=''
    return 0
}
