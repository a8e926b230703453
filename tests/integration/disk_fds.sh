#!/bin/bash
# A drive's fds follow QEMU's fd table: a stand-in VM (tapguest) reads its
# image with pread(2), as aio=threads does, and every read counts for the
# drive, exactly; a read of another file made earlier under the same fd
# number (as the loader reads libraries) does not. Then the image's fd number is reused for another file
# (as a reopen for block-commit, mirror or snapshot may leave it, the
# image open under another number): once a full walk of the fd table has
# seen that, reads through that number no longer count for the drive.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_root "drive fds follow the fd table"

WORK=$(mktemp -d /tmp/vmprobe-diskfds.XXXXXX)
PORT=19588 VM=
cleanup() {
	vmprobe_stop >/dev/null 2>&1
	[ -n "$VM" ] && kill "$VM" 2>/dev/null && wait "$VM" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

QEMU=$(tapguest_dir)
truncate -s 1M "$WORK/d0.img"
vmprobe_start $PORT "network:
  enabled: false" || { tap_fail "vmprobe serve starts" "$(cat "$WORK/vmprobe.log")"; tap_done; exit; }
if ! grep -q "disk sources: threads on" "$WORK/vmprobe.log"; then
	tap_skip "drive fds follow the fd table" "aio=threads is not measured here (see the log)"
	tap_done; exit
fi
export TAPGUEST_READS=8
# Before it opens its image, the VM reads 1000 bytes of another file under
# the number the image then gets: requests vmprobe stages until it finds
# the drive's fd, and must not add to the drive (not its file).
head -c 4096 /dev/urandom >"$WORK/lib.so"
TAPGUEST_PREREAD=$WORK/lib.so "$QEMU" -name guest=fds-vm -drive "file=$WORK/d0.img,format=raw,if=none,id=d0,cache=none,aio=threads" \
	-device virtio-blk-pci,drive=d0,id=disk0 >"$WORK/vm.out" 2>&1 &
VM=$!

reads() { # the drive's read operations now
	scrape && metric "$WORK/metrics.txt" vmprobe_disk_latency_seconds_count name=fds-vm drive=disk0 operation=read
}
counted() { [ -n "$(reads)" ]; }
check "the drive's series appears" wait_for 10 counted
# The series comes from the command line: the stand-in may still be making
# its preread, before it handles SIGUSR2; "ready" says it does.
check "the stand-in VM opened its image and is ready" wait_for 15 grep -q '^ready' "$WORK/vm.out"
before=$(reads)
kill -USR2 "$VM"
check "the stand-in VM read its image" wait_for 5 grep -q "^read 8$" "$WORK/vm.out"
check_num "every pread of the image counts for the drive" $((before + 8)) "$(reads)"
check_num "and its bytes" $((8 * 4096)) \
	"$(metric "$WORK/metrics.txt" vmprobe_disk_request_size_bytes_sum name=fds-vm drive=disk0 operation=read)"
check "the read of another file under the image's fd number was staged and dropped, not added" \
	grep -q "drive disk0 of VM fds-vm: requests on fd $(awk '/^preread fd/ { print $3 }' "$WORK/vm.out") before it was counted were on another file" "$WORK/vmprobe.log"

# The fd number now names /dev/zero, the image is open under another;
# discovery's next walk of the whole fd table (every 8 rescans, 200 ms each
# here) notices.
kill -HUP "$VM"
check "the image's fd number was reused for another file" wait_for 5 grep -q "^reused 1$" "$WORK/vm.out"
check "discovery forgets the fd" wait_for 10 grep -q "is no longer on its image" "$WORK/vmprobe.log"
before=$(reads)
kill -USR2 "$VM"
read_twice() { [ "$(grep -c '^read 8$' "$WORK/vm.out")" -eq 2 ]; }
check "the stand-in VM read through the reused fd number" wait_for 5 read_twice
check_num "reads through the reused fd number no longer count for the drive" "$before" "$(reads)"
check "the drive's series stays (the drive is still the VM's)" counted
tap_done
