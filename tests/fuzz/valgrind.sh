#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The unit test binaries and one real transfer (nshm-put + nshm-get through
# a /dev/shm object) under valgrind memcheck; speaks TAP, one line per
# program run:
#
#   tests/fuzz/valgrind.sh            (make check can count its lines)
#
# A program passes when it exits as it would without valgrind and valgrind
# found no error (invalid access, uninitialised use, definite leak:
# --error-exitcode=99). Each run's own output and valgrind's report are in
# build/valgrind/NAME.{out,vg}; a failing one has its report's first lines
# as TAP comments. NSHM_BUILD picks the build directory (default build).
set -uo pipefail
cd "$(dirname "$0")/../.."

BUILD=${NSHM_BUILD:-build}
OUT=build/valgrind
if ! command -v valgrind >/dev/null; then
	echo "1..0 # SKIP valgrind is not installed"
	exit 0
fi
if ! make -s BUILD="$BUILD" all unit >/dev/null 2>&1; then
	echo "1..1"
	echo "not ok 1 - build ($BUILD) failed: run make"
	exit 1
fi
mkdir -p "$OUT"
VG=(valgrind --leak-check=full --error-exitcode=99 --errors-for-leak-kinds=definite
    --fair-sched=yes --track-origins=yes)

n=0 failed=0
# report NAME RC [EXPECTED_RC]: one TAP line for a run.
report() {
	local name=$1 rc=$2 want=${3:-0}
	n=$((n + 1))
	if [ "$rc" = "$want" ]; then
		echo "ok $n - valgrind: $name"
		return
	fi
	failed=$((failed + 1))
	if [ "$rc" = 99 ]; then
		echo "not ok $n - valgrind: $name: memcheck errors"
	else
		echo "not ok $n - valgrind: $name: exit $rc (want $want)"
	fi
	grep -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|[0-9,]+ bytes .* definitely|  +(at|by) 0x)' \
		"$OUT/$name.vg" 2>/dev/null | head -20 | sed 's/^/# /'
	grep -E '^not ok' "$OUT/$name.out" 2>/dev/null | head -10 | sed 's/^/# /'
}

for t in "$BUILD"/tests/test_*; do
	case $t in *.d) continue ;; esac
	[ -x "$t" ] || continue
	name=$(basename "$t")
	NSHM_TEST_SLOWDOWN=10 "${VG[@]}" --log-file="$OUT/$name.vg" "$t" >"$OUT/$name.out" 2>&1
	report "$name" $?
done

# One real transfer; valgrind slows both sides tenfold or more, so the
# timeouts are generous.
region=/dev/shm/nshm-valgrind-$$
dir=$(mktemp -d "$PWD/$OUT/transfer.XXXXXX")
trap 'rm -rf "$dir"; rm -f "$region"' EXIT
truncate -s 4M "$region"
head -c 3M /dev/urandom >"$dir/src"
mkdir "$dir/dst"
timeout -s KILL 300 "${VG[@]}" --log-file="$OUT/nshm-get.vg" "$BUILD/nshm-get" -q \
	--timeout 120 --peer-timeout 60 -s "$region" "$dir/dst" >"$OUT/nshm-get.out" 2>&1 &
gpid=$!
timeout -s KILL 300 "${VG[@]}" --log-file="$OUT/nshm-put.vg" "$BUILD/nshm-put" -q \
	--timeout 120 --peer-timeout 60 --chunk 256K "$dir/src" "$region" >"$OUT/nshm-put.out" 2>&1
report nshm-put $?
wait "$gpid"
report nshm-get $?
n=$((n + 1))
if cmp -s "$dir/src" "$dir/dst/src"; then
	echo "ok $n - valgrind: the file arrived intact"
else
	failed=$((failed + 1))
	echo "not ok $n - valgrind: the file did not arrive intact"
fi
echo "1..$n"
[ "$failed" -eq 0 ]
