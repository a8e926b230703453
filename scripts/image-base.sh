#!/bin/bash
# The base of the Containerfile's build stage: Debian 12 with the packages
# `scripts/install-deps.sh --list build` names, installed by mmdebstrap from
# the Debian archive (bookworm, bookworm-updates, bookworm-security) and
# imported into podman as a local image. No registry is asked for anything.
#
# Prints the image's name, localhost/vmprobe-build-base:bookworm-HASH, HASH
# standing for this script and the package list: built once, then reused
# while neither changes. REFRESH=1 builds it again (newer Debian updates).
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=$(scripts/install-deps.sh --list build)
hash=$({ cat "$0"; echo "$pkgs"; } | sha256sum | cut -c1-12)
name=localhost/vmprobe-build-base:bookworm-$hash
if [ -z "${REFRESH:-}" ] && podman image exists "$name"; then
	echo "$name"
	exit 0
fi
for tool in mmdebstrap podman; do
	if ! command -v $tool >/dev/null; then
		echo "$0: $tool is not installed (scripts/install-deps.sh test installs it)" >&2
		exit 1
	fi
done

mirror=http://deb.debian.org
echo "$0: building $name with mmdebstrap from $mirror (a few minutes)" >&2
# The tarball goes straight into podman; it is tagged only when both
# mmdebstrap and the import succeeded, so a failed run leaves no base.
# The variant apt: the Essential packages, apt and the build list.
if ! id=$(set -o pipefail; mmdebstrap --quiet --variant=apt --include="$(echo $pkgs | tr ' ' ,)" \
	bookworm - \
	"deb $mirror/debian bookworm main" \
	"deb $mirror/debian bookworm-updates main" \
	"deb $mirror/debian-security bookworm-security main" |
	podman import --quiet \
		--change "ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		--change "LABEL=org.opencontainers.image.created=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		- 2>&1); then
	echo "$0: mmdebstrap or podman import failed: $id" >&2
	[[ "$id" =~ ^[0-9a-f]{64}$ ]] && podman rmi -f "$id" >/dev/null 2>&1
	exit 1
fi
old=$(podman image inspect --format '{{.Id}}' "$name" 2>/dev/null || true)
podman tag "$id" "$name"
# REFRESH=1: the base it replaced, untagged now, goes.
[ -z "$old" ] || [ "$old" = "$id" ] || podman rmi "$old" >/dev/null 2>&1 || true
echo "$name"
