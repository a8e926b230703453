#!/bin/bash
# make deb builds a Debian package that lintian passes, that installs
# what make install does where Debian wants it (the config a conffile,
# the vmprobe user made, the unit neither enabled nor started), whose
# vmprobe runs, and that dpkg -r and dpkg -P remove cleanly: -r keeps the
# configuration and removes what a persistent serve left, -P takes the
# configuration too.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"

tap_require_root "the Debian package installs and removes cleanly"
for tool in dpkg-buildpackage dh lintian git; do
	if ! command -v $tool >/dev/null; then
		tap_skip "the Debian package installs and removes cleanly" "needs $tool (make test-deps)"
		tap_done; exit
	fi
done
if dpkg-query -W -f='${Status}' vmprobe 2>/dev/null | grep -q installed || [ -e /etc/vmprobe ]; then
	tap_skip "the Debian package installs and removes cleanly" "vmprobe is installed already (package or /etc/vmprobe)"
	tap_done; exit
fi

# The vmprobe user, if this run's postinst made it, goes with the package:
# the next run sees postinst make it again (dpkg -P keeps users, as Debian's
# packages do).
had_user=1
cleanup() {
	vmprobe_stop >/dev/null 2>&1
	dpkg -P vmprobe >/dev/null 2>&1
	"$REPO/build/vmprobe" uninstall >/dev/null 2>&1
	[ $had_user = 1 ] || userdel vmprobe >/dev/null 2>&1
}
trap cleanup EXIT

VERSION=$(cat "$REPO/VERSION")
check_fails "make deb refuses a VERSION debian/changelog does not have" \
	make -C "$REPO" --no-print-directory deb VERSION=0.0.0-not-in-changelog
if ! out=$(make -C "$REPO" --no-print-directory deb 2>&1); then
	tap_fail "make deb builds the package" "$out" "$(tail -30 "$REPO/build/deb/build.log" 2>/dev/null)"
	tap_done; exit
fi
DEB=$REPO/build/deb/vmprobe_${VERSION}_$(dpkg --print-architecture).deb
check "make deb builds the package, versioned from VERSION" test -f "$DEB"
check_eq "lintian finds nothing (pedantic, info; overrides explained in debian/)" "" \
	"$(lintian --allow-root --pedantic -E -I "$REPO/build/deb/vmprobe_${VERSION}_$(dpkg --print-architecture).changes" 2>&1)"
check_eq "Depends come from shlibs (libbpf1 among them)" 1 \
	"$(dpkg-deb -f "$DEB" Depends | grep -c 'libbpf1')"

CTL=$(mktemp -d /tmp/vmprobe-deb.XXXXXX)
trap 'cleanup; rm -rf "$CTL"' EXIT
dpkg-deb -e "$DEB" "$CTL"
check "postinst makes the vmprobe user (systemd-sysusers)" grep -q "systemd-sysusers .*vmprobe.conf" "$CTL/postinst"
check "prerm removes what a persistent serve left (vmprobe uninstall) on remove" \
	grep -q "vmprobe uninstall -c /etc/vmprobe/vmprobe.yaml" "$CTL/prerm"
check_eq "postinst starts nothing (no deb-systemd-invoke)" 0 "$(grep -c deb-systemd-invoke "$CTL/postinst")"
id -u vmprobe >/dev/null 2>&1 || had_user=0

check "dpkg -i installs it" dpkg -i "$DEB"
for f in /usr/sbin/vmprobe /usr/share/man/man8/vmprobe.8.gz /usr/share/bash-completion/completions/vmprobe \
	/lib/systemd/system/vmprobe.service /usr/lib/sysusers.d/vmprobe.conf /etc/vmprobe/vmprobe.yaml \
	/usr/share/doc/vmprobe/copyright; do
	check "it installs $f" test -f "$f"
done
check_eq "the config is a conffile" /etc/vmprobe/vmprobe.yaml \
	"$(dpkg-query -W -f='${Conffiles}' vmprobe | awk '{ print $1 }' | paste -sd' ')"
check_eq "vmprobe --version is the build's (scripts/version.sh: the package's VERSION and the tags)" \
	"vmprobe $("$REPO/scripts/version.sh")" "$(/usr/sbin/vmprobe --version | awk '{ print $1, $2 }')"
case $(/usr/sbin/vmprobe --version | awk '{ print $2 }') in
"$VERSION" | "$VERSION"[+-]*) tap_ok "and it is of the package's release $VERSION" ;;
*) tap_fail "and it is of the package's release $VERSION" "$(/usr/sbin/vmprobe --version)" ;;
esac
check "the installed config is valid" /usr/sbin/vmprobe config check /etc/vmprobe/vmprobe.yaml
check_eq "the config sets nothing (the defaults, commented out)" "" \
	"$(grep -vE '^[[:space:]]*(#|$)' /etc/vmprobe/vmprobe.yaml)"
if [ $had_user = 1 ]; then
	tap_skip "postinst made the vmprobe user" "it existed before"
else
	check "postinst made the vmprobe user" id -u vmprobe
fi
check_eq "the unit runs the installed binary with the installed config" \
	"/usr/sbin/vmprobe serve --persist -c /etc/vmprobe/vmprobe.yaml" \
	"$(sed -n 's/^ExecStart=//p' /lib/systemd/system/vmprobe.service)"
check "systemd-analyze verify passes on the installed unit" systemd-analyze verify /lib/systemd/system/vmprobe.service
check "the unit is not enabled" test ! -e /etc/systemd/system/multi-user.target.wants/vmprobe.service
check "man finds the page" man -w vmprobe

# What the unit's serve (--persist) leaves at exit, for the next version to
# adopt: dpkg -r removes it (prerm: vmprobe uninstall).
WORK=$CTL VMPROBE=/usr/sbin/vmprobe
if vmprobe_start 19599 "persist: true"; then tap_ok "the installed vmprobe serves (persist: true)"
else tap_fail "the installed vmprobe serves (persist: true)" "$(cat "$WORK/vmprobe.log")"; fi
vmprobe_stop
check "it leaves its pins at exit" test -e /sys/fs/bpf/vmprobe/net/stamp
check "dpkg -r removes it" dpkg -r vmprobe
check "... and what its serve left (prerm: vmprobe uninstall)" test ! -e /sys/fs/bpf/vmprobe
check "the binary is gone" test ! -e /usr/sbin/vmprobe
check "the unit is gone" test ! -e /lib/systemd/system/vmprobe.service
check "the configuration stays after dpkg -r" test -f /etc/vmprobe/vmprobe.yaml
check "dpkg -P purges it" dpkg -P vmprobe
check "the configuration is gone after dpkg -P" test ! -e /etc/vmprobe
check_eq "dpkg knows nothing of it" "" "$(dpkg-query -W -f='${Status}' vmprobe 2>/dev/null)"
tap_done
