#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make demo: send a sample file from nshm-put to nshm-get through a POSIX shm
# object on this machine, verify it, and print the rate beside cp's.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib=${DEMO_MIB:-256}
region=nshm-demo-$$
work=$(mktemp -d /dev/shm/nshm-demo.XXXXXX)
trap 'rm -rf "$work"; rm -f /dev/shm/$region; [ -n "${get_pid:-}" ] && kill "$get_pid" 2>/dev/null; true' EXIT

# The object QEMU would create with -object memory-backend-file,...,share=on.
truncate -s 64M /dev/shm/$region
echo "demo: $size_mib MiB of random data, region /dev/shm/$region (64 MiB), files on tmpfs"
head -c "${size_mib}M" /dev/urandom >"$work/sample.bin"
mkdir "$work/out"
# Touch the destination's memory once so that neither method pays for
# first-touch page allocation (see shared/notes/perf-facts.md).
cp "$work/sample.bin" "$work/warm" && rm "$work/warm"

build/nshm-get --json -s "$region" "$work/out" >"$work/get.json" &
get_pid=$!
build/nshm-put --json "$work/sample.bin" "$region" >"$work/put.json"
wait "$get_pid"
get_pid=

want=$(sha256sum <"$work/sample.bin" | cut -d' ' -f1)
got=$(sha256sum <"$work/out/sample.bin" | cut -d' ' -f1)
echo "sent:     sha256 $want"
echo "received: sha256 $got"
[ "$want" = "$got" ] || { echo "demo: FAILED: checksums differ" >&2; exit 1; }

field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1"; }
echo "nshm:     $(field "$work/put.json" bytes) bytes in $(field "$work/get.json" seconds) s," \
     "$(field "$work/get.json" mbps) MB/s, crc32 $(field "$work/get.json" crc32)"
rm "$work/out/sample.bin"
t0=$(date +%s.%N)
cp "$work/sample.bin" "$work/out/cp.bin"
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v n="$((size_mib << 20))" \
    'BEGIN { printf "cp:       %d bytes in %.3f s, %.1f MB/s (same file, same tmpfs)\n", n, b - a, n / (b - a) / 1e6 }'
echo "demo: OK"
