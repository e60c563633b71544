#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make check: every suite, once as built and once under ASan+UBSan, then
# one closing line "N passed, N failed[, N skipped]". Each suite speaks TAP.
set -uo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-2}
passed=0 failed=0 skipped=0
LOG=${NSHM_CHECK_LOG:-build/check.log}
RECAP=build/check.recap
mkdir -p build
: >"$LOG"
: >"$RECAP"

# count SUITE CMD...: run a TAP producer, echo its lines, add up results;
# the suite's wall time closes its line (tests/README.md's figures).
count() {
	local suite=$1; shift
	local out rc p f s t0=$SECONDS
	echo "== $suite" | tee -a "$LOG"
	out=$("$@" 2>&1)
	rc=$?
	printf '%s\n' "$out" >>"$LOG"
	printf '%s\n' "$out" | grep -E '^(not ok|ok .*# skip|#)' | sed "s/^/  [$suite] /" | head -40
	# The recap at the end: each failing test and its first lines.
	printf '%s\n' "$out" | awk -v s="$suite" '
		/^not ok / { n = 8; print "  [" s "] " $0; next }
		n > 0 && /^#/ { n--; print "  [" s "]   " $0; next }
		{ n = 0 }' >>"$RECAP"
	p=$(printf '%s\n' "$out" | grep -E '^ok ' | grep -vciE '# skip' || true)
	s=$(printf '%s\n' "$out" | grep -E '^ok ' | grep -ciE '# skip' || true)
	f=$(printf '%s\n' "$out" | grep -cE '^not ok ' || true)
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "  [$suite] exited $rc without a failing test: counted as one failure" |
			tee -a "$RECAP"
		f=1
	fi
	echo "  $suite: $p passed, $f failed, $s skipped ($((SECONDS - t0)) s)"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

build() {
	local t0=$SECONDS
	if ! make -s -j"$JOBS" "$@" all unit >>"$LOG" 2>&1; then
		echo "build failed: make $*; see $LOG" | tee -a "$RECAP" >&2
		tail -30 "$LOG" >&2
		failed=$((failed + 1))
		return 1
	fi
	echo "== build: make${*:+ $*} all unit ($((SECONDS - t0)) s)"
}

unit_suites() {
	local dir=$1 label=$2 t
	for t in "$dir"/tests/test_*; do
		case $t in *.d) continue ;; esac
		count "$label:$(basename "$t")" "$t"
	done
}

bats_suite() {
	local label=$1 file=$2
	count "$label:$(basename "$file" .bats)" bats --tap "$file"
}

# -Wall -Wextra -Wpedantic clean with both compilers: one TAP line each.
warnings_tap() {
	local n=0 cc
	for cc in gcc clang; do
		n=$((n + 1))
		if ! command -v $cc >/dev/null; then
			echo "ok $n - $cc builds without warnings # skip $cc not installed"
		elif make -s -j"$JOBS" BUILD=build-$cc CC=$cc CFLAGS="-O2 -Werror" all unit >build/$cc.log 2>&1; then
			echo "ok $n - $cc builds without warnings"
		else
			echo "not ok $n - $cc builds without warnings"
			sed 's/^/# /' build/$cc.log | tail -20
		fi
	done
	echo "1..$n"
}

# The guest lane: tests/guest/'s suites, started beside tests/vm/'s. Each
# side is one emulated guest at a time, a single vCPU (TCG, unless KVM) that
# keeps one core busy while its suite mostly waits on it: on 2 cores the two
# sides take about as long together as the longer one alone. Its output and
# log are kept apart and shown, in order, once both sides are done.
guest_lane() {
	passed=0 failed=0 skipped=0 LOG=build/check-guest.log
	: >"$LOG"
	for f in tests/guest/*.bats; do
		bats_suite bats "$f"
	done >build/check-guest.out 2>&1
	echo "$passed $failed $skipped" >build/check-guest.counts
}

join_guest_lane() {
	local p=0 f=1 s=0
	cat build/check-guest.out
	cat build/check-guest.log >>"$LOG"
	read -r p f s <build/check-guest.counts 2>/dev/null ||
		echo "  guest lane: no counts (it died): counted as one failure" |
			tee -a "$RECAP"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

count warnings warnings_tap

if build; then
	unit_suites build unit
	for f in tests/*.bats; do
		bats_suite bats "$f"
	done
	# NSHM_CHECK_SERIAL=1: the guest lane after the VM suites, not beside.
	rm -f build/check-guest.counts
	[ -n "${NSHM_CHECK_SERIAL:-}" ] || { guest_lane & }
	for f in tests/vm/*.bats; do
		bats_suite bats "$f"
	done
	if [ -n "${NSHM_CHECK_SERIAL:-}" ]; then
		(guest_lane)
	else
		wait
	fi
	join_guest_lane
fi

# The same library and CLI suites under the sanitizers.
if build BUILD=build-san SAN=1; then
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	unit_suites build-san asan
	NSHM_BIN=$PWD/build-san bats_suite asan tests/cli.bats
	NSHM_BIN=$PWD/build-san bats_suite asan tests/hostile.bats
fi

# Memcheck over the unit tests and one real transfer: leaks and bad reads.
count valgrind bash tests/fuzz/valgrind.sh

# A failed run keeps its log outside the tree too (CI's clone is removed
# when it ends; its machine and /var/tmp stay): the newest 5 are kept.
keep_log() {
	local dir=${NSHM_CHECK_KEEP:-/var/tmp/nshm-check-logs} d
	d=$dir/$(date -u +%Y%m%dT%H%M%SZ)-$(git rev-parse --short HEAD 2>/dev/null || echo tree)-$$
	mkdir -p "$d" 2>/dev/null && cp "$LOG" "$RECAP" "$d"/ 2>/dev/null || return 0
	ls -1d "$dir"/*/ 2>/dev/null | head -n -5 | xargs -r rm -rf
	echo "== the log is kept in $d"
}

if [ -s "$RECAP" ]; then
	echo "== failed (each test's whole output: $LOG)"
	head -60 "$RECAP"
	keep_log
fi
echo "== make check: $SECONDS s in all"
line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
