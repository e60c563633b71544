#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make check: every suite, once as built and once under ASan+UBSan, then
# one closing line "N passed, N failed[, N skipped]". Each suite speaks TAP.
set -uo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-2}
passed=0 failed=0 skipped=0
LOG=${NSHM_CHECK_LOG:-build/check.log}
mkdir -p build
: >"$LOG"

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
	p=$(printf '%s\n' "$out" | grep -E '^ok ' | grep -vciE '# skip' || true)
	s=$(printf '%s\n' "$out" | grep -E '^ok ' | grep -ciE '# skip' || true)
	f=$(printf '%s\n' "$out" | grep -cE '^not ok ' || true)
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "  [$suite] exited $rc without a failing test: counted as one failure"
		f=1
	fi
	echo "  $suite: $p passed, $f failed, $s skipped ($((SECONDS - t0)) s)"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

build() {
	local t0=$SECONDS
	if ! make -s -j"$JOBS" "$@" all unit >>"$LOG" 2>&1; then
		echo "build failed: make $*; see $LOG" >&2
		tail -30 "$LOG" >&2
		failed=$((failed + 1))
		return 1
	fi
	echo "== build: make $* all unit ($((SECONDS - t0)) s)"
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

count warnings warnings_tap

if build; then
	unit_suites build unit
	for f in tests/*.bats tests/vm/*.bats tests/guest/*.bats; do
		bats_suite bats "$f"
	done
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

echo "== make check: $SECONDS s in all"
line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ "$failed" -eq 0 ]
