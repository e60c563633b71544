#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make demo: send a sample file from nshm-put to nshm-get through a POSIX shm
# object on this machine, verify it, and print the rate beside cp's, measured
# as bench/run measures it: a warm-up round, then DEMO_RUNS rounds (default
# 5) in which nshm and cp take turns; each rate is over the whole transfer,
# from starting both ends to both exiting; the median with the range. Every
# copy is compared with the source. Says which CRC-32 implementation both
# ends used. DEMO_MIB (default 256) sets the file's size.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C # decimal points in $EPOCHREALTIME and printf

size_mib=${DEMO_MIB:-256}
runs=${DEMO_RUNS:-5}
bytes=$((size_mib << 20))
# shellcheck source=lib/common.sh
. tests/lib/common.sh
scratch demo
region=$REGION work=$WORK
get_pid=
at_exit '[ -z "$get_pid" ] || kill "$get_pid" 2>/dev/null'
echo "demo: $size_mib MiB of random data, region /dev/shm/$region (64 MiB), files on tmpfs"
head -c "${size_mib}M" /dev/urandom >"$work/sample.bin"
mkdir "$work/out"

field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1"; }
now_us() { echo "${EPOCHREALTIME/./}"; }
rate() { awk -v n="$bytes" -v us="$1" 'BEGIN { printf "%.0f\n", n / us }'; } # MB/s

# One transfer each; prints MB/s. The receiver starts first so that the
# sender never waits on a process not yet forked; the clock runs from its
# start to both ends' exit, as in bench/run.
xfer_nshm() {
	local t0 t1 rc=0
	t0=$(now_us)
	build/nshm-get --json -s "$region" "$work/out/nshm.bin" >"$work/get.json" &
	get_pid=$!
	build/nshm-put --json "$work/sample.bin" "$region" >"$work/put.json" || rc=$?
	wait "$get_pid" || rc=$?
	get_pid=
	t1=$(now_us)
	[ "$rc" -eq 0 ] || { echo "demo: FAILED: nshm-put or nshm-get exited $rc" >&2; return 1; }
	verify "$work/out/nshm.bin"
	rate $((t1 - t0))
}
xfer_cp() {
	local t0 t1
	t0=$(now_us)
	cp "$work/sample.bin" "$work/out/cp.bin"
	t1=$(now_us)
	verify "$work/out/cp.bin"
	rate $((t1 - t0))
}
hash_next=
verify() {
	if [ -n "$hash_next" ]; then
		sha256sum <"$1" | cut -d' ' -f1 >"$work/got.sha256"
		hash_next=
	fi
	cmp -s "$work/sample.bin" "$1" || { echo "demo: FAILED: $1 differs from the source" >&2; return 1; }
	rm "$1"
}
# median and range of the numbers on stdin: "M (MIN-MAX)"
summary() { median_fmt '%.0f MB/s (%.0f-%.0f)'; }

# The warm-up round (memory touched for the first time is slow, on a VM
# above all: see shared/notes/perf-facts.md); its copy is also checked by
# SHA-256, for the reader.
hash_next=1
xfer_nshm >/dev/null
xfer_cp >/dev/null

: >"$work/nshm.rates"
: >"$work/cp.rates"
for ((i = 1; i <= runs; i++)); do
	xfer_nshm >>"$work/nshm.rates"
	xfer_cp >>"$work/cp.rates"
done

crc_get=$(field "$work/get.json" crc32_impl) crc_put=$(field "$work/put.json" crc32_impl)
want=$(sha256sum <"$work/sample.bin" | cut -d' ' -f1)
got=$(cat "$work/got.sha256")
echo "sent:     sha256 $want"
echo "received: sha256 $got (and each of the $((runs + 1)) copies compared with the source)"
[ "$want" = "$got" ] || { echo "demo: FAILED: checksums differ" >&2; exit 1; }
case $crc_get/$crc_put in
isa-l/isa-l) echo "crc32:    isa-l on both sides" ;;
*)
	echo "crc32:    receiver $crc_get, sender $crc_put"
	if grep -q '^HAVE_ISAL=no' build/config.mk 2>/dev/null; then
		echo "          (built without ISA-L, see build/config.mk: install libisal-dev, or run make deps as root, then make)"
	else
		echo "          (ISA-L is built in; zlib was faster on this CPU)"
	fi
	;;
esac
nshm=$(summary <"$work/nshm.rates") cp=$(summary <"$work/cp.rates")
echo "nshm:     median $nshm over $runs runs after a warm-up"
echo "cp:       median $cp, same file, same tmpfs, in turns with nshm"
awk -v a="${nshm%% *}" -v b="${cp%% *}" 'BEGIN { printf "nshm/cp:  %.2fx (medians)\n", a / b }'
echo "demo: OK"
