#!/bin/bash
# /metrics of 1,000 synthetic VMs through the server `vmprobe serve` runs,
# in every format, plain and gzip (bench/scale.c at 1,000 VMs: maps filled
# directly, no QEMU): each body holds every VM, and each gzip body decodes
# (zlib checks its CRC and length) to the series its plain fetch holds.
# Text this large is deflated while it is rendered, in 2 MiB segments
# (core/gzip.c): the unit test checks the bytes, this the server's path.
# The bench's timings are printed, never judged here (make bench does).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"

tap_require_root "scrapes of 1,000 synthetic VMs"
SCALE=${SCALE:-$REPO/build/bench/scale}
if [ ! -x "$SCALE" ]; then
	tap_fail "build/bench/scale is built (make test builds it)"
	tap_done
	exit
fi
WORK=$(mktemp -d /tmp/vmprobe-scrape-scale.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

"$SCALE" 1000 >"$WORK/out" 2>"$WORK/err"
rc=$?
check_eq "1,000 VMs in every format: every body holds every VM, gzip the plain fetch's series" \
	0 "$rc"
[ "$rc" = 0 ] || sed 's/^/# /' "$WORK/err" | tail -5
bench() { awk -v n="$1" '$1 == "BENCH" && $2 == n { print $3 }' "$WORK/out"; }
text=$(bench scale_bytes_text_1000vms)
zipped=$(bench scale_bytes_text_gzip_1000vms)
check "the text body is long enough to be deflated in four segments or more ($text bytes)" \
	test "${text:-0}" -ge $((4 * 2 * 1024 * 1024))
check "its gzip is under a tenth of it ($zipped bytes)" \
	test "${zipped:-0}" -gt 0 -a "$((${zipped:-0} * 10))" -lt "${text:-0}"
check "nothing pinned is left behind" test ! -e /sys/fs/bpf/vmprobe/net
tap_done
