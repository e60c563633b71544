# SPDX-License-Identifier: BSD-2-Clause
# shellcheck shell=bash
# tests/lib/common.sh - what tests/ and bench/ share: figures (median and range) and the
# /dev/shm region and work directory a transfer runs through. Sourced by bash scripts and
# bats files alike (bench/*.sh, tests/demo.sh, tests/helpers.bash, tests/vm/lib.sh); it only
# defines functions. The guest boot both share is tests/vm/lib.sh (which sources this file).
#
#   median [N...]               the median of the numbers (arguments, or the words on stdin)
#   median_fmt FORMAT [N...]    printf FORMAT with the median, min, max and count
#   region_create NAME SIZE     a fresh, zero-filled /dev/shm/NAME of SIZE (truncate's units)
#   scratch PREFIX [SIZE]       REGION=nshm-PREFIX-PID of SIZE (default 64M) and WORK, a
#                               directory on /dev/shm; both removed when the script exits
#   at_exit COMMAND             run COMMAND (eval'd) when the script exits, newest first
#   only_std_fds CMD [ARG...]   run CMD with file descriptors 0-2 only (see below)
#
# The median is the middle value, or the mean of the two middle ones for an even count (as
# Python's statistics.median in bench/report.py): every figure the project prints is the same
# statistic.

# common__stats: "MEDIAN MIN MAX COUNT" of the numbers, one per line on stdin.
common__stats() {
	LC_ALL=C sort -g | LC_ALL=C awk 'NF { v[++n] = $1 } END {
		if (n == 0) exit 1
		m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		print m, v[1], v[n], n }'
}

# common__numbers [N...]: the arguments one per line, or stdin's words when there are none.
common__numbers() {
	if (($#)); then printf '%s\n' "$@"; else tr -s ' \t' '\n\n'; fi
}

median() {
	local s
	s=$(common__numbers "$@" | common__stats) || return 1
	printf '%s\n' "${s%% *}"
}

# median_fmt FORMAT [N...]: e.g. median_fmt '%.0f MB/s (%.0f-%.0f)' 900 1000 1100
median_fmt() {
	local fmt=$1 s
	shift
	s=$(common__numbers "$@" | common__stats) || return 1
	LC_ALL=C awk -v f="$fmt" -v s="$s" 'BEGIN { split(s, a, " "); printf f, a[1], a[2], a[3], a[4] }'
}

region_create() {
	rm -f "/dev/shm/$1"
	truncate -s "$2" "/dev/shm/$1"
}

COMMON_AT_EXIT=()
at_exit() {
	COMMON_AT_EXIT+=("$1")
	trap common__exit EXIT
}
common__exit() {
	local i
	for ((i = ${#COMMON_AT_EXIT[@]} - 1; i >= 0; i--)); do
		eval "${COMMON_AT_EXIT[i]}" || true
	done
}

# scratch PREFIX [SIZE]: the object QEMU would create with -object
# memory-backend-file,...,share=on, and a directory on tmpfs for the files, so that the disk
# is not what is measured.
scratch() {
	REGION=nshm-$1-$$
	WORK=$(mktemp -d "/dev/shm/nshm-$1.XXXXXX")
	at_exit 'rm -rf "$WORK"; rm -f "/dev/shm/$REGION"'
	region_create "$REGION" "${2:-64M}"
}

# only_std_fds CMD [ARG...]: CMD with every inherited descriptor above 2 closed. mmdebstrap
# (1.3.5, Debian 12) hands apt the pipe it reads package lists from as `cat >&FD`, run by
# /bin/sh: dash reads only one digit there ("Bad fd number"), so with descriptors 3-10
# already taken (bats holds 3, 4 and 10, a lock 9) its pipe lands at 11 and every fresh root
# fails with "apt download failed". A closed descriptor in this child releases no lock its
# parent holds on the same file.
only_std_fds() {
	(
		local fd
		for fd in /proc/$BASHPID/fd/*; do
			fd=${fd##*/}
			((fd > 2)) && eval "exec $fd>&-"
		done
		exec "$@"
	)
}
