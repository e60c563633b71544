#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Which way of checksumming what reached the destination costs less?
#   copy:     copy each piece of a slot into private memory, CRC it, write it
#   readback: write straight from the slot, CRC the written range through a
#             read-only mapping of the file (NSHM_VERIFY=readback)
# Alternates the two, RUNS times each, and prints the median receive rate.
# usage: bench/verify-modes.sh [MIB] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-512} runs=${2:-5}
region=nshm-verify-$$
work=$(mktemp -d /dev/shm/nshm-verify.XXXXXX)
trap 'rm -rf "$work"; rm -f /dev/shm/$region' EXIT
truncate -s 64M /dev/shm/$region
head -c "${mib}M" /dev/urandom >"$work/src"
cp "$work/src" "$work/warm" && rm "$work/warm"

once() {
	local mode=$1 out=$work/out
	rm -f "$out"
	if [ "$mode" = readback ]; then
		NSHM_VERIFY=readback build/nshm-get --json -s "$region" "$out" >"$work/get.json" &
	else
		build/nshm-get --json -s "$region" "$out" >"$work/get.json" &
	fi
	build/nshm-put -q "$work/src" "$region"
	wait $!
	cmp -s "$work/src" "$out" || { echo "$mode: output differs" >&2; exit 1; }
	sed -n 's/.*"mbps":\([0-9.]*\).*/\1/p' "$work/get.json"
}

declare -A rates
for ((i = 0; i < runs; i++)); do
	for mode in copy readback; do
		rates[$mode]+="$(once $mode) "
	done
done
for mode in copy readback; do
	printf '%-9s median %s MB/s  (runs: %s)\n' "$mode" \
		"$(tr ' ' '\n' <<<"${rates[$mode]}" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')" \
		"${rates[$mode]}"
done
