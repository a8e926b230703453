# TAP helpers for integration tests (bash): source, then call the checks.
# Each check prints one TAP line; tap_done prints the plan and sets the
# exit status from the failures.

TAP_N=0
TAP_FAILED=0

# The tests start python3 thousands of times: Debian's, which
# scripts/install-deps.sh installs, not a version manager's shim that comes
# first in PATH (pyenv's, a shell script, takes 0.35 s a start here, Debian's
# 0.04 s). Only python3 is put first, through a link in build/test-path.
# Sourced again in the same shell, it finds its link first and adds nothing.
TAP_PY=$(CDPATH='' cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/test-path
if [ -x /usr/bin/python3 ] && [ "$(command -v python3)" != /usr/bin/python3 ] &&
	[ "$(command -v python3)" != "$TAP_PY/python3" ]; then
	mkdir -p "$TAP_PY" && ln -sfn /usr/bin/python3 "$TAP_PY/python3" && PATH=$TAP_PY:$PATH
fi
unset TAP_PY

tap_ok() { # DESC
	TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $1"
}

tap_fail() { # DESC [DETAIL...]
	TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1))
	echo "not ok $TAP_N - $1"
	shift
	# Each line of each detail a comment: a log's "ok ..." line is no test.
	local detail
	for detail in "$@"; do printf '%s\n' "$detail" | sed 's/^/#   /'; done
}

# A check that could not run here: loud, and never counted as passed.
tap_skip() { # DESC REASON
	TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $1 # SKIP $2"
	echo "# SKIPPED: $1: $2" >&2
}

# Ends the whole test as one loud skip unless it runs as root (and, with
# `tun`, with /dev/net/tun): what every integration test needs first.
tap_require_root() { # DESC [tun] [REASON]
	local reason=${3:-needs root${2:+ and /dev/net/tun}}
	if [ "$(id -u)" -ne 0 ] || { [ "${2:-}" = tun ] && [ ! -c /dev/net/tun ]; }; then
		tap_skip "$1" "$reason"
		tap_done; exit
	fi
}

# Ends the whole test as one loud skip unless every COMMAND is installed.
tap_require_cmds() { # DESC COMMAND...
	local desc=$1 c; shift
	for c in "$@"; do
		if ! command -v "$c" >/dev/null; then
			tap_skip "$desc" "$c is not installed (scripts/install-deps.sh test)"
			tap_done; exit
		fi
	done
}

check_eq() { # DESC EXPECTED ACTUAL
	if [ "$2" == "$3" ]; then tap_ok "$1"; else tap_fail "$1" "expected: $2" "actual:   $3"; fi
}

check() { # DESC COMMAND... : passes when the command succeeds
	local desc=$1; shift
	local out
	if out=$("$@" 2>&1); then tap_ok "$desc"; else tap_fail "$desc" "command: $*" "output: ${out:0:2000}"; fi
}

check_fails() { # DESC COMMAND... : passes when the command fails
	local desc=$1; shift
	if "$@" >/dev/null 2>&1; then tap_fail "$desc" "command succeeded: $*"; else tap_ok "$desc"; fi
}

check_range() { # DESC LOW HIGH ACTUAL (floats, inclusive; empty fails)
	if [[ $4 =~ ^-?[0-9.e+-]+$ ]] && awk -v l="$2" -v h="$3" -v a="$4" 'BEGIN { exit !(a >= l && a <= h) }'; then
		tap_ok "$1"
	else
		tap_fail "$1" "expected: within [$2, $3]" "actual:   $4"
	fi
}

check_near() { # DESC EXPECTED ACTUAL TOLERANCE (floats; empty fails)
	if [[ $2 =~ ^-?[0-9.e+-]+$ && $3 =~ ^-?[0-9.e+-]+$ ]] &&
		awk -v e="$2" -v a="$3" -v t="$4" 'BEGIN { d = a - e; exit !(d <= t && -d <= t) }'; then
		tap_ok "$1"
	else
		tap_fail "$1" "expected: $2 (within $4)" "actual:   $3"
	fi
}

tap_done() {
	echo "1..$TAP_N"
	[ "$TAP_FAILED" -eq 0 ]
}

# Like check_eq, for numbers: an empty or non-numeric side fails, so a
# missing series can never pass as "equal".
check_num() { # DESC EXPECTED ACTUAL
	if ! [[ $2 =~ ^-?[0-9]+(\.[0-9]+)?$ && $3 =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; then
		tap_fail "$1" "expected: $2" "actual:   $3" "(both must be numbers)"
	else
		check_eq "$1" "$2" "$3"
	fi
}
