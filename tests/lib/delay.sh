# shellcheck shell=bash
# A known network delay for integration tests (this kernel has no netem):
#
#   guest tap ──┐
#               ├── bridge DELAY_BR ── DELAY_TAP_A ═ delayline (D ms each way) ═ DELAY_TAP_B
#   (host netns)┘                                                  (netns DELAY_NS, DELAY_PEER_IP)
#
# A guest on a tap enslaved to the bridge reaches the peer namespace through
# build/tests/tools/delayline: a round trip takes 2D plus the ends' own time.
# The host netns has no address on this segment: only the guest and the peer
# talk on it. IPv6 is off on every device, so the only traffic is what the
# ends send (plus ARP, which is delayed too).
#
#   . tests/lib/delay.sh              # needs REPO and WORK
#   delay_setup 20 [DELAYLINE_OPTIONS...]   # bridge, netns, taps, delay line
#   delay_attach TAP                  # enslave a (guest) tap to the bridge
#   ip netns exec "$DELAY_NS" CMD     # run the peer
#   delay_teardown                    # safe in an EXIT trap; idempotent
#
# Names (override before delay_setup): DELAY_NS, DELAY_BR, DELAY_TAP_A,
# DELAY_TAP_B, DELAY_PEER_IP (ADDR/PREFIX). The delay line's stdout (ready
# line, final counters) is in $WORK/delayline.out, its stderr (deliberate
# drops) in $WORK/delayline.err.

DELAYLINE=${DELAYLINE:-$REPO/build/tests/tools/delayline}
DELAY_NS=${DELAY_NS:-vmprobe-peer}
DELAY_BR=${DELAY_BR:-vmpbr-d0}
DELAY_TAP_A=${DELAY_TAP_A:-vmpt-da}
DELAY_TAP_B=${DELAY_TAP_B:-vmpt-db}
DELAY_PEER_IP=${DELAY_PEER_IP:-10.78.0.1/24}
DELAYLINE_PID=

# A device up, with IPv6 off before it comes up (no DAD, RS or MLD frames).
_delay_up() { # [NETNS] DEV
	local -a ns=()
	[ $# -eq 2 ] && ns=(ip netns exec "$1") && shift
	"${ns[@]}" sysctl -qw "net.ipv6.conf.$1.disable_ipv6=1" &&
		"${ns[@]}" ip link set "$1" up
}

# delay_setup MS [DELAYLINE_OPTIONS...]
# Builds the topology above and starts the delay line with a delay of MS ms
# each way; returns once it is forwarding. Removes leftovers of an earlier
# run first.
delay_setup() {
	local ms=$1; shift
	delay_teardown
	ip netns add "$DELAY_NS" &&
		ip -n "$DELAY_NS" link set lo up &&
		ip link add "$DELAY_BR" type bridge &&
		_delay_up "$DELAY_BR" &&
		ip tuntap add dev "$DELAY_TAP_A" mode tap &&
		ip link set "$DELAY_TAP_A" master "$DELAY_BR" &&
		_delay_up "$DELAY_TAP_A" &&
		ip -n "$DELAY_NS" tuntap add dev "$DELAY_TAP_B" mode tap &&
		ip -n "$DELAY_NS" addr add "$DELAY_PEER_IP" dev "$DELAY_TAP_B" &&
		_delay_up "$DELAY_NS" "$DELAY_TAP_B" || return
	"$DELAYLINE" -d "$ms" --netns "$DELAY_NS" "$@" "$DELAY_TAP_A" "$DELAY_TAP_B" \
		>"$WORK/delayline.out" 2>"$WORK/delayline.err" &
	DELAYLINE_PID=$!
	wait_for 5 grep -q '^delayline: ready' "$WORK/delayline.out" || {
		cat "$WORK/delayline.err" >&2
		return 1
	}
}

delay_attach() { # TAP
	ip link set "$1" master "$DELAY_BR" && _delay_up "$1"
}

# Stops the delay line (its final counters go to $WORK/delayline.out) and
# removes the bridge, the taps and the namespace.
delay_teardown() {
	if [ -n "$DELAYLINE_PID" ]; then
		kill -TERM "$DELAYLINE_PID" 2>/dev/null
		wait "$DELAYLINE_PID" 2>/dev/null
		DELAYLINE_PID=
	fi
	ip link del "$DELAY_TAP_A" 2>/dev/null
	ip link del "$DELAY_BR" 2>/dev/null
	ip netns del "$DELAY_NS" 2>/dev/null # takes DELAY_TAP_B with it
	return 0
}

_delay_lines() { grep -c "^delayline: $1 " "$WORK/delayline.out"; } # DIR
_delay_more_lines() { [ "$(_delay_lines "$1")" -gt "$2" ]; }         # DIR COUNT

# The delay line's counter FIELD for direction A->B or B->A, as of now
# (SIGUSR1 makes it print them), e.g. delay_counter B->A dropped_on_purpose.
delay_counter() { # DIR FIELD
	local before
	before=$(_delay_lines "$1")
	kill -USR1 "$DELAYLINE_PID" || return
	wait_for 2 _delay_more_lines "$1" "$before" || return
	grep "^delayline: $1 " "$WORK/delayline.out" | tail -1 | grep -o "$2=[0-9]*" | cut -d= -f2
}

