#!/bin/bash
# net_taps.sh with vmprobe's programs as clsact filters (network.tc_hook:
# clsact), the hook of kernels without TCX: exact counts, foreign filters
# kept, stale filters of a killed vmprobe replaced.
TC_HOOK=clsact exec bash "$(dirname "$0")/net_taps.sh"
