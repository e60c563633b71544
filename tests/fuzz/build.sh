#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Builds the fuzzing and fault-injection tools into build/fuzz/:
#   build.sh helpers   the scribbler (plain cc, no sanitizer needed)
#   build.sh fuzzers   the libFuzzer harnesses (clang, ASan + UBSan)
#   build.sh           both
#   build.sh planted HARNESS FILE SED   HARNESS with a bug planted in FILE
# The harnesses compile lib/*/*.c themselves (with coverage instrumentation),
# so they never use a stale build/libnshm.a.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=${FUZZ_OUT:-build/fuzz}
PKG=${PKGCONFIG:-pkg-config}
mkdir -p "$OUT"

pkgs="zlib libarchive"
have_isal=
if $PKG --exists libisal 2>/dev/null; then
	pkgs="$pkgs libisal"
	have_isal=-DHAVE_ISAL
fi
# shellcheck disable=SC2086
DEPCFLAGS="$($PKG --cflags $pkgs 2>/dev/null) $have_isal"
# shellcheck disable=SC2086
DEPLIBS="$($PKG --libs $pkgs 2>/dev/null) -lpthread"

build_helpers() {
	local cc=${CC:-cc}
	$cc -std=c11 -O2 -g -Wall -Wextra -D_FILE_OFFSET_BITS=64 -Ilib \
	    -o "$OUT/scribble" tests/fuzz/scribble.c
}

CC_FUZZ=${FUZZ_CC:-clang}
SAN_FUZZ="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CFLAGS_FUZZ="-g -O1 -fno-omit-frame-pointer -std=c11 -D_FILE_OFFSET_BITS=64 -Ilib -Itests/fuzz"

build_fuzzers() {
	local cc=$CC_FUZZ san=$SAN_FUZZ cflags=$CFLAGS_FUZZ
	local obj=$OUT/obj f objs=() pids=() h
	mkdir -p "$obj"
	if ! printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' | $cc -fsanitize=fuzzer -x c - -o "$OUT/.probe" 2>/dev/null; then
		echo "build.sh: $cc cannot build libFuzzer targets (need clang and libclang-rt-dev)" >&2
		return 1
	fi
	rm -f "$OUT/.probe"
	for f in lib/*/*.c; do
		# shellcheck disable=SC2086
		$cc $cflags $DEPCFLAGS $san -fsanitize=fuzzer-no-link -c -o "$obj/$(basename "$f" .c).o" "$f" &
		pids+=($!)
		if [ ${#pids[@]} -ge "${JOBS:-2}" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
		objs+=("$obj/$(basename "$f" .c).o")
	done
	for p in "${pids[@]}"; do wait "$p"; done
	rm -f "$OUT/libnshm-fuzz.a"
	ar rcs "$OUT/libnshm-fuzz.a" "${objs[@]}"
	for h in tests/fuzz/fuzz_*.c; do
		h=$(basename "$h" .c)
		link_harness "$h" "$OUT/libnshm-fuzz.a" "$OUT/$h"
	done
}

# link_harness HARNESS LIBRARY OUTPUT
link_harness() {
	local h=$1 wrap=
	grep -q __wrap_nshm_sleep_ns "tests/fuzz/$h.c" tests/fuzz/fake_region.h 2>/dev/null &&
		grep -q fake_region.h "tests/fuzz/$h.c" && wrap=-Wl,--wrap=nshm_sleep_ns,--wrap=nshm_sleep_on
	# A fake peer run as a coroutine in virtual time (fake_region.h).
	grep -q '^#define FAKE_PEER_COROUTINE' "tests/fuzz/$h.c" &&
		wrap=$wrap,--wrap=nshm_now_ns,--wrap=pthread_create,--wrap=pthread_join,--wrap=sched_yield,--wrap=kill,--wrap=nshm_proc_stat
	# shellcheck disable=SC2086
	$CC_FUZZ $CFLAGS_FUZZ $DEPCFLAGS $SAN_FUZZ -fsanitize=fuzzer $wrap -o "$3" "tests/fuzz/$h.c" \
	    "$2" $DEPLIBS
}

# A harness linked with one library file changed by a sed expression (a
# bug planted on purpose), into $OUT/HARNESS-planted: tests/fuzz/plant.sh
# shows that the harness finds it. Uses the objects of build_fuzzers.
build_planted() {
	local h=$1 f=$2 expr=$3 dir=$OUT/plant
	mkdir -p "$dir"
	sed -e "$expr" "$f" >"$dir/$(basename "$f")"
	if cmp -s "$f" "$dir/$(basename "$f")"; then
		echo "build.sh: '$expr' changes nothing in $f" >&2
		return 1
	fi
	# shellcheck disable=SC2086
	$CC_FUZZ $CFLAGS_FUZZ -iquote "$(dirname "$f")" $DEPCFLAGS $SAN_FUZZ -fsanitize=fuzzer-no-link \
		-c -o "$dir/$(basename "$f" .c).o" "$dir/$(basename "$f")"
	cp "$OUT/libnshm-fuzz.a" "$dir/lib.a"
	ar r "$dir/lib.a" "$dir/$(basename "$f" .c).o"
	link_harness "$h" "$dir/lib.a" "$OUT/$h-planted"
}

case ${1:-all} in
helpers) build_helpers ;;
fuzzers) build_fuzzers ;;
all) build_helpers && build_fuzzers ;;
planted) shift; build_planted "$@" ;;
*) echo "usage: $0 [helpers|fuzzers|all|planted HARNESS FILE SED]" >&2; exit 2 ;;
esac
