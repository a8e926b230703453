#!/bin/bash
# image-rootfs.sh BINARY ROOT: the container image's root, run in the
# Containerfile's build stage (a Debian system). BINARY goes to
# ROOT/usr/bin/vmprobe; each library `ldd` lists goes in as its Debian
# package installed it (the symlink and the file at the paths dpkg knows),
# with the package's copyright file and, as distroless images record them
# for scanners, its dpkg status stanza and md5sums in
# /var/lib/dpkg/status.d/. A library no package owns is an error.
set -euo pipefail
bin=$1 root=$2

rm -rf "$root"
install -D -m 755 "$bin" "$root/usr/bin/vmprobe"
install -d -m 755 "$root/run/vmprobe" "$root/etc/vmprobe" "$root/var/lib/dpkg/status.d"

# owner PATH: "PACKAGE PATH" for the path dpkg lists PATH under (with or
# without /usr: Debian 12 merged /lib into /usr/lib, dpkg did not).
owner() {
	local p out
	for p in "$1" "${1#/usr}" "/usr$1"; do
		out=$(dpkg-query -S "$p" 2>/dev/null | grep -m1 ": $p\$") || continue
		echo "${out%%:*} $p"
		return
	done
	echo "$0: no Debian package owns $1" >&2
	return 1
}

# add PATH: the file as its package has it, a symlink and what it points to.
pkgs=()
add() {
	local pkg path target
	read -r pkg path < <(owner "$1")
	[ -n "$path" ] || exit 1
	mkdir -p "$root${path%/*}"
	cp -a "$path" "$root$path"
	pkgs+=("$pkg")
	if [ -L "$path" ]; then
		target=$(readlink "$path")
		[[ "$target" = /* ]] || target=${path%/*}/$target
		add "$target"
	fi
}

for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
	add "$lib"
done

for pkg in $(printf '%s\n' "${pkgs[@]}" | sort -u); do
	install -D -m 644 "/usr/share/doc/$pkg/copyright" "$root/usr/share/doc/$pkg/copyright"
	dpkg-query -s "$pkg" >"$root/var/lib/dpkg/status.d/$pkg"
	cp "$(dpkg-query --control-path "$pkg" md5sums)" "$root/var/lib/dpkg/status.d/$pkg.md5sums"
done
