#!/usr/bin/env bash
# make fuzz: build the libFuzzer harnesses and run each for SECONDS.
#
#   tests/fuzz/run.sh [SECONDS] [HARNESS...]     (default 600, all harnesses)
#
# Seeds come from tests/fuzz/corpus/HARNESS/ (committed, small); what the
# fuzzer finds goes to build/fuzz/corpus/HARNESS/ (not committed) and is
# reused by the next run. Crashes, sanitizer reports, invariant failures and
# hangs (an input running past FUZZ_TIMEOUT seconds) are written to
# build/fuzz/artifacts/ and make the script exit 1. Reproduce one with
#   build/fuzz/HARNESS build/fuzz/artifacts/HARNESS-crash-...
# (NSHM_FUZZ_DEBUG=1 makes fuzz_receiver and fuzz_sender trace their script).
#
# Environment: FUZZ_TIMEOUT (per input, default 10), FUZZ_MAX_LEN (default
# 4096), FUZZ_ARGS (more libFuzzer options), FUZZ_NO_BUILD=1 (use what is
# in build/fuzz), FUZZ_CC (default clang).
set -uo pipefail
cd "$(dirname "$0")/../.."

secs=${1:-600}
shift || true
OUT=${FUZZ_OUT:-build/fuzz}

if [ -z "${FUZZ_NO_BUILD:-}" ]; then
	echo "== building the harnesses into $OUT/"
	mkdir -p "$OUT"
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

mkdir -p "$OUT/artifacts"
status=0
for h in "${harnesses[@]}"; do
	corpus=$OUT/corpus/$h
	seeds=tests/fuzz/corpus/$h
	log=$OUT/$h.log
	mkdir -p "$corpus" "$seeds"
	echo "== $h: ${secs} s (log $log)"
	# Each input must finish well under FUZZ_TIMEOUT: a hang is a failure.
	# entropic_scale_per_exec_time: prefer the fast inputs (the receiver's
	# slow ones wait out a timeout).
	# shellcheck disable=SC2086
	"$OUT/$h" -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-10}" \
		-max_len="${FUZZ_MAX_LEN:-4096}" -print_final_stats=1 \
		-entropic_scale_per_exec_time=1 -rss_limit_mb=4096 \
		-artifact_prefix="$OUT/artifacts/$h-" ${FUZZ_ARGS:-} \
		"$corpus" "$seeds" >"$log" 2>&1
	rc=$?
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
	rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
	last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	files=$(find "$corpus" -type f | wc -l)
	printf '%s: %s execs (%s/s), cov: %s ft: %s, corpus %s files\n' "$h" \
		"${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$files"
	if [ "$rc" -ne 0 ]; then
		status=1
		echo "$h: FAILED (exit $rc)"
		grep -E 'ERROR|invariant failed|Test unit written|SUMMARY|timeout after' "$log" | head -20
		grep -A30 -m1 -E '^(==[0-9]+==ERROR|.*invariant failed)' "$log" | head -40
	fi
done
exit $status
