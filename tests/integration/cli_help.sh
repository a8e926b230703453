#!/bin/bash
# The CLI documents itself, from one source: the option tables vmprobe
# parses its arguments with (`vmprobe options --json` prints them). For
# every command and option there: the parser takes it (a flag, each of an
# option's values, a missing value named), --help lists it with its
# values, the man page build/vmprobe.8 lists it under the command and in
# the synopsis, the completion build/vmprobe.bash offers it and its
# values; `vmprobe help` and the README show the same synopsis. Every
# error names the bad value and exits 2. The man page renders without
# warnings.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/lib/tap.sh"
. "$REPO/tests/lib/vmprobe.sh"
MAN=$REPO/build/vmprobe.8
COMPLETION=$REPO/build/vmprobe.bash
WORK=$(mktemp -d /tmp/vmprobe-help.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

rc=0; "$VMPROBE" options --json >"$WORK/options.json" || rc=$?
check_eq "vmprobe options --json exits 0" 0 "$rc"
check "and prints the tables as JSON" python3 -c 'import json, sys; json.load(open(sys.argv[1]))["commands"][0]["options"]' \
	"$WORK/options.json"
# One line per command or option, for bash to loop over:
#   cmd NAME HIDDEN
#   opt NAME LONG SHORT ARG COMPLETION VALUES...   ("-" for none)
python3 - "$WORK/options.json" >"$WORK/table.txt" <<'PY'
import json, sys
for c in json.load(open(sys.argv[1]))["commands"]:
    print("cmd", c["name"], "hidden" if c["hidden"] else "shown")
    for o in c["options"]:
        print("opt", c["name"], o["long"], o["short"] or "-", o["arg"] or "-", o["completion"], *o["values"])
PY
COMMANDS=($(awk '$1 == "cmd" && $3 == "shown" { print $2 }' "$WORK/table.txt"))
check_eq "every command is in the tables" "serve check list top hist metrics config uninstall version help" "${COMMANDS[*]}"

# --help and the parser, per option.
for c in "${COMMANDS[@]}"; do
	rc=0; "$VMPROBE" "$c" --help >"$WORK/help-$c.txt" 2>&1 || rc=$?
	check_eq "vmprobe $c --help exits 0" 0 "$rc"
	check "vmprobe $c --help prints its usage on stdout" grep -q "^usage: vmprobe $c" "$WORK/help-$c.txt"
	rc=0; "$VMPROBE" "$c" --no-such-option >/dev/null 2>"$WORK/err.txt" || rc=$?
	check_eq "vmprobe $c --no-such-option exits 2" 2 "$rc"
	check "and names the option" grep -q "$c has no option '--no-such-option'" "$WORK/err.txt"
done
while read -r kind c long short arg comp values; do
	[ "$kind" = opt ] && [[ " ${COMMANDS[*]} " == *" $c "* ]] || continue
	[ "$short" = - ] && label="    $long" || label="$short, $long"
	[ "$arg" != - ] && label="$label $arg"
	check "$c --help lists '$label'" grep -qF -- "  $label" "$WORK/help-$c.txt"
	for v in $values; do
		check "$c --help lists $long's value $v" grep -qE -- "[ (:]$v[,)]" "$WORK/help-$c.txt"
		check "the parser takes $c $long $v" "$VMPROBE" "$c" "$long" "$v" --help
	done
	[ "$long" = --help ] && continue
	if [ "$arg" = - ]; then
		check "the parser takes the flag $c $long" "$VMPROBE" "$c" "$long" --help
		[ "$short" != - ] && check "the parser takes the flag $c $short" "$VMPROBE" "$c" "$short" --help
	else
		for o in "$long" "$short"; do
			[ "$o" = - ] && continue
			rc=0; "$VMPROBE" "$c" "$o" >/dev/null 2>"$WORK/err.txt" || rc=$?
			check_eq "the parser takes $c $o, and without a value exits 2" 2 "$rc"
			check "and says $long needs a value ($arg)" grep -qF "option '$long' needs a value ($arg)" "$WORK/err.txt"
		done
	fi
done <"$WORK/table.txt"

# Errors name the bad value.
bad() { # DESC EXPECTED_STDERR_TEXT ARGS...
	local desc=$1 want=$2 rc=0; shift 2
	"$VMPROBE" "$@" >/dev/null 2>"$WORK/err.txt" || rc=$?
	check_eq "$desc: exits 2" 2 "$rc"
	check "$desc: says $want" grep -qF -- "$want" "$WORK/err.txt"
}
bad "top --sort nosuch" "--sort 'nosuch' is not one of rxpk, txpk, rxbit, txbit, riops, wiops, rmb, wmb, p99, netrtt, guestrtt, name" \
	top --sort nosuch
bad "top -d 0.01" "--delay '0.01' is not a number of seconds from 0.1 to 86400" top -d 0.01
bad "top -d 2x" "--delay '2x' is not a number of seconds" top -d 2x
bad "top -n 0" "--count '0' is not a whole number from 1" top -n 0
bad "top -o yaml" "--output 'yaml' is not one of text, json" top -o yaml
bad "hist -d DRIVE (its meaning up to 0.1.0)" "hist -d is the interval, as in top; -D (--disk) picks a drive" hist web -d root
bad "hist without a VM" "hist needs VM" hist
bad "hist with two VMs" "hist takes only VM, not also 'b'" hist a b
bad "hist --disk and --net" "hist takes --disk 'a' or --net 'b', not both" hist vm -D a -N b
bad "serve --listen nope" "--listen 'nope' is not HOST:PORT" serve --listen nope
bad "serve --web.max-requests 0" "--web.max-requests '0' is not a whole number from 1 to 100000" serve --web.max-requests 0
bad "list extra" "list takes no arguments, not 'extra'" list extra
bad "top --batch=1" "option '--batch' takes no value ('--batch=1')" top --batch=1
bad "config nope" "config has no action 'nope'" config nope
bad "config default FILE" "config default takes no FILE, not 'x'" config default x
bad "vmprobe nosuch" "no command 'nosuch'" nosuch
check "top -d takes fractions (0.5)" "$VMPROBE" top -d 0.5 --help
check "hist -d takes fractions (0.25)" "$VMPROBE" hist -d 0.25 --help

# vmprobe help: every command with the synopsis the tables give; the README's the same.
"$VMPROBE" help >"$WORK/help.txt"
check_eq "vmprobe --help is vmprobe help" "$(cat "$WORK/help.txt")" "$("$VMPROBE" --help)"
help_synopsis=$(sed -n '/^synopsis:$/,/^$/p' "$WORK/help.txt" | sed '1d;$d')
norm() { tr -s ' \n' ' ' | sed 's/^ //;s/ $//'; }
check_eq "vmprobe help's synopsis is the tables' (one line each)" \
	"$(python3 -c 'import json,sys; print("\n".join(c["synopsis"] for c in json.load(open(sys.argv[1]))["commands"] if not c["hidden"]))' "$WORK/options.json" | norm)" \
	"$(norm <<<"$help_synopsis")"
readme_synopsis=$(sed -n '/^<!-- vmprobe help: synopsis -->$/,/^<!-- end of vmprobe help: synopsis -->$/p' \
	"$REPO/README.md" | sed '1d;$d;s/^  //')
check_eq "README's synopsis is vmprobe help's" "$help_synopsis" "$readme_synopsis"

# The man page: rendered, each command's synopsis and options as the tables say.
if ! command -v groff >/dev/null; then
	tap_skip "the man page agrees with the tables" "groff is not installed (groff-base)"
else
	check "make built build/vmprobe.8" test -s "$MAN"
	check_eq "groff renders vmprobe.8 without a warning" "" "$(groff -man -Tutf8 -ww -z "$MAN" 2>&1)"
	MANWIDTH=200 groff -man -Tutf8 -rLL=200n "$MAN" 2>/dev/null | sed 's/.\x08//g' >"$WORK/man.txt"
	for s in NAME SYNOPSIS DESCRIPTION COMMANDS "JSON OUTPUT" "EXIT STATUS" FILES HISTORY; do
		check "the man page has the section $s" grep -q "^$s" "$WORK/man.txt"
	done
	# SYNOPSIS: "vmprobe CMD ..." lines; COMMANDS: a command at 7 columns,
	# its options at 14 (their labels start with "-"), and its whole text
	# in man-CMD.txt.
	python3 - "$WORK/man.txt" "$WORK" >"$WORK/man-table.txt" <<'PY'
import re, sys
sec, cmd, text = None, None, {}
for line in open(sys.argv[1]):
    line = line.rstrip("\n").replace("\u2010", "-").replace("\u2212", "-")
    if re.match(r"^[A-Z]", line):
        sec = line.strip(); continue
    if sec == "SYNOPSIS" and line.strip().startswith("vmprobe "):
        print("syn", " ".join(line.split()))
    if sec != "COMMANDS":
        continue
    m = re.match(r"^ {7}(\w+)\b", line)
    if m:
        cmd = m.group(1)
    m = re.match(r"^ {14}(-.*)$", line)
    if m and cmd:
        print("opt", cmd, " ".join(m.group(1).split()))
    if cmd:
        text[cmd] = text.get(cmd, "") + line + "\n"
for cmd, t in text.items():
    open("%s/man-%s.txt" % (sys.argv[2], cmd), "w").write(t)
PY
	while read -r kind c long short arg comp values; do
		[ "$kind" = opt ] && [[ " ${COMMANDS[*]} " == *" $c "* ]] || continue
		[ "$short" = - ] && label="$long" || label="$short, $long"
		[ "$arg" != - ] && label="$label $arg"
		check "the man page lists '$label' under $c" grep -qxF "opt $c $label" "$WORK/man-table.txt"
		for v in $values; do
			check "the man page lists $c $long's value $v" grep -qE -- "[ :]$v[,)]" "$WORK/man-$c.txt"
		done
	done <"$WORK/table.txt"
	check_eq "the man page lists no option the tables lack" \
		"$(awk '$1 == "opt" { l = $3; if ($4 != "-") l = $4 ", " $3; if ($5 != "-") l = l " " $5; print $2 " " l }' "$WORK/table.txt" |
			grep -E "^($(IFS='|'; echo "${COMMANDS[*]}")) " | sort)" \
		"$(sed -n 's/^opt //p' "$WORK/man-table.txt" | sort)"
	check_eq "the man page's synopsis is the tables'" "$(norm <<<"$help_synopsis")" \
		"$(sed -n 's/^syn //p' "$WORK/man-table.txt" | norm)"
	if command -v man >/dev/null; then
		check "man -l renders it" bash -c "MANPAGER=cat man -l '$MAN' | grep -q 'vmprobe hist'"
	fi
fi

# The completion: what it offers, from the tables.
complete_words() { # WORDS...: what the completion offers for the last word
	# VMS: the VMs `vmprobe list` would give, a line each (none by default: it needs root and VMs).
	bash -c '. "$1"; shift; _vmprobe_vms() { [ -n "${VMS:-}" ] && printf "%s\n" "$VMS"; }
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _vmprobe; echo "${COMPREPLY[*]}"' \
		_ "$COMPLETION" "$@"
}
check "make built build/vmprobe.bash, valid bash" bash -n "$COMPLETION"
check_eq "completion: commands starting with t" "top" "$(complete_words vmprobe t)"
check_eq "completion: every command" "${COMMANDS[*]} --help --version" "$(complete_words vmprobe '')"
check_eq "completion: hist's options after its VM" \
	"$(awk '$1 == "opt" && $2 == "hist" { printf "%s%s", s, $3; s = " " }' "$WORK/table.txt")" \
	"$(complete_words vmprobe hist web --)"
check_eq "completion: config's actions" "check default" "$(complete_words vmprobe config '')"
check_eq "completion: help's operand, commands starting with h" "hist help" "$(complete_words vmprobe help h)"
touch "$WORK/some.yaml"
check_eq "completion: config check FILE completes a file name" "$WORK/some.yaml" \
	"$(complete_words vmprobe config check "$WORK/some")"
for c in "${COMMANDS[@]}"; do
	check_eq "completion: $c's options" \
		"$(awk -v c="$c" '$1 == "opt" && $2 == c { printf "%s%s", s, $3; s = " " }' "$WORK/table.txt")" \
		"$(complete_words vmprobe "$c" --)"
done
while read -r kind c long short arg comp values; do
	[ "$kind" = opt ] && [ "$arg" != - ] && [[ " ${COMMANDS[*]} " == *" $c "* ]] || continue
	case $comp in
	words) want="$values" ;;
	file) want="$WORK/some.yaml" ;;
	*) want="" ;;
	esac
	cur=""
	[ "$comp" = file ] && cur="$WORK/some"
	for o in "$long" "$short"; do
		[ "$o" = - ] && continue
		check_eq "completion: the value of $c $o ($comp)" "$want" "$(complete_words vmprobe "$c" "$o" "$cur")"
	done
done <"$WORK/table.txt"
check_eq "completion: top --sort fields starting with r" "rxpk rxbit riops rmb" \
	"$(complete_words vmprobe top --sort r)"
check_eq "completion: hist's VM" "web01 web02" "$(VMS=$'web01\nweb02\ndb01' complete_words vmprobe hist w)"
check_eq "completion: hist's VM after an option and its value" "web01 web02" \
	"$(VMS=$'web01\nweb02\ndb01' complete_words vmprobe hist -d 1 w)"
check_eq "completion: nothing after hist's VM" "" "$(VMS=$'web01\nweb02\ndb01' complete_words vmprobe hist web01 w)"
tap_done
