#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# The licence: LICENSE is the BSD 2-Clause text, and every source, script,
# Makefile and man page in git names it in an SPDX-License-Identifier line
# near its top (after a shebang or zsh's #compdef). kmod/, the guest kernel
# module, is GPL-2.0 and names its own; test data is not source.

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
ID='SPDX-License-Identifier: BSD-2-Clause'

setup() {
	T=$BATS_TEST_TMPDIR
}

# licensed_files: the files in git that must carry the line, one a line.
licensed_files() {
	git -C "$ROOT" ls-files | grep -vE '^(kmod|tests/fuzz/(corpus|regressions|known))/' |
		while IFS= read -r f; do
			case $f in
			*.c | *.h | *.py | *.sh | *.bash | *.bats | *.fish | *.pc.in | Makefile | */Makefile | \
				man/*.[1-9] | completions/_nshm)
				echo "$f" ;;
			*.md | *.png | *.csv | *.json | *.conf | *.gitignore | LICENSE) ;;
			*) [ "$(head -c 2 "$ROOT/$f")" != '#!' ] || echo "$f" ;;
			esac
		done
}

# unlicensed DIR: the files on stdin (relative to DIR) without the line in
# their first three lines.
unlicensed() {
	local f bad=0
	while IFS= read -r f; do
		head -n 3 "$1/$f" | grep -qF "$ID" || { echo "no $ID: $f" >&2; bad=1; }
	done
	return "$bad"
}

@test "LICENSE: the BSD 2-Clause licence of the nshm authors" {
	grep -qx 'BSD 2-Clause License' "$ROOT/LICENSE"
	grep -qx 'Copyright (c) 2026, the nshm authors' "$ROOT/LICENSE"
	grep -q 'Redistributions in binary form must reproduce' "$ROOT/LICENSE"
}

@test "license: every source, script, Makefile and man page in git has an SPDX line" {
	git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1 || skip "not a git checkout"
	licensed_files >"$T/files"
	# The list is not empty and holds each kind.
	for f in lib/nshm.h lib/util/crc.c Makefile man/nshm.7 tests/license.bats bench/run \
		completions/_nshm completions/nshm.bash lib/nshm.pc.in; do
		grep -qx "$f" "$T/files" || { echo "$f is not checked" >&2; return 1; }
	done
	unlicensed "$ROOT" <"$T/files"
	# zsh reads #compdef from the first line only.
	[ "$(head -n 1 "$ROOT/completions/_nshm" | cut -c1-8)" = '#compdef' ]
}

@test "license: the check catches a file without the line" {
	mkdir -p "$T/tree"
	printf '#!/bin/sh\n# %s\necho ok\n' "$ID" >"$T/tree/good.sh"
	printf '#!/bin/sh\necho no licence\n' >"$T/tree/bad.sh"
	printf '%s\n' good.sh | unlicensed "$T/tree"
	run unlicensed "$T/tree" <<<$'good.sh\nbad.sh'
	[ "$status" -ne 0 ]
	[[ $output == *"bad.sh"* && $output != *"good.sh"* ]]
}
