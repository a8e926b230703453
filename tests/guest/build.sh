#!/usr/bin/env bash
# Build the kernel and base initramfs that integration tests boot under QEMU.
#
# Usage: tests/guest/build.sh [CACHE_DIR]
#   CACHE_DIR defaults to ${VMPROBE_GUEST_CACHE:-/var/cache/vmprobe-guest}.
#
# Outputs in CACHE_DIR:
#   vmlinuz        Debian 12's current amd64 kernel (bzImage)
#   vmlinux        the same kernel uncompressed (ELF). QEMU boots it through
#                  its PVH entry point, skipping the BIOS and the in-guest xz
#                  decompression: ~3.5 s instead of ~7 s to userspace on TCG.
#   base.cpio.gz   busybox-static + the virtio modules + tests/guest/init
# stdout gets two lines: the kernel to boot (vmlinux) and base.cpio.gz;
# progress goes to stderr.
#
# Needs apt-get, dpkg, cpio, gzip and xz (xz-utils); not root, unless the
# cache directory or an apt-get update requires it.
#
# Idempotent: the packages are fetched only when the cached kernel and root
# tree are missing or incomplete, and the initramfs is repacked only when it is
# missing, corrupt, or older than init or this script. Delete CACHE_DIR to pick
# up a newer kernel.
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self=$here/$(basename "${BASH_SOURCE[0]}")
cache=${1:-${VMPROBE_GUEST_CACHE:-/var/cache/vmprobe-guest}}

# Debian builds these as modules (=m), so the initramfs must carry them:
# the PCI transport for virtio, plus the NIC and disk drivers and their
# dependencies. init loads them in whatever order until all are in.
# tun, sch_ingress (clsact) and cls_bpf let vmprobe itself run in the guest
# (tests/integration/kernel_guest.sh: the oldest supported kernel).
modules=(virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
         failover net_failover virtio_net virtio_blk tun sch_ingress cls_bpf)

log() { echo "build.sh: $*" >&2; }

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
# Tests running in parallel may all call this; let one build and the others
# find its result.
exec 9>"$cache/.lock"
flock 9

rootfs=$cache/rootfs  # busybox, its applet links and the modules
stamp=$cache/fetched  # written last by fetch: names the kernel package used

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# set -e alone would exit silently.
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR

# magic_at OFFSET COUNT FILE: prints COUNT bytes of FILE from OFFSET.
magic_at() {
    dd if="$3" bs=1 skip="$1" count="$2" status=none
}

# A bzImage carries "HdrS" at offset 0x202; vmlinux is an ELF file.
kernel_ok() {
    [[ -s $cache/vmlinuz && -s $cache/vmlinux &&
        $(magic_at 514 4 "$cache/vmlinuz") == HdrS && $(magic_at 1 3 "$cache/vmlinux") == ELF ]]
}

# Debian compresses the bzImage payload with xz: it is the first xz stream
# in the file; --single-stream ignores whatever follows it.
extract_vmlinux() {
    local off
    off=$(LC_ALL=C grep -obUaP -m1 '\xfd7zXZ(?=\x00)' "$1") || { log "no xz payload in $1"; return 1; }
    off=${off%%:*}
    # Through a file, not a pipe: xz stops reading after the stream, and
    # tail's SIGPIPE would fail the pipeline.
    tail -c +$((off + 1)) "$1" >"$work/payload.xz"
    xz -dc --single-stream "$work/payload.xz" >"$2"
}

fetched_ok() {
    local m
    [[ -f $stamp && -x $rootfs/bin/busybox ]] && kernel_ok || return 1
    for m in "${modules[@]}"; do
        [[ -s $rootfs/lib/modules/$m.ko ]] || return 1
    done
}

# linux-image-amd64 is the metapackage tracking the current ABI; its
# dependency names the real image package (e.g. linux-image-6.1.0-56-amd64).
kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

# Resolve and download into the current directory (apt-get download writes to
# cwd). Fails when the apt lists are missing or stale.
download() {
    local kpkg
    kpkg=$(kernel_package)
    [[ -n $kpkg ]] || return 1
    apt-get download "$kpkg" busybox-static >&2 || return 1
    echo "$kpkg"
}

fetch() {
    local tmp=$work/fetch kpkg deb ko m x
    mkdir "$tmp"
    # apt drops to the _apt user for downloads and warns when that user
    # cannot write the target directory.
    if [[ $EUID -eq 0 ]] && id _apt >/dev/null 2>&1; then
        chmod 755 "$work"
        chown _apt "$tmp"
    fi
    if ! kpkg=$(cd "$tmp" && download); then
        log "download failed; refreshing apt lists and retrying"
        apt-get update >&2
        kpkg=$(cd "$tmp" && download)
    fi
    log "using $kpkg and busybox-static"

    x=$tmp/x
    for deb in "$tmp"/*.deb; do
        dpkg -x "$deb" "$x"
    done

    rm -rf "$rootfs" "$stamp"
    mkdir -p "$rootfs/bin" "$rootfs/lib/modules"
    install -m 755 "$x/bin/busybox" "$rootfs/bin/busybox"
    # The applet links are made here, on the host, with the guest's own
    # static busybox, so the initramfs needs no install step at boot.
    # The list includes bin/busybox itself, which must stay the binary.
    local applet
    while read -r applet; do
        [[ $applet == bin/busybox ]] && continue
        mkdir -p "$rootfs/$(dirname "$applet")"
        ln -s /bin/busybox "$rootfs/$applet"
    done < <("$rootfs/bin/busybox" --list-full)

    # Bookworm ships plain .ko files; later kernels ship .ko.xz. Decompress
    # here so the guest's insmod never has to.
    for m in "${modules[@]}"; do
        ko=$(find "$x/lib/modules" \( -name "$m.ko" -o -name "$m.ko.xz" \) -print -quit)
        [[ -n $ko ]] || { log "module $m not found in $kpkg"; return 1; }
        case $ko in
            *.xz) xz -dc "$ko" >"$rootfs/lib/modules/$m.ko" ;;
            *) cp "$ko" "$rootfs/lib/modules/$m.ko" ;;
        esac
    done

    # World-readable: the tests that boot it need not run as root.
    install -m 644 "$x"/boot/vmlinuz-* "$cache/vmlinuz"
    extract_vmlinux "$cache/vmlinuz" "$cache/vmlinux"
    kernel_ok || { log "$kpkg: unexpected kernel image format"; return 1; }
    dpkg-deb -f "$tmp/${kpkg}_"*.deb Package Version >"$stamp"
}

cpio_ok() {
    local out=$cache/base.cpio.gz
    [[ -s $out && $out -nt $here/init && $out -nt $self && $out -nt $stamp ]] &&
        gzip -t "$out" 2>/dev/null
}

pack() {
    local tmp=$work/root
    mkdir "$tmp"
    cp -a "$rootfs/." "$tmp/"
    install -m 755 "$here/init" "$tmp/init"
    # Mount points for init; /dev/console comes from the kernel's built-in
    # initramfs (making a device node here would need root).
    mkdir -p "$tmp/proc" "$tmp/sys" "$tmp/dev" "$tmp/tmp" "$tmp/mnt"
    (cd "$tmp" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
        cpio --null -o -H newc --owner=0:0 --quiet) | gzip -n >"$cache/base.cpio.gz.tmp"
    mv "$cache/base.cpio.gz.tmp" "$cache/base.cpio.gz"
}

if fetched_ok; then
    log "kernel and busybox cached ($(tr '\n' ' ' <"$stamp"))"
else
    fetch
fi
if cpio_ok; then
    log "base initramfs up to date"
else
    log "packing base initramfs"
    pack
fi
echo "$cache/vmlinux"
echo "$cache/base.cpio.gz"
