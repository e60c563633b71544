#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# lib/ in wings (lib/README.md): every #include follows the table of what a
# wing may include, there is no circle between wings, and none between the
# library's files (their objects' symbols, from the build in NSHM_BIN or
# build/). Under a second; reads files, runs nm.

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
OBJ=${NSHM_BIN:-$ROOT/build}

@test "layout: includes follow lib/README.md, no circle between wings or files" {
	[ -d "$OBJ/lib" ] || skip "no build in $OBJ (make all first)"
	run python3 "$ROOT/tests/tools/layout.py" "$ROOT" "$OBJ"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == "layout: "* ]]
}

@test "layout: the check fails on a forbidden include and on a circle it makes" {
	local t=$BATS_TEST_TMPDIR/tree
	mkdir -p "$t"
	cp -r "$ROOT/lib" "$ROOT/cmd" "$t/"
	# util is the leaf: including the engine is forbidden and closes circles.
	sed -i '0,/#include "util.h"/s//#include "util.h"\n#include "proto\/proto.h"/' "$t/lib/util/time.c"
	run python3 "$ROOT/tests/tools/layout.py" "$t"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *'lib/util/time.c:'*'util/ may not include "proto/proto.h"'* ]]
	[[ $output == *'a circle between wings: '*proto*util* ]]
}
