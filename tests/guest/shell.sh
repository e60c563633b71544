#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# The systemd guest's command channel (tests/guest/lib.sh installs it as
# nshm-guest-shell.service): one line per command from the host on /dev/ttyS1, "ID BASE64" (the
# command in base64, so that it may span lines and hold any byte); each runs under bash -c in the background (so that several can be under way at once) and, when it
# ends, one line goes back on ttyS1:
#   @@G-END ID rc=N secs=S out=BASE64 err=BASE64 @@G-EOL
# (the closing token lets the host tell a whole line from one the serial port is still
# delivering: it sees "@@G-END ID" before the rest has arrived)
# "@@G-START ID" is written as a command starts, "@@G-READY uptime=S" once when the channel is up.
# Base64 keeps a command's output (any bytes, any "@@" lines) from being taken for a marker.
set -u
tty=/dev/ttyS1
jobs=/run/nshm-guest
mkdir -p "$jobs"
# Raw and without echo: the host's commands must not be changed or sent back.
stty -F "$tty" raw -echo
exec 3<>"$tty"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
export SYSTEMD_PAGER='' SYSTEMD_COLORS=0 LC_ALL=C

uptime_s() { cut -d' ' -f1 /proc/uptime; }

# One whole line at a time: concurrent jobs must not interleave their reports.
say() { flock "$jobs/.lock" printf '%s\n' "$1" >&3; }

run_job() {
	local id=$1 cmd=$2 t0 rc out err
	say "@@G-START $id"
	t0=$(uptime_s)
	bash -c "$cmd" </dev/null >"$jobs/$id.out" 2>"$jobs/$id.err" 3>&-
	rc=$?
	out=$(base64 -w0 "$jobs/$id.out")
	err=$(base64 -w0 "$jobs/$id.err")
	rm -f "$jobs/$id.out" "$jobs/$id.err"
	say "@@G-END $id rc=$rc secs=$(awk -v a="$t0" -v b="$(uptime_s)" 'BEGIN { printf "%.2f", b - a }') out=$out err=$err @@G-EOL"
}

say "@@G-READY uptime=$(uptime_s)"
while IFS= read -r line <&3; do
	line=${line%$'\r'}
	id=${line%% *}
	[[ -n $id && $line == *' '* ]] || continue
	run_job "$id" "$(base64 -d <<<"${line#* }")" &
done
