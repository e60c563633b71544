#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# bench/resident-latency.sh [RUNS]: one 4 KiB file from the start of
# nshm-put to the file verified and in place at a resident receiver
# (nshm-get --serve) on this host; nshm-put exits only once the receiver
# said so. Measured twice: back to back (the resident busy) and after 3 s
# of silence (the resident idle, polling every 200 ms). `cp` of the same
# file beside it, in the same run. Medians and ranges in milliseconds.
set -euo pipefail
# Times from bash's own clock ($EPOCHREALTIME, with a decimal point in C):
# a `date` per reading would add a process start to every figure.
export LC_ALL=C
cd "$(dirname "$0")/.."
RUNS=${1:-21}
B=${NSHM_BIN:-build}
# shellcheck source=../tests/lib/common.sh
. tests/lib/common.sh
scratch lat
region=$REGION dir=$WORK
srv=
at_exit '[ -z "$srv" ] || { kill "$srv" 2>/dev/null; wait 2>/dev/null; }'
mkdir "$dir/in"
head -c 4096 /dev/urandom >"$dir/f"
"$B/nshm-get" --serve -q -s "$region" "$dir/in" 2>"$dir/serve.err" &
srv=$!
sleep 0.5


# one MODE I: milliseconds for one transfer (or cp) of the 4 KiB file.
one() {
	local t0 t1
	rm -f "$dir/in/f" "$dir/cp"
	t0=$EPOCHREALTIME
	if [ "$1" = cp ]; then
		cp "$dir/f" "$dir/cp"
	else
		"$B/nshm-put" -q --timeout 10 "$dir/f" "$region"
	fi
	t1=$EPOCHREALTIME
	[ "$1" = cp ] || cmp -s "$dir/f" "$dir/in/f" || { echo "not verified" >&2; exit 1; }
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1e3 }'
}

stats() { median_fmt 'median %.2f ms (%.2f-%.2f, n=%d)\n'; }

one busy >/dev/null   # warm-up
echo "busy resident: $(for _ in $(seq "$RUNS"); do one busy; done | stats)"
echo "cp of the file: $(for _ in $(seq "$RUNS"); do one cp; done | stats)"
idle_runs=$(( RUNS < 7 ? RUNS : 7 ))
echo "idle resident (3 s of silence before each): $(for _ in $(seq "$idle_runs"); do sleep 3; one idle; done | stats)"
