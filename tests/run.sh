#!/bin/bash
# Runs every test suite. Each suite prints TAP lines ("ok N - what",
# "not ok N - what", "... # SKIP why"); this script echoes them, counts
# them and ends with one line: "N passed, N failed, N skipped".
# A suite that exits non-zero without reporting a failure counts as one.
# Usage: tests/run.sh [unit|bpf|fuzz|integration ...]   (default: all)
# fuzz: each libFuzzer target of build/fuzz replays its corpus and
# regressions and fuzzes FUZZ_CHECK_RUNS executions (default 2000, seed 1:
# the same inputs each time) - make fuzz runs longer.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0 failed=0 skipped=0
logdir=build/test-logs
mkdir -p "$logdir"

# What a suite left running that the next would trip on: a vmprobe (it
# holds the serve lock, its programs stay on taps), a QEMU or its
# stand-in. Said as the suite's failure and ended here, so that the next
# suite starts clean and the leak is blamed where it happened. Only what
# started during the suite and is the tests': run from this tree, or on
# the tests' files (/tmp/vmprobe-*), or with this run's mark in its
# environment. A host's own VMs and services are none of these.
export VMPROBE_TEST_RUN=$$
strays() { # each as PID:START_TIME
	local p exe stat
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		exe=${exe% (deleted)}
		case ${exe##*/} in
		vmprobe | tapguest | qemu-system-*) ;;
		*) continue ;;
		esac
		[[ $exe == "$PWD"/* ]] || tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -q /tmp/vmprobe- ||
			tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx "VMPROBE_TEST_RUN=$$" || continue
		stat=$(cat "$p/stat" 2>/dev/null) || continue
		stat=${stat##*) }
		echo "${p#/proc/}:$(echo "$stat" | cut -d' ' -f20)"
	done | sort
}

# A cleanup's SIGTERM may still be ending them: 5 s of grace, then each
# one still there is said, and ended.
end_strays() { # NAME BEFORE
	local left p pids end=$((SECONDS + 5))
	while left=$(comm -13 <(echo "$2") <(strays)) && [ -n "$left" ] && [ $SECONDS -lt $end ]; do
		sleep 0.2
	done
	[ -z "$left" ] && return 0
	for p in $left; do
		echo "not ok - suite $1 left running: pid ${p%%:*}:" \
			"$(tr '\0' ' ' <"/proc/${p%%:*}/cmdline" 2>/dev/null)"
	done
	end=$((SECONDS + 5))
	for sig in TERM KILL; do
		# Only those still there, as they were: a PID may be another's by now.
		pids=$(comm -12 <(echo "$left") <(strays) | cut -d: -f1)
		[ -n "$pids" ] && kill -$sig $pids 2>/dev/null
		while [ -n "$(comm -12 <(echo "$left") <(strays))" ] && [ $SECONDS -lt $end ]; do
			sleep 0.2
		done
	done
	# What a killed vmprobe left attached or pinned.
	[ -x build/vmprobe ] && build/vmprobe uninstall >/dev/null 2>&1
	return 1
}

# A run killed midway (service_caps.sh) may leave /run/vmprobe and the
# pins' directory as the systemd unit's user has them: vmprobe as the
# chart runs it (root without CAP_DAC_OVERRIDE) could not write there, and
# the next run's helm suites would fail for it. Put back as root's, unless
# a serve is running.
own_state() {
	local d
	if [ -e /run/vmprobe/serve.lock ] && ! flock -n /run/vmprobe/serve.lock true; then
		return
	fi
	for d in /sys/fs/bpf/vmprobe /run/vmprobe; do
		[ -e "$d" ] && [ "$(stat -c %u "$d")" != 0 ] || continue
		echo "# $d was uid $(stat -c %u "$d")'s (a run stopped midway?): removed"
		# The pins' directory: what they hold detached first.
		[ "$d" = /run/vmprobe ] || build/vmprobe uninstall >/dev/null 2>&1
		rm -rf "$d"
	done
}

run_suite() {
	local name=$1; shift
	local log="$logdir/$name.log" rc p f s t0=$SECONDS
	echo "# suite $name: $*"
	local before=
	[[ $name == int-* ]] && before=$(strays)
	CMOCKA_MESSAGE_OUTPUT=TAP timeout --kill-after=10 "${SUITE_TIMEOUT:-900}" "$@" >"$log" 2>&1
	rc=$?
	sed 's/^/    /' "$log"
	s=$(grep -cE '^ok .*# *(SKIP|skip)' "$log")
	p=$(( $(grep -cE '^ok ' "$log") - s ))
	f=$(grep -cE '^not ok ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - suite $name exited with status $rc without reporting a failure"
		f=1
	fi
	if [ $((p + f + s)) -eq 0 ]; then
		echo "not ok - suite $name ran no test"
		f=1
	fi
	case $name in int-*) end_strays "$name" "$before" || f=$((f + 1)) ;; esac
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	took+=("$((SECONDS - t0)) $name")
	echo "# suite $name took $((SECONDS - t0)) s"
}
took=()

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(unit bpf fuzz integration)
for kind in "${want[@]}"; do
	case $kind in
	unit)
		for t in build/tests/test_*; do [ -x "$t" ] && run_suite "unit-$(basename "$t")" "$t"; done ;;
	bpf)
		for t in build/tests/bpf_*; do [ -x "$t" ] && run_suite "$(basename "$t")" "$t"; done ;;
	fuzz)
		for t in build/fuzz/fuzz_*; do
			[ -x "$t" ] && run_suite "fuzz-${t##*/fuzz_}" \
				tests/fuzz/run.sh check "${FUZZ_CHECK_RUNS:-2000}" "${t##*/fuzz_}"
		done ;;
	integration)
		own_state
		for t in tests/integration/*.sh; do
			[ -f "$t" ] && run_suite "int-$(basename "$t" .sh)" bash "$t"
		done ;;
	*) echo "unknown suite kind $kind" >&2; exit 2 ;;
	esac
done

[ ${#took[@]} -eq 0 ] ||
	echo "# slowest suites (s): $(printf '%s\n' "${took[@]}" | sort -rn | head -8 | tr '\n' ' ')"
echo "# all suites: $SECONDS s"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
