#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The harnesses still see: each of them, linked with a library file into
# which a bug is planted on purpose (tests/fuzz/build.sh planted), is
# fuzzed from its committed seeds until it fails the invariant the bug
# breaks, within SECONDS each (default 120); the receiver's and the
# sender's need inputs the seeds are not, fuzz_tree's a seed reaches:
#
#   tests/fuzz/plant.sh [SECONDS] [HARNESS...]
#
# What makes the protocol harnesses fast (peers as coroutines in virtual
# time, a switch of their own, a world reused between inputs) must not
# make them blind; this shows it did not, one bug per harness. Prints, per
# plant, the executions and seconds it took; exits 1 if one was not found.
# FUZZ_NO_BUILD=1 uses build/fuzz as it is (FUZZ_OUT: another directory).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

secs=${1:-120}
shift || true
OUT=${FUZZ_OUT:-build/fuzz}
mkdir -p "$OUT/plant"

# HARNESS@FILE@SED@what the failure says
plants=(
	# The receiver hands on bits of the offered mode above 07777 (one
	# more in the mask): no seed offers such a mode, so the fuzzer has to.
	"fuzz_receiver@lib/proto/validate.c@s/meta->mode = o->mode \\& 07777;/meta->mode = o->mode \\& 017777;/@meta.mode & ~07777u"
	# The sender's checksum leaves out a byte of a write that goes on
	# filling the tenth slot (nshm_tx_write in pieces): the seeds write
	# in pieces 8 slots at most, so the fuzzer has to make a longer one.
	"fuzz_sender@lib/proto/tx.c@s/tx->slot_crc = nshm_crc32(tx->slot_crc, p, n);/tx->slot_crc = nshm_crc32(tx->slot_crc, p, n - (tx->fill > 0 \\&\\& tx->k == 9));/@succeeded with crc32"
	# The tree receiver's own writer replaces an existing victim.txt
	# without --force. A seed ("replace") reaches it at once: what this
	# shows is that the world kept between inputs (make_world, sweep)
	# still tells a replaced file. (A plant for dest/sub/keep, which no
	# seed reaches, was not found in 180 s: a tar header's checksum makes
	# names hard to mutate.)
	"fuzz_tree@lib/tree/rx_dest.c@s/nshm_publish(dfd, tmp, base, force)/nshm_publish(dfd, tmp, base, force || !strcmp(base, \"victim.txt\"))/@dest\/victim.txt is another inode"
)

if [ -z "${FUZZ_NO_BUILD:-}" ] || [ ! -e "$OUT/libnshm-fuzz.a" ]; then
	if ! FUZZ_OUT=$OUT bash tests/fuzz/build.sh fuzzers >"$OUT/plant/build.log" 2>&1; then
		cat "$OUT/plant/build.log" >&2
		exit 1
	fi
fi

# In memory when it can (fuzz_tree makes a tree per input: run.sh).
if [ -d /dev/shm ] && [ -w /dev/shm ] && tmp=$(mktemp -d /dev/shm/nshm-fuzz-plant.XXXXXX); then
	trap 'rm -rf "$tmp"' EXIT
else
	tmp=$OUT/plant/tmp
	mkdir -p "$tmp"
fi
TMPDIR=$(cd "$tmp" && pwd)
export TMPDIR
export NSHM_FUZZ_KNOWN=${FUZZ_KNOWN-stale-ready,slot-crc}
status=0
for p in "${plants[@]}"; do
	IFS='@' read -r h file expr says <<<"$p"
	if [ $# -gt 0 ] && [[ " $* " != *" $h "* ]]; then
		continue
	fi
	if ! FUZZ_OUT=$OUT bash tests/fuzz/build.sh planted "$h" "$file" "$expr" \
		>"$OUT/plant/$h.build.log" 2>&1; then
		cat "$OUT/plant/$h.build.log" >&2
		status=1
		continue
	fi
	corpus=$OUT/plant/corpus-$h
	rm -rf "$corpus" "$OUT/plant/$h-crash-"*
	mkdir -p "$corpus"
	max_len=4096
	[ "$h" = fuzz_tree ] && max_len=16384
	log=$OUT/plant/$h.log
	start=$(date +%s)
	# Not fork mode: the first failure ends the run.
	"$OUT/$h-planted" -max_total_time="$secs" -timeout=10 -max_len="$max_len" \
		-rss_limit_mb=4096 -artifact_prefix="$OUT/plant/$h-" \
		"$corpus" "tests/fuzz/corpus/$h" >"$log" 2>&1
	took=$(($(date +%s) - start))
	rm -rf "${TMPDIR:?}"/nshm-fuzz-tree-*
	execs=$(grep -aoE '^#[0-9]+' "$log" | tail -1)
	if grep -aq "$says" "$log"; then
		echo "$h: found the bug planted in $file in ${took} s (${execs:-#?} execs): $(grep -aom1 "invariant failed: .*" "$log" | cut -c1-100)"
	else
		status=1
		echo "$h: did NOT find the bug planted in $file within $secs s (${execs:-#?} execs; log $log)"
	fi
done
exit $status
