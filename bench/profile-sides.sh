#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Load-independent costs of both ends (#14): callgrind instruction counts
# and strace -c system call counts of nshm-put and nshm-get, for 1000 files
# of 4 KiB sent as ./* (as bench/run sends them) and for one 256 MiB file.
# Wall-clock figures on a shared machine move +-50 % with load; these do not.
#
# usage: bench/profile-sides.sh [BUILD_DIR] [files|big]...   (default build, both)
# Output: the top entries of each, and the raw files under $OUT
# (default /dev/shm/nshm-prof.PID, kept).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-build}")
shift || true
cases=("${@:-files}")
[ $# -gt 0 ] || cases=(files big)
OUT=${OUT:-/dev/shm/nshm-prof.$$}
mkdir -p "$OUT/many"
# valgrind hides AVX-512, and the first-use timing then picks zlib for
# CRC-32: ask for ISA-L, which the programs use natively.
export NSHM_CRC=${NSHM_CRC:-isal}
for i in $(seq 1 1000); do [ -e "$OUT/many/f$i" ] || head -c 4096 /dev/urandom >"$OUT/many/f$i"; done
[ -e "$OUT/big" ] || head -c 256M /dev/urandom >"$OUT/big"
region=nshm-prof-$$
trap 'rm -f /dev/shm/$region' EXIT

# once CASE TOOL: one transfer with both ends under TOOL (callgrind|strace).
once() {
	local what=$1 tool=$2 g wg wp
	case $tool in
	callgrind) wg=(valgrind -q --tool=callgrind --callgrind-out-file="$OUT/cg.get.$what")
		   wp=(valgrind -q --tool=callgrind --callgrind-out-file="$OUT/cg.put.$what") ;;
	strace) wg=(strace -f -c -o "$OUT/st.get.$what")
		wp=(strace -f -c -o "$OUT/st.put.$what") ;;
	esac
	truncate -s 64M "/dev/shm/$region"
	rm -rf "$OUT/out" && mkdir "$OUT/out"
	"${wg[@]}" "$bin/nshm-get" -q -f --peer-timeout 300 -s "$region" "$OUT/out" &
	g=$!
	if [ "$what" = files ]; then
		(cd "$OUT/many" && "${wp[@]}" "$bin/nshm-put" -q --peer-timeout 300 ./* "$region")
	else
		"${wp[@]}" "$bin/nshm-put" -q --peer-timeout 300 "$OUT/big" "$region"
	fi
	wait "$g"
	rm -f "/dev/shm/$region"
}

for what in "${cases[@]}"; do
	once "$what" callgrind
	once "$what" strace
	for side in put get; do
		echo "== nshm-$side, $what: callgrind (instructions, exclusive)"
		callgrind_annotate --inclusive=no "$OUT/cg.$side.$what" 2>/dev/null |
			grep -A12 'PROGRAM TOTALS' | grep -v '^--\|^Ir\|^$' | cut -c1-120
		echo "== nshm-$side, $what: system calls (strace -f -c)"
		awk 'NR > 2 && $1 !~ /^-/ { print "  " $NF ": " $4 " calls" }' \
			"$OUT/st.$side.$what" | head -14
	done
done
echo "raw files in $OUT"
