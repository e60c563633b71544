#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make fuzz: build the libFuzzer harnesses, replay the known bad inputs,
# and run each harness for SECONDS.
#
#   tests/fuzz/run.sh [SECONDS] [HARNESS...]     (default 600, all harnesses)
#
# 1. Regressions: every file in tests/fuzz/regressions/HARNESS/ is run once,
#    strictly; each is an input that once crashed or hung a harness, and
#    fails until its bug is fixed (see tests/fuzz/regressions/README).
# 2. Fuzzing: seeds from tests/fuzz/corpus/HARNESS/ (committed, small);
#    what the fuzzer finds goes to build/fuzz/corpus/HARNESS/ (not
#    committed) and is reused by the next run. libFuzzer runs in fork mode
#    and goes on after a crash, so a run lasts SECONDS whatever it finds;
#    crashes, sanitizer reports, invariant failures and hangs (an input past
#    FUZZ_TIMEOUT seconds) land in build/fuzz/artifacts/ and make the script
#    exit 1. Reproduce one with
#        build/fuzz/HARNESS build/fuzz/artifacts/HARNESS-crash-...
#    (NSHM_FUZZ_DEBUG=1 makes fuzz_receiver and fuzz_sender trace scripts).
#
# Each harness's line gives its executions, the rate, the executions per
# CPU-second (what the harness costs, whatever else loads the machine) and
# what that makes in 10 minutes on 2 cores (the goal: 1 M or more).
# fuzz_tree's corpus drifts to deep trees over a long run; a short run
# sees that rate with tests/fuzz/deep-seeds.py build/fuzz/corpus/fuzz_tree
# first.
#
# Environment: FUZZ_JOBS (workers, -fork=N, default 1), FUZZ_TIMEOUT (per
# input, default 10), FUZZ_MAX_LEN (4096;
# 16384 for fuzz_tree),
# FUZZ_ARGS (more libFuzzer options), FUZZ_NO_BUILD=1 (use build/fuzz as
# it is), FUZZ_TMP (TMPDIR of the harnesses, default a new directory in
# /dev/shm), FUZZ_CC (clang), FUZZ_KNOWN (known bugs the harnesses tolerate
# while fuzzing so that they look further, default "stale-ready,slot-crc",
# see tests/fuzz/regressions/README; empty to tolerate none).
set -uo pipefail
cd "$(dirname "$0")/../.."

secs=${1:-600}
shift || true
OUT=${FUZZ_OUT:-build/fuzz}
mkdir -p "$OUT"

if [ -z "${FUZZ_NO_BUILD:-}" ]; then
	echo "== building the harnesses into $OUT/"
	if ! bash tests/fuzz/build.sh fuzzers >"$OUT/build.log" 2>&1; then
		cat "$OUT/build.log" >&2
		echo "fuzz: build failed" >&2
		exit 1
	fi
fi

if [ $# -gt 0 ]; then
	harnesses=("$@")
else
	harnesses=()
	for f in tests/fuzz/fuzz_*.c; do
		harnesses+=("$(basename "$f" .c)")
	done
fi

status=0
echo "== regressions (tests/fuzz/regressions/)"
for h in "${harnesses[@]}"; do
	for f in tests/fuzz/regressions/"$h"/*; do
		[ -f "$f" ] || continue
		if timeout -s KILL 60 env -u NSHM_FUZZ_KNOWN "$OUT/$h" -runs=1 "$f" \
			>"$OUT/regression.log" 2>&1; then
			echo "regression $h/$(basename "$f"): ok"
		else
			status=1
			echo "regression $h/$(basename "$f"): FAILED"
			grep -aE 'invariant failed|ERROR: |runtime error|SUMMARY' "$OUT/regression.log" |
				head -5 | sed 's/^/    /'
		fi
	done
done

mkdir -p "$OUT/artifacts"
# fuzz_tree makes and removes a tree of directories per input under
# TMPDIR, and fork mode keeps its jobs' files there: in memory (/dev/shm)
# when it can, a directory of this run's own, removed after each harness
# and at the end (a worker killed at a timeout leaves its tree). On ext4
# the tree harness spent 85 % of its CPU in the kernel (0.76 M per 10 min
# on 2 cores; on tmpfs 2 M and more).
if [ -z "${FUZZ_TMP:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	FUZZ_TMP=$(mktemp -d /dev/shm/nshm-fuzz-tmp.XXXXXX) || FUZZ_TMP=
	[ -n "$FUZZ_TMP" ] && trap 'rm -rf "$FUZZ_TMP"' EXIT
fi
if [ -z "${FUZZ_TMP:-}" ]; then
	mkdir -p "$OUT/tmp"
	FUZZ_TMP=$OUT/tmp
fi
TMPDIR=$(cd "$FUZZ_TMP" && pwd)
export TMPDIR
export NSHM_FUZZ_KNOWN=${FUZZ_KNOWN-stale-ready,slot-crc}
for h in "${harnesses[@]}"; do
	corpus=$OUT/corpus/$h
	seeds=tests/fuzz/corpus/$h
	log=$OUT/$h.log
	mkdir -p "$corpus" "$seeds"
	# Archives need room: a pax entry is 1 KiB of headers at least.
	max_len=${FUZZ_MAX_LEN:-4096}
	[ "$h" = fuzz_tree ] && max_len=${FUZZ_MAX_LEN:-16384}
	before=$(find "$OUT/artifacts" -name "$h-*" | wc -l)
	echo "== $h: ${secs} s (log $log)"
	# entropic_scale_per_exec_time: prefer the fast inputs (the slow ones
	# wait out a timeout).
	# Timed by bash: wall and CPU (the workers are the fuzzer's children,
	# waited for, so their CPU counts).
	TIMEFORMAT='%R %U %S'
	# shellcheck disable=SC2086
	{ time "$OUT/$h" -fork="${FUZZ_JOBS:-1}" -ignore_crashes=1 -ignore_timeouts=1 \
		-ignore_ooms=1 -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-10}" \
		-max_len="$max_len" -print_final_stats=1 \
		-entropic_scale_per_exec_time=1 -rss_limit_mb=4096 \
		-artifact_prefix="$OUT/artifacts/$h-" ${FUZZ_ARGS:-} \
		"$corpus" "$seeds" >"$log" 2>&1; } 2>"$OUT/$h.time"
	rc=$?
	# Fork mode's status lines: "#N: cov: C ft: F corp: K exec/s E ...".
	last=$(grep -aE '^#[0-9]+: cov: ' "$log" | tail -1)
	execs=$(sed -n 's/^#\([0-9]*\):.*/\1/p' <<<"$last")
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	files=$(find "$corpus" -type f | wc -l)
	after=$(find "$OUT/artifacts" -name "$h-*" | wc -l)
	found=$((after - before))
	# The corpus's coverage, measured the usual way (one pass, no fork):
	# comparable between runs, unlike fork mode's running totals.
	"$OUT/$h" -runs=0 -timeout="${FUZZ_TIMEOUT:-10}" -max_len="$max_len" \
		"$corpus" "$seeds" >"$OUT/$h.cov.log" 2>&1
	rm -rf "${TMPDIR:?}"/nshm-fuzz-tree-*
	init=$(grep -aE '^#[0-9]+[[:space:]]+INITED cov: ' "$OUT/$h.cov.log" | tail -1)
	icov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$init")
	ift=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$init")
	read -r wall user sys <"$OUT/$h.time" 2>/dev/null || true
	rates=$(awk -v n="${execs:-0}" -v w="${wall:-0}" -v u="${user:-0}" -v s="${sys:-0}" \
		-v j="${FUZZ_JOBS:-1}" 'BEGIN {
			cpu = u + s
			if (w <= 0 || cpu <= 0 || n <= 0) { print "rate unknown"; exit }
			# 10 minutes on 2 cores: 1200 CPU-seconds at this cost per input.
			printf "%.0f exec/s with %d worker(s), %.0f per CPU-second, %.2f M per 10 min on 2 cores",
				n / w, j, n / cpu, n / cpu * 1200 / 1e6 }')
	printf '%s: %s execs in %s s (%s; fork mode cov: %s ft: %s), corpus %s files: cov: %s ft: %s, %s new crashes\n' \
		"$h" "${execs:-?}" "$secs" "$rates" "${cov:-?}" "${ft:-?}" "$files" "${icov:-?}" \
		"${ift:-?}" "$found"
	if [ "$found" -gt 0 ] || { [ "$rc" -ne 0 ] && [ -z "$last" ]; }; then
		status=1
		echo "$h: FAILED (exit $rc)"
		find "$OUT/artifacts" -name "$h-*" -newer "$OUT/build.log" | head -5 | sed 's/^/    /'
		grep -aE 'invariant failed|ERROR: AddressSanitizer|runtime error|SUMMARY' "$log" |
			sort | uniq -c | sort -rn | head -10
	fi
done
exit $status
