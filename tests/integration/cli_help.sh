#!/bin/bash
# The CLI documents itself: every command answers --help with its usage on
# stdout and exit 0, and an unknown option with exit 2; the man page
# vmprobe(8) built by make renders without warnings and covers every
# command; the bash completion completes commands and options.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
MAN=$REPO/build/vmprobe.8

COMMANDS=(serve check list top hist config metrics version help)
for c in "${COMMANDS[@]}"; do
	rc=0; out=$("$VMPROBE" "$c" --help 2>/dev/null) || rc=$?
	check_eq "vmprobe $c --help exits 0" 0 "$rc"
	check "vmprobe $c --help prints its usage on stdout" grep -q "^usage: vmprobe" <<<"$out"
done
for c in serve check list top hist metrics; do
	rc=0; "$VMPROBE" "$c" --no-such-option >/dev/null 2>&1 || rc=$?
	check_eq "vmprobe $c --no-such-option exits 2" 2 "$rc"
done
rc=0; "$VMPROBE" top --sort nosuch >/dev/null 2>&1 || rc=$?
check_eq "vmprobe top --sort with an unknown field exits 2" 2 "$rc"
rc=0; "$VMPROBE" hist >/dev/null 2>&1 || rc=$?
check_eq "vmprobe hist without a VM exits 2" 2 "$rc"

if ! command -v groff >/dev/null; then
	tap_skip "the man page renders" "groff is not installed (groff-base)"
else
	check "make built build/vmprobe.8" test -s "$MAN"
	check_eq "groff renders vmprobe.8 without a warning" "" "$(groff -man -Tutf8 -ww -z "$MAN" 2>&1)"
	text=$(groff -man -Tutf8 "$MAN" 2>/dev/null | sed 's/.\x08//g')
	for c in "${COMMANDS[@]:0:7}"; do
		check "the man page's synopsis has vmprobe $c" grep -q "^ *vmprobe $c" <<<"$text"
	done
	for s in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" FILES; do
		check "the man page has the section $s" grep -q "^$s" <<<"$text"
	done
	if command -v man >/dev/null; then
		check "man -l renders it" bash -c "MANPAGER=cat man -l '$MAN' | grep -q 'vmprobe hist VM'"
	fi
fi

# The README's metric table is the one the renderer's descriptions print.
readme_table=$(sed -n '/^<!-- vmprobe metrics --markdown -->$/,/^<!-- end of vmprobe metrics --markdown -->$/p' \
	"$REPO/README.md" | sed '1d;$d')
check_eq "README's metric table is vmprobe metrics --markdown" "$("$VMPROBE" metrics --markdown)" "$readme_table"

complete_words() { # WORDS...: what the completion offers for the last word
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _vmprobe; echo "${COMPREPLY[*]}"' \
		_ "$REPO/completion/vmprobe.bash" "$@"
}
check "the completion file is valid bash" bash -n "$REPO/completion/vmprobe.bash"
check_eq "completion: commands starting with t, h" "top" "$(complete_words vmprobe t)"
check_eq "completion: every command" "serve check list top hist metrics config version help --help --version" \
	"$(complete_words vmprobe '')"
check_eq "completion: top's options" "--delay --count --batch --sort --help" "$(complete_words vmprobe top --)"
check_eq "completion: top --sort fields starting with r" "rxpk rxbit riops rmb" \
	"$(complete_words vmprobe top --sort r)"
check_eq "completion: hist's options" "--disk --net --interval --count --help" \
	"$(complete_words vmprobe hist web --)"
tap_done
