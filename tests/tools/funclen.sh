#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Lines per function over lib/ and cmd/ (or the folders given): the mean,
# and the longest (FUNCLEN_TOP, default 5). A function is counted from
# the line of its name to its closing brace, both included: the kernel
# style of this tree puts a definition's name at the start of a line, its
# body's braces in column 0. `make funclen` runs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=${FUNCLEN_TOP:-5}
[ $# -gt 0 ] || set -- lib cmd
find "$@" -name '*.c' -print | sort | xargs awk '
	FNR == 1 { name = ""; start = 0 }
	# A definition: a name and "(" from column 0 (not a prototype, a
	# macro, a label or a declaration), whose "{" opens in column 0.
	/^[A-Za-z_][A-Za-z0-9_ \t\*]*\(/ && !/;[ \t]*$/ && !/^(return|if|else|while|for|switch)\b/ {
		line = $0
		sub(/\(.*/, "", line)
		n = split(line, w, /[ \t\*]+/)
		cand = w[n]; cand_at = FNR
	}
	/^\{/ && cand != "" { name = cand; start = cand_at; cand = "" }
	/^\}/ && name != "" {
		printf "%d %s:%d %s\n", FNR - start + 1, FILENAME, start, name
		name = ""
	}
' | sort -k1,1nr > "${TMPDIR:-/tmp}/funclen.$$"
awk -v top="$top" '
	{ sum += $1; n++ }
	NR <= top { longest[NR] = sprintf("  %4d  %s %s", $1, $3, $2) }
	END {
		if (!n) { print "no functions found"; exit 1 }
		printf "%d functions, %.1f lines each on average; the %d longest:\n", n, sum / n, top
		for (i = 1; i <= top && i <= n; i++)
			print longest[i]
	}
' "${TMPDIR:-/tmp}/funclen.$$"
rm -f "${TMPDIR:-/tmp}/funclen.$$"
