#!/bin/bash
# The version a build says it is comes from VERSION and the release tags
# that `git describe` finds (scripts/version.sh), in a scratch clone of this
# repository where tags and commits are made at will: a tagged release, a
# build after it, before the next one, with uncommitted changes, from a
# tarball. The Makefile writes what the script says, and this tree's build
# says it in --version.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"

tap_require_cmds "versions from git describe" git make
VMPROBE=${VMPROBE:-$REPO/build/vmprobe}
WORK=$(mktemp -d /tmp/vmprobe-version.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
R=$WORK/r
git clone -q "$REPO" "$R" || { tap_fail "clone the repository"; tap_done; exit; }
g() { git -C "$R" -c user.name=t -c user.email=t@example.invalid "$@"; }
ver() { "$R/scripts/version.sh" "$R"; }
short() { g rev-parse --short=12 HEAD; }
tags=$(g tag)
[ -n "$tags" ] && g tag -d $tags >/dev/null
base=$(cat "$R/VERSION")

check_eq "no release tag yet: a development build of VERSION, commits counted from the first" \
	"$base-dev+$(g rev-list --count HEAD).g$(short)" "$(ver)"
g tag "v$base"
check_eq "HEAD is the release tag v$base: the plain version" "$base" "$(ver)"
echo "# changed" >>"$R/README.md"
check_eq "uncommitted changes say so" "$base+dirty" "$(ver)"
touch "$R/untracked-file"
check_eq "an untracked file is not a change of the build" "$base+dirty" "$(ver)"
g commit -q -am "a change after the release"
check_eq "one commit after the release: the release plus the commit" "$base+1.g$(short)" "$(ver)"
echo 9.9.9 >"$R/VERSION"
g commit -q -am "work towards 9.9.9"
check_eq "VERSION moved on, not tagged yet: before 9.9.9, after v$base" "9.9.9-dev+2.g$(short)" "$(ver)"
echo "# more" >>"$R/README.md"
check_eq "dirty, before the release" "9.9.9-dev+2.g$(short).dirty" "$(ver)"
make -C "$R" --no-print-directory build/version.h >/dev/null 2>&1
check_eq "the Makefile writes the script's version into version.h" \
	"#define VMPROBE_VERSION \"9.9.9-dev+2.g$(short).dirty\"" "$(grep VMPROBE_VERSION "$R/build/version.h")"
check_eq "and the commit as the revision" "#define VMPROBE_REVISION \"$(g rev-parse HEAD)\"" \
	"$(grep VMPROBE_REVISION "$R/build/version.h")"
g checkout -q -- README.md
g tag -a -m "9.9.9" v9.9.9
check_eq "an annotated tag v9.9.9 at HEAD: 9.9.9" "9.9.9" "$(ver)"
g tag vendor-snapshot
check_eq "a tag that is not v<digit>... is not a release" "9.9.9" "$(ver)"

mkdir "$WORK/tarball"
g archive HEAD | tar -x -C "$WORK/tarball"
check_eq "a source tarball (no git): VERSION" "9.9.9" "$("$WORK/tarball/scripts/version.sh" "$WORK/tarball")"


check_eq "this tree's vmprobe --version: scripts/version.sh and the commit" \
	"vmprobe $("$REPO/scripts/version.sh") (revision $(git -C "$REPO" rev-parse HEAD))" \
	"$("$VMPROBE" --version)"
tap_done
