#!/bin/bash
# Runs the libFuzzer targets build/fuzz/fuzz_NAME (tests/fuzz/fuzz_NAME.c).
#
#   tests/fuzz/run.sh fuzz SECONDS [NAME...]   (make fuzz)
#       Each target (all by default) in turn for SECONDS, or until it has
#       made $FUZZ_RUNS executions if that is set and comes first, from its
#       corpus tests/fuzz/corpus/NAME and what earlier runs added in
#       build/fuzz/corpus/NAME (new inputs go there), with its dictionary
#       tests/fuzz/NAME.dict if any. A crash, a leak, a hang (30 s on one
#       input) or running out of memory (2 GiB) stops it: the input is left
#       in build/fuzz/crashes/NAME/ and the run fails. One line a target:
#       executions, time taken, corpus size, crashes.
#   tests/fuzz/run.sh check RUNS [NAME...]     (make test: tests/run.sh fuzz)
#       TAP: the corpus and the regressions (tests/fuzz/regressions/NAME:
#       inputs that crashed once) replayed without a crash, then RUNS
#       executions of fuzzing from the corpus into a scratch directory with
#       a fixed seed: the same inputs every time (but for what the timing of
#       fuzz_http's server thread adds to its coverage).
#
# Run from anywhere; each process is one fuzzer at a time (the targets are
# single-threaded, but for fuzz_http's server thread).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
B=build/fuzz

# The flags of every run of target NAME.
flags() {
	local dict=tests/fuzz/$1.dict
	echo -timeout=30 -rss_limit_mb=2048 -artifact_prefix=$B/crashes/$1/
	[ -f "$dict" ] && echo "-dict=$dict"
}

# The value of a final stat libFuzzer printed (-print_final_stats=1) in LOG.
stat() { sed -n "s/^stat::$2: *//p" "$1" | tail -1; }

# What a failed run left: the crash line and where the input is (else how the log ends).
crash_lines() {
	grep -E '^(==[0-9]+==ERROR|SUMMARY|.*property does not hold|artifact_prefix|Test unit written)' "$1" |
		head -5 | grep . || tail -3 "$1"
}

fuzz() { # SECONDS NAME
	local secs=$1 name=$2 bin=$B/fuzz_$2 log=$B/logs/$2.log rc start=$SECONDS
	mkdir -p "$B/corpus/$name" "$B/crashes/$name" "$B/logs"
	# shellcheck disable=SC2046  # flags() is a word list
	"$bin" $(flags "$name") -max_total_time="$secs" ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} \
		-print_final_stats=1 "$B/corpus/$name" "tests/fuzz/corpus/$name" >"$log" 2>&1
	rc=$?
	printf '%-10s %10s executions in %ss, corpus %s inputs, %s\n' "$name" \
		"$(stat "$log" number_of_executed_units)" "$((SECONDS - start))" \
		"$(find "$B/corpus/$name" "tests/fuzz/corpus/$name" -type f | wc -l)" \
		"$([ $rc -eq 0 ] && echo "0 crashes" || echo "CRASHED (exit $rc): see $log")"
	[ $rc -eq 0 ] || crash_lines "$log" | sed 's/^/    /'
	return $rc
}

n=0 failed=0
tap() { # ok|not ok, DESC [DETAIL...]
	n=$((n + 1))
	[ "$1" = ok ] || failed=1
	echo "$1 $n - $2"
	shift 2
	[ $# -gt 0 ] && printf '%s\n' "$@" | sed 's/^/  # /'
	return 0
}

check() { # RUNS NAME
	local runs=$1 name=$2 bin=$B/fuzz_$2 log dir files rc scratch ran
	mkdir -p "$B/logs" "$B/crashes/$name"
	for dir in corpus regressions; do
		files=$(find "tests/fuzz/$dir/$name" -type f 2>/dev/null | wc -l)
		if [ "$files" -eq 0 ]; then
			# No regression input: nothing ever crashed this target, no line.
			[ $dir = corpus ] &&
				tap "not ok" "fuzz_$name: its corpus tests/fuzz/corpus/$name is empty"
			continue
		fi
		log=$B/logs/$name-$dir.log
		# shellcheck disable=SC2046
		"$bin" $(flags "$name") -runs=0 "tests/fuzz/$dir/$name" >"$log" 2>&1
		rc=$?
		if [ $rc -eq 0 ]; then
			tap ok "fuzz_$name: tests/fuzz/$dir/$name ($files inputs) runs without a crash"
		else
			tap "not ok" "fuzz_$name: an input of tests/fuzz/$dir/$name crashes it (exit $rc)" \
				"$(crash_lines "$log")"
		fi
	done
	scratch=$(mktemp -d "$B/scratch.XXXXXX")
	log=$B/logs/$name-check.log
	# shellcheck disable=SC2046
	"$bin" $(flags "$name") -seed=1 -runs="$runs" -print_final_stats=1 \
		"$scratch" "tests/fuzz/corpus/$name" >"$log" 2>&1
	rc=$?
	rm -rf "$scratch"
	ran=$(stat "$log" number_of_executed_units)
	if [ $rc -ne 0 ]; then
		tap "not ok" "fuzz_$name: $runs executions of fuzzing (seed 1) found a crash (exit $rc)" \
			"$(crash_lines "$log")" "to keep it: tests/fuzz/regressions/$name/, after fixing it"
	elif [ "${ran:-0}" -lt "$runs" ]; then
		tap "not ok" "fuzz_$name: fuzzing stopped after ${ran:-no} of $runs executions" \
			"$(tail -3 "$log")"
	else
		tap ok "fuzz_$name: $ran executions of fuzzing (seed 1) without a crash"
	fi
}

mode=${1:-} secs=${2:-}
shift 2 2>/dev/null
if [[ ! $secs =~ ^[0-9]+$ ]] || { [ "$mode" != fuzz ] && [ "$mode" != check ]; }; then
	echo "usage: $0 fuzz SECONDS [NAME...] | check RUNS [NAME...]" >&2
	exit 2
fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for bin in $B/fuzz_*; do [ -x "$bin" ] && names+=("${bin##*/fuzz_}"); done
fi
if [ ${#names[@]} -eq 0 ]; then
	echo "no fuzz target in $B: make fuzz builds them" >&2
	exit 2
fi
for name in "${names[@]}"; do
	if [ ! -x "$B/fuzz_$name" ]; then
		echo "no target $B/fuzz_$name" >&2
		exit 2
	fi
	if [ "$mode" = fuzz ]; then
		fuzz "$secs" "$name" || failed=1
	else
		check "$secs" "$name"
	fi
done
[ "$mode" = check ] && echo "1..$n"
exit $failed
