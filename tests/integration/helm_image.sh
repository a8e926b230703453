#!/bin/bash
# The container image: `make image` builds the Containerfile with podman,
# nothing pulled (--pull=never; only the base and scratch are named, and
# every image it adds is local): its build stage is the Debian 12 base
# scripts/image-base.sh imported from mmdebstrap, where vmprobe is built
# and gathered with its libraries from Debian's packages; the final stage
# (FROM scratch) holds vmprobe, those libraries, their copyright files and
# dpkg records. Every file but vmprobe is checked against its package's md5sums
# and each record against the build base's dpkg database; the binary was
# compiled in the build stage, not copied from build/. The image holds no
# shell, runs `vmprobe version` as the build does, and serves /metrics as
# the DaemonSet runs it: host PID namespace, the chart's capabilities only,
# no_new_privs as it says, podman's default seccomp profile
# (RuntimeDefault), read-only root, the host paths of the chart, its own
# network namespace; it counts a stand-in guest's tap in another network
# namespace.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
. "$REPO/tests/k8s/lib.sh"

what="the container image"
tap_require_root "$what" "" "needs root (podman with host PID namespace and capabilities)"
tap_require_cmds "$what" podman mmdebstrap readelf
if [ ! -x "$VMPROBE" ]; then
	tap_skip "$what" "build/vmprobe is not built"
	tap_done; exit
fi

WORK=$(mktemp -d /tmp/vmprobe-image.XXXXXX)
chmod 755 "$WORK"
IMAGE=localhost/vmprobe:test-$$ NAME=vmprobe-test-$$ PORT=19586 NS=vmpi-ns TAP=vmpi-p0
GPID=
cleanup() {
	podman rm -f "$NAME" >/dev/null 2>&1
	[ -n "$GPID" ] && kill "$GPID" 2>/dev/null && wait "$GPID" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	podman rmi -f "$IMAGE" >/dev/null 2>&1
	[ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

before=$(podman images -a -q --no-trunc | sort)
if ! out=$(make -C "$REPO" --no-print-directory image IMAGE="$IMAGE" 2>&1); then
	tap_fail "make image builds the Containerfile without pulling anything" "$(echo "$out" | tail -5)"
	tap_done; exit
fi
tap_ok "make image builds the Containerfile without pulling anything"
# podman build --pull=never resolved each FROM locally: the Containerfile
# has two, the base scripts/image-base.sh imported and scratch.
base=$("$REPO/scripts/image-base.sh")
check_eq "the Containerfile's stages start from the build base and scratch only" "FROM \${BASE} AS build|FROM scratch" \
	"$(grep '^FROM' "$REPO/Containerfile" | paste -sd '|')"
check_eq "the build base is a local import of mmdebstrap's tarball, not a registry's image" "localhost/ imported from tarball" \
	"${base%%/*}/ $(podman history --format '{{.Comment}}' "$base")"
check_eq "every image make image added to podman's store is local (localhost/ or untagged)" "" \
	"$(comm -13 <(echo "$before") <(podman images -a -q --no-trunc | sort) |
		xargs -r podman image inspect --format '{{range .RepoTags}}{{println .}}{{end}}' | grep -v '^localhost/' | grep -v '^$')"
size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
check_range "the image is small (under 40 MB)" 1 40000000 "$size"
check_eq "the image is built from scratch: one layer" 1 \
	"$(podman image inspect "$IMAGE" --format '{{len .RootFS.Layers}}')"
check_eq "the entry point is vmprobe, serving by default" "[/usr/bin/vmprobe] [serve]" \
	"$(podman image inspect "$IMAGE" --format '{{.Config.Entrypoint}} {{.Config.Cmd}}')"
mnt=$(podman image mount "$IMAGE" 2>/dev/null)
bmnt=$(podman image mount "$base" 2>/dev/null)
if [ -n "$mnt" ] && [ -n "$bmnt" ]; then
	check_eq "no shell and no package manager in the image" "" \
		"$(ls "$mnt"/bin/sh "$mnt"/usr/bin/sh "$mnt"/usr/bin/dpkg "$mnt"/usr/bin/apt 2>/dev/null)"
	status=$mnt/var/lib/dpkg/status.d
	pkgs=$(cd "$status" && ls | grep -v '\.md5sums$')
	check_eq "the image records the Debian packages of libc, libbpf and libmicrohttpd" "libbpf1 libc6 libmicrohttpd12" \
		"$(echo $pkgs | tr ' ' '\n' | grep -xE 'libc6|libbpf1|libmicrohttpd12' | sort | xargs)"
	(cd "$mnt" && find . -type f ! -path ./usr/bin/vmprobe ! -path './var/lib/dpkg/status.d/*' -printf '%P\n') >"$WORK/files"
	check_eq "every file but vmprobe ($(wc -l <"$WORK/files") of them, $(grep -c '\.so' "$WORK/files") libraries) is its Debian package's, by the package's md5sums" "" \
		"$(cd "$mnt" && xargs -a "$WORK/files" md5sum | grep -vxFf <(cat "$status"/*.md5sums))"
	diffs=
	for p in $pkgs; do
		cmp -s "$status/$p" <(dpkg-query --admindir="$bmnt/var/lib/dpkg" -s "$p") || diffs+=" $p"
	done
	check_eq "each package's record is the build base's (mmdebstrap's Debian 12, not this host's)" "" "$diffs"
	check_eq "the image's vmprobe was compiled in the build stage (/src), not copied from build/" "/src" \
		"$(readelf --debug-dump=info "$mnt/usr/bin/vmprobe" | sed -n 's/.*DW_AT_comp_dir.*: //p' | sort -u | xargs)"
else
	tap_fail "podman image mount of the image and its build base" "$IMAGE: '$mnt', $base: '$bmnt'"
fi
podman image unmount "$IMAGE" "$base" >/dev/null 2>&1

# Running containers here: crun refuses this host's hybrid cgroup layout
# ("cgroups in hybrid mode not supported"), so runc is preferred when
# installed; podman lowers its own RLIMIT_NPROC to 32768, which a runtime
# cannot raise again for the container without CAP_SYS_RESOURCE.
run=(podman)
command -v runc >/dev/null && run+=(--runtime runc)
run+=(run --ulimit "nofile=$(ulimit -n):$(ulimit -Hn)" --ulimit nproc=32768:32768)
if ! ver=$("${run[@]}" --rm "$IMAGE" version 2>&1); then
	tap_skip "the image runs" "this host cannot run containers: $(echo "$ver" | tail -1)"
	tap_done; exit
fi
check_eq "vmprobe version in the image is the build's" "$("$VMPROBE" version)" "$ver"

# As the DaemonSet: the rendered chart's capabilities and mounts.
if k8s_tools; then
	render "$WORK/default.yaml"
	tojson "$WORK/default.yaml" | python3 -c '
import json, sys
for d in json.load(sys.stdin):
    if d["kind"] == "DaemonSet":
        pod = d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        vols = {v["name"]: v for v in pod["volumes"]}
        print("CAPS=" + ",".join(c["securityContext"]["capabilities"]["add"]))
        print("NNP=%s" % ("true" if c["securityContext"].get("allowPrivilegeEscalation") is False else "false"))
        print("SECCOMP=%s" % c["securityContext"].get("seccompProfile", {}).get("type", ""))
        for m in c["volumeMounts"]:
            v = vols[m["name"]]
            if "hostPath" in v:
                print("MOUNT=%s:%s%s" % (v["hostPath"]["path"], m["mountPath"], ":ro" if m.get("readOnly") else ""))
    if d["kind"] == "ConfigMap" and "config.yaml" in d["data"]:
        open(sys.argv[1] + "/config.yaml", "w").write(d["data"]["config.yaml"])' "$WORK" >"$WORK/pod.txt"
	caps=$(sed -n 's/^CAPS=//p' "$WORK/pod.txt")
	nnp=$(sed -n 's/^NNP=//p' "$WORK/pod.txt")
	# podman's default profile (containers-common's seccomp.json) stands for
	# the runtime's RuntimeDefault: bpf(), perf_event_open() and setns()
	# are allowed by SYS_ADMIN there, as in containerd's.
	check_eq "the chart asks for the runtime's default seccomp profile" RuntimeDefault \
		"$(sed -n 's/^SECCOMP=//p' "$WORK/pod.txt")"
	mounts=()
	while read -r m; do
		# Each host path must exist, as the pod's hostPath types require.
		[ -e "${m%%:*}" ] || mkdir -p "${m%%:*}"
		mounts+=(-v "$m")
	done < <(sed -n 's/^MOUNT=//p' "$WORK/pod.txt")
else
	tap_skip "the container runs with the rendered chart's privileges" "$K8S_TOOLS_ERR"
	tap_done; exit
fi

ip netns del "$NS" 2>/dev/null
ip netns add "$NS"
ip netns exec "$NS" ip tuntap add dev "$TAP" mode tap
ip netns exec "$NS" ip link set "$TAP" up
QEMU=$(tapguest_dir)
TAPGUEST_BURST=4:100 ip netns exec "$NS" "$QEMU" -name guest=img_vm-1 -uuid 00000000-0000-0000-0000-0000000000d1 \
	-netdev "tap,id=n0,ifname=$TAP" >"$WORK/guest.log" 2>&1 &
GPID=$!
wait_for 5 grep -q ready "$WORK/guest.log"

if ! out=$("${run[@]}" -d --name "$NAME" --pid=host --cap-drop=all --cap-add="$caps" \
	--read-only --security-opt "no-new-privileges=$nnp" "${mounts[@]}" \
	-v "$WORK/config.yaml:/etc/vmprobe/config.yaml:ro" -p "127.0.0.1:$PORT:19472" \
	"$IMAGE" serve -c /etc/vmprobe/config.yaml 2>&1); then
	tap_fail "the container starts as the DaemonSet runs it" "$out"
	tap_done; exit
fi
tap_ok "the container starts as the DaemonSet runs it (caps $caps, no_new_privs $nnp, default seccomp profile, ${#mounts[@]} host-path args, read-only root)"
CPID=$(podman inspect -f '{{.State.Pid}}' "$NAME")
if [ "${CPID:-0}" = 0 ]; then
	# It exited at once: what vmprobe said is the only clue.
	tap_fail "in it vmprobe runs with no_new_privs as the chart says, and a seccomp filter" \
		"the container is not running ($(podman inspect -f '{{.State.Status}} {{.State.ExitCode}}' \
		"$NAME")); its log:" "$(podman logs "$NAME" 2>&1 | tail -15)"
else
	check_eq "in it vmprobe runs with no_new_privs as the chart says, and a seccomp filter" \
		"$([ "$nnp" = true ] && echo 1 || echo 0) 2" \
		"$(awk '/^NoNewPrivs/ {n=$2} /^Seccomp:/ {s=$2} END {print n, s}' "/proc/$CPID/status")"
fi
VMPROBE_URL="http://127.0.0.1:$PORT/metrics"
counted() { scrape "$WORK/m.txt" && [ -n "$(metric "$WORK/m.txt" vmprobe_network_packet_size_bytes_count name=img_vm-1 interface=$TAP direction=tx)" ]; }
check "the containerised vmprobe counts a guest's tap in another network namespace" wait_for 10 counted
check "/healthz answers through the published port" curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz"
kill -USR1 "$GPID"
wait_for 5 grep -q sent "$WORK/guest.log"
sleep 0.3
scrape "$WORK/m2.txt"
check_num "frames from the guest = its tap's rx_packets" \
	"$(ip netns exec "$NS" cat /sys/class/net/$TAP/statistics/rx_packets)" \
	"$(metric "$WORK/m2.txt" vmprobe_network_packet_size_bytes_count name=img_vm-1 interface=$TAP direction=tx)"
check "podman stop: vmprobe exits 0 on SIGTERM" bash -c "podman stop -t 10 $NAME >/dev/null && \
	[ \"\$(podman inspect $NAME --format '{{.State.ExitCode}}')\" = 0 ]"
# The chart's config persists: the programs go on counting for the next
# pod, pinned in the host's bpffs; vmprobe uninstall on the host removes them.
check "with persist (the chart's default) its programs stay on the guest's tap for the next pod" \
	test -n "$(vmprobe_progs "$NS" "$TAP")"
check "vmprobe uninstall on the host removes what the container left" "$VMPROBE" uninstall
check_eq "no vmprobe program left on the guest's tap" "" "$(vmprobe_progs "$NS" "$TAP")"
if [ -n "${KEEP:-}" ]; then podman logs "$NAME" >"$WORK/container.log" 2>&1; fi
tap_done
