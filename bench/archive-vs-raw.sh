#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# One file sent raw versus the same file inside an archive (a directory
# holding it), alternating, RUNS times each; prints the median rate of each,
# then files/s for a tree of 1000 files of 4 KiB.
# usage: bench/archive-vs-raw.sh [MIB] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024} runs=${2:-5}
# shellcheck source=../tests/lib/common.sh
. tests/lib/common.sh
scratch avr
region=$REGION work=$WORK
mkdir -p "$work/dir" "$work/many"
head -c "${mib}M" /dev/urandom >"$work/dir/file"
for i in $(seq 1 1000); do head -c 4096 /dev/urandom >"$work/many/f$i"; done
cp "$work/dir/file" "$work/warm" && rm "$work/warm"

# once WHAT: seconds from starting both ends to both exiting, verified.
once() {
	local what=$1 t0 t1
	rm -rf "$work/out" && mkdir "$work/out"
	t0=$(date +%s.%N)
	build/nshm-get -q -s "$region" "$work/out" &
	build/nshm-put -q ${PUT_OPTS:-} "$what" "$region"
	wait $!
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }'
}
raw="" arc="" many=""
for ((i = 0; i < runs; i++)); do
	raw+="$(once "$work/dir/file") "
	cmp -s "$work/dir/file" "$work/out/file" || { echo "raw: differs" >&2; exit 1; }
	arc+="$(once "$work/dir") "
	cmp -s "$work/dir/file" "$work/out/dir/file" || { echo "archive: differs" >&2; exit 1; }
	many+="$(once "$work/many") "
	[ "$(ls "$work/out/many" | wc -l)" -eq 1000 ] || { echo "many: missing files" >&2; exit 1; }
done
bytes=$((mib << 20))
r=$(median <<<"$raw") a=$(median <<<"$arc") m=$(median <<<"$many")
awk -v b="$bytes" -v r="$r" -v a="$a" -v m="$m" -v rs="$raw" -v as="$arc" -v ms="$many" 'BEGIN {
	printf "raw file:        %.0f MB/s (median of %s s)\n", b / r / 1e6, rs
	printf "inside archive:  %.0f MB/s (median of %s s), %.1f%% of raw\n", b / a / 1e6, as, 100 * r / a
	printf "1000 x 4 KiB:    %.0f files/s (median of %s s)\n", 1000 / m, ms
}'
