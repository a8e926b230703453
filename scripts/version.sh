#!/bin/sh
# The version a build of vmprobe says it is (`vmprobe --version`,
# vmprobe_build_info's version label), from VERSION and the release tags
# (v<version>) that `git describe` finds:
#   HEAD is the commit tagged v$VERSION          0.1.0
#   N commits after the tag v$VERSION            0.1.0+N.g<commit>
#   v$VERSION not tagged yet (last tag older,    0.2.0-dev+N.g<commit>
#     or no tag: N counts from the first commit)
#   uncommitted changes                          ... .dirty appended
#   not a git checkout (a source tarball)        0.1.0
# Semantic versions all: a build after a release sorts as that release, a
# build before it sorts before it. Usage: scripts/version.sh [TREE]
set -eu
cd "${1:-$(dirname "$0")/..}"
base=$(cat VERSION)
if ! commit=$(git rev-parse --short=12 HEAD 2>/dev/null); then
	echo "$base"
	exit 0
fi
dirty=
# (git diff compares contents where only timestamps changed, and writes nothing)
git diff --quiet HEAD -- 2>/dev/null || dirty=.dirty
tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' 2>/dev/null || true)
if [ -n "$tag" ]; then
	n=$(git rev-list --count "$tag..HEAD")
else
	n=$(git rev-list --count HEAD)
fi
if [ "$tag" = "v$base" ] && [ "$n" = 0 ]; then
	version=$base${dirty:++dirty}
elif [ "$tag" = "v$base" ]; then
	version=$base+$n.g$commit$dirty
else
	version=$base-dev+$n.g$commit$dirty
fi
echo "$version"
