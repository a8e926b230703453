#!/bin/bash
# make install puts every file where the README says, the unit's paths
# follow PREFIX and SYSCONFDIR, an existing configuration is kept, and
# make uninstall removes all but the configuration. Into a DESTDIR: no
# root needed, nothing of the host touched.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"

DEST=$(mktemp -d /tmp/vmprobe-install.XXXXXX)
trap 'rm -rf "$DEST"' EXIT
inst() { make -C "$REPO" --no-print-directory "$@" DESTDIR="$DEST" PREFIX=/opt/vmp SYSCONFDIR=/etc/vmp; }

check "make install into a DESTDIR" inst install
files=$(cd "$DEST" && find . -type f | sort | paste -sd' ')
check_eq "it installs the binary, man page, completion, unit, sysusers entry and config" \
	"./etc/vmp/vmprobe/vmprobe.yaml ./opt/vmp/lib/systemd/system/vmprobe.service ./opt/vmp/lib/sysusers.d/vmprobe.conf ./opt/vmp/sbin/vmprobe ./opt/vmp/share/bash-completion/completions/vmprobe ./opt/vmp/share/man/man8/vmprobe.8" \
	"$files"
check_eq "the unit runs the installed binary with the installed config" \
	"/opt/vmp/sbin/vmprobe serve --persist -c /etc/vmp/vmprobe/vmprobe.yaml" \
	"$(sed -n 's/^ExecStart=//p' "$DEST/opt/vmp/lib/systemd/system/vmprobe.service")"
check_eq "the unit has no placeholder left" "" "$(grep -o '@[A-Z]*@' "$DEST/opt/vmp/lib/systemd/system/vmprobe.service")"
check "the installed config is valid" "$DEST/opt/vmp/sbin/vmprobe" config check "$DEST/etc/vmp/vmprobe/vmprobe.yaml"
check "the man page is the build's version" grep -q "vmprobe $(cat "$REPO/VERSION")" "$DEST/opt/vmp/share/man/man8/vmprobe.8"

echo 'listen: "127.0.0.1:1"' >"$DEST/etc/vmp/vmprobe/vmprobe.yaml"
check "make install again" inst install
check_eq "an existing config is kept" 'listen: "127.0.0.1:1"' "$(cat "$DEST/etc/vmp/vmprobe/vmprobe.yaml")"

check "make uninstall" inst uninstall
check_eq "make uninstall leaves only the config" "./etc/vmp/vmprobe/vmprobe.yaml" \
	"$(cd "$DEST" && find . -type f | sort | paste -sd' ')"
tap_done
