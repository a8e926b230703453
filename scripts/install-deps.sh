#!/bin/bash
# Installs the Debian 12 packages vmprobe needs to build, run, test and
# bench, and only those missing. Safe to run again. With --list first it
# prints them, one a line, and installs nothing (scripts/image-base.sh
# builds the image's build stage from the build list).
set -euo pipefail
list=
if [ "${1:-}" = --list ]; then list=1; shift; fi

build=(make clang llvm gcc pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev
       libmicrohttpd-dev libyaml-dev libjson-c-dev libexpat1-dev libgnutls28-dev libcrypt-dev
       libprotobuf-c-dev protobuf-c-compiler libisal-dev)
test=(libcmocka-dev prometheus qemu-system-x86 busybox-static cpio iproute2
      fio liburing-dev iperf3 libbpf-tools tmux xz-utils curl python3 kmod openssl strace
      podman runc mmdebstrap libcap2-bin unzip groff-base
      qemu-block-extra qemu-utils ceph-mon ceph-osd ceph-common tgt libiscsi-bin nbdkit
      victoria-metrics influxdb
      libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients prometheus-libvirt-exporter
      systemd debhelper dpkg-dev lintian)
# libFuzzer and the sanitizers' runtimes for clang (make fuzz; make test runs a short pass).
fuzz=(libclang-rt-14-dev)

want=("${build[@]}")
case "${1:-build}" in
build) ;;
fuzz) want+=("${fuzz[@]}") ;;
test) want+=("${test[@]}" "${fuzz[@]}") ;;
*) echo "usage: $0 [--list] [build|fuzz|test]" >&2; exit 2 ;;
esac
if [ -n "$list" ]; then printf '%s\n' "${want[@]}"; exit 0; fi

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "missing packages: ${missing[*]}; run as root or install them" >&2
	exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
