#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Interleaved A/B of nshm builds on one large file, with cp and dd into the
# same tmpfs in the same rounds: what a change to the data path is worth,
# less exposed to the load drifting than two separate bench runs.
#
# usage: bench/ab-builds.sh MIB RUNS VARIANT...
#   VARIANT: a build directory, or DIR:VAR=VALUE for nshm-get run with VAR
#   set (bench/verify-modes.sh compares NSHM_VERIFY=copy and =readback so)
#   e.g. git worktree add /tmp/base HEAD~1 && make -C /tmp/base &&
#        bench/ab-builds.sh 256 7 /tmp/base/build build
# Prints, per variant and for cp and dd, the median MB/s (start of both ends
# to both exiting) and CPU s per GiB (user+sys of both ends), with the runs.
set -euo pipefail
(($# >= 3)) || { sed -n '2,/^set -/{/^set -/d;/SPDX/d;s/^# \{0,1\}//;p;}' "$0"; exit 2; }
mib=$1 runs=$2
shift 2
# shellcheck source=../tests/lib/common.sh
. "$(dirname "$0")/../tests/lib/common.sh"
scratch ab
w=$WORK region=$REGION
head -c "${mib}M" /dev/urandom >"$w/src"
declare -A rate cpu

# one WHAT: one timed run; WHAT is a VARIANT, cp or dd.
one() {
	local b=$1 dir=${1%%:*} genv=() t0 t1 g
	[[ $b == *:* ]] && genv=("${b#*:}")
	rm -f "$w/out"
	echo "0 0" >"$w/t2"
	t0=$EPOCHREALTIME
	case $b in
	cp) /usr/bin/time -f "%U %S" -o "$w/t1" cp "$w/src" "$w/out" ;;
	dd) /usr/bin/time -f "%U %S" -o "$w/t1" dd if=/dev/zero of="$w/out" bs=1M \
		count="$mib" status=none ;;
	*)
		/usr/bin/time -f "%U %S" -o "$w/t1" env "${genv[@]}" \
			"$dir/nshm-get" -q -s "$region" "$w/out" &
		g=$!
		/usr/bin/time -f "%U %S" -o "$w/t2" "$dir/nshm-put" -q "$w/src" "$region"
		wait "$g"
		;;
	esac
	t1=$EPOCHREALTIME
	if [[ $b != cp && $b != dd ]] && ! cmp -s "$w/src" "$w/out"; then
		echo "$b: output differs" >&2
		exit 1
	fi
	rate[$b]+="$(awk -v m="$mib" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", m * 1048576 / (b - a) / 1e6 }') "
	cpu[$b]+="$(cat "$w/t1" "$w/t2" | awk -v m="$mib" '{ s += $1 + $2 } END { printf "%.3f", s / (m / 1024) }') "
}

for ((i = 0; i < runs; i++)); do
	for b in "$@" cp dd; do
		one "$b"
	done
done
for b in "$@" cp dd; do
	printf '%-28s %6s MB/s  %6s CPU s/GiB   [%s]\n' "$b" "$(median <<<"${rate[$b]}")" \
		"$(median <<<"${cpu[$b]}")" "${rate[$b]}"
done
