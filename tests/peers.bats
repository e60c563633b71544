#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# A dead peer's claim taken over in seconds, a live one never robbed, and
# every way a receiver can give up heard by its sender (issue 19, parts 5
# and 6). A process in a pid namespace of its own stands in for one in
# another machine (a guest): its pid cannot be checked from here, so only
# its heartbeat tells, as with a guest's QEMU killed outright. A missing
# libarchive is a bind mount of /dev/null over it in a mount namespace of
# the receiver's own. Each moment is waited for (a region value, a line on
# a terminal), never slept for.
load helpers

setup_file() { scribbler_build; }

setup() {
	setup_region 4M
	mkdir -p "$T/dst"
	LOAD=()
	unshare --pid --fork true 2>/dev/null || skip "no pid namespaces here (unshare --pid)"
}

teardown() {
	local p
	for p in "${LOAD[@]:-}"; do
		[ -n "$p" ] && kill -9 "$p" 2>/dev/null
	done
	teardown_region
}

# elsewhere NAME CMD...: CMD in a pid namespace of its own (bg job NAME);
# NAME_PROG is the program's pid as this namespace sees it.
elsewhere() {
	local name=$1 sub t u p i; shift
	bg "$name" unshare --pid --fork "$@"
	sub=$(eval echo "\$${name}_PID")
	# bg's subshell, then timeout(1), then unshare, then the program.
	for ((i = 0; i < 200; i++)); do
		t=$(pgrep -P "$sub" -x timeout || true)
		u=${t:+$(pgrep -P "$t" -x unshare || true)}
		p=${u:+$(pgrep -P "$u" || true)}
		[ -n "$p" ] && break
		sleep 0.05
	done
	[ -n "$p" ]
	eval "${name}_PROG=$p"
}

# on_tty NAME CMD...: CMD with a terminal for its stderr (it says what it
# waits for only there), as bg job NAME.
on_tty() {
	local name=$1; shift
	bg "$name" script -qefc "$*" /dev/null
}

# secs T0 T1: seconds between two $EPOCHREALTIME readings.
secs() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'
}

# A background job's standard input is /dev/null whatever its caller's:
# "${FROM[@]}" FILE CMD... runs CMD reading FILE. (The tests open their
# end of a FIFO, fd 5, after starting its reader, so that no other process
# holds it and closing it is the end of the input.)
FROM=(sh -c 'f=$1; shift; exec "$@" <"$f"' from)

# "${NO_LIBARCHIVE[@]}" CMD...: CMD where dlopen of libarchive fails (a
# mount namespace where /dev/null is bound over it).
libarchive() {
	ldconfig -p | awk '/libarchive\.so\.13 /{print $NF; exit}'
}
NO_LIBARCHIVE=(unshare -m sh -c 'mount --bind /dev/null "$0" && exec "$@"' "$(libarchive)")

@test "a sender killed in another pid namespace: its claim is taken over in < 3 s, the wait said" {
	mkfifo "$T/in"
	elsewhere old "${FROM[@]}" "$T/in" "$PUT" -q -n old - "$REGION"
	exec 5>"$T/in"
	region_wait tx-claimed
	kill -9 "$old_PROG"
	[ "$(wait_rc old)" != 0 ]   # unshare says how its child ended its own way
	echo data >"$T/src"
	bg get "$GET" -q --timeout 20 -s "$REGION" "$T/dst"
	local t0=$EPOCHREALTIME t1
	on_tty put "$PUT" --timeout 20 "$T/src" "$REGION"
	[ "$(wait_rc put 20)" = 0 ]
	t1=$EPOCHREALTIME
	exec 5>&-
	echo "# taken over and sent in $(secs "$t0" "$t1") s" >&3
	awk -v s="$(secs "$t0" "$t1")" 'BEGIN { exit !(s < 3) }'
	[ "$(wait_rc get)" = 0 ]
	[ "$(cat "$T/dst/src")" = data ]
	grep -q "waiting for the previous sender's claim on $R (pid 1 on the other side): its heartbeat has stood still for [0-9.]* s; taken over at 2.0 s" "$T/put.out"
}

@test "a receiver stopped in another pid namespace for less than its lapse is not robbed" {
	elsewhere old "$GET" -q --timeout 30 -s "$REGION" "$T/dst"
	region_wait rx-state=1
	kill -STOP "$old_PROG"
	on_tty new "$GET" --timeout 30 -s "$REGION" "$T/dst"
	# The new receiver has watched a still heartbeat for 0.6 s: go on.
	until_true 10 grep -q "waiting for the previous receiver's claim" "$T/new.out"
	kill -CONT "$old_PROG"
	[ "$(wait_rc new)" = 3 ]
	grep -q "busy: another receiver (pid 1 on the other side) is using it" "$T/new.out"
	# The old one never lost its line: it takes a file.
	echo kept >"$T/src"
	run "$PUT" --timeout 10 "$T/src" "$REGION"
	[ "$status" -eq 0 ]
	[ "$(wait_rc old)" = 0 ]
	[ "$(cat "$T/dst/src")" = kept ]
}

@test "a sender in another pid namespace on a loaded machine keeps its claim" {
	local i end rc n=0
	mkfifo "$T/in"
	elsewhere old "${FROM[@]}" "$T/in" "$PUT" -q -n old - "$REGION"
	exec 5>"$T/in"
	region_wait tx-claimed
	for i in 1 2 3 4 5 6; do
		sh -c 'while :; do :; done' 5>&- &
		LOAD+=($!)
	done
	# Claimants, one after the other for 5 s, while every CPU is busy
	# three times over: each one finds the holder alive.
	echo x >"$T/src"
	end=$((SECONDS + 5))
	while [ "$SECONDS" -lt "$end" ]; do
		rc=0
		"$PUT" -q --timeout 10 "$T/src" "$REGION" 2>"$T/claim.err" || rc=$?
		[ "$rc" = 3 ] || { cat "$T/claim.err" >&2; false; }
		grep -q "busy" "$T/claim.err"
		n=$((n + 1))
	done
	echo "# $n claimants in 5 s, each told busy" >&3
	kill -9 "${LOAD[@]}"
	LOAD=()
	# The holder still holds: it sends when a receiver comes.
	printf 'still mine\n' >&5
	exec 5>&-
	run "$GET" -q --timeout 10 -s "$REGION" "$T/dst"
	[ "$status" -eq 0 ]
	[ "$(wait_rc old)" = 0 ]
	[ "$(cat "$T/dst/old")" = "still mine" ]
}

@test "a receiver without libarchive refuses a set of files: the sender says why, both start orders" {
	[ -n "$(libarchive)" ] || skip "libarchive.so.13 is not in ldconfig's cache"
	mkdir -p "$T/tree/sub"
	echo a >"$T/tree/sub/a"
	# Receiver first.
	bg get "${NO_LIBARCHIVE[@]}" "$GET" --timeout 20 -s "$REGION" "$T/dst"
	until_true 10 grep -q . <("$STAT" "$REGION" | grep '^receiver.*ready')
	run "$PUT" --timeout 10 "$T/tree" "$REGION"
	echo "put: $status: $output" >&2
	[ "$status" -eq 4 ]
	[[ $output == *"the receiver refused: it cannot take a set of files (it needs libarchive; Debian: apt-get install libarchive13)"* ]]
	[ "$(wait_rc get 5)" = 1 ]
	grep -q "sets of files need libarchive" "$T/get.err"
	# Sender first.
	bg put "$PUT" --timeout 20 "$T/tree" "$REGION"
	region_wait tx-claimed
	run "${NO_LIBARCHIVE[@]}" "$GET" --timeout 10 -s "$REGION" "$T/dst"
	[ "$status" -eq 1 ]
	[[ $output == *"sets of files need libarchive"* ]]
	[ "$(wait_rc put 5)" = 4 ]
	grep -q "cannot take a set of files" "$T/put.err"
	[ -z "$(ls -A "$T/dst")" ]
	# A single file needs no libarchive.
	bg get "${NO_LIBARCHIVE[@]}" "$GET" --timeout 20 -s "$REGION" "$T/dst"
	run "$PUT" --timeout 10 "$T/tree/sub/a" "$REGION"
	[ "$status" -eq 0 ]
	[ "$(wait_rc get)" = 0 ]
}

@test "no room for a file at the receiver before the offer is answered: refused, the sender says so" {
	mkdir "$T/full"
	mount -t tmpfs -o size=1M,nr_inodes=2 tmpfs "$T/full" || skip "cannot mount a tmpfs here"
	touch "$T/full/only" || { umount -l "$T/full"; skip "tmpfs counts inodes otherwise"; }
	echo x >"$T/src"
	bg get "$GET" --timeout 20 -s "$REGION" "$T/full"
	run "$PUT" --timeout 10 "$T/src" "$REGION"
	echo "put: $status: $output" >&2
	local get_rc
	get_rc=$(wait_rc get)
	umount -l "$T/full"
	[ "$status" -eq 4 ]
	[[ $output == *"the receiver refused: no space left at the destination"* ]]
	[ "$get_rc" != 0 ]
}

# The same steps as the case above with a set of files: the tree receiver's no-space path
# (exit 1, "failed"), not the file receiver's refusal (exit 4).
@test "a set of files fills the receiver's disk: the sender hears no space, exits 1" {
	mkdir "$T/small" "$T/tree"
	mount -t tmpfs -o size=1M tmpfs "$T/small" || skip "cannot mount a tmpfs here"
	head -c 700K /dev/urandom >"$T/tree/a"
	head -c 700K /dev/urandom >"$T/tree/b"
	bg get "$GET" --timeout 20 -s "$REGION" "$T/small"
	run "$PUT" --timeout 10 "$T/tree" "$REGION"
	echo "put: $status: $output" >&2
	local get_rc
	get_rc=$(wait_rc get)
	umount -l "$T/small"
	[ "$status" -eq 1 ]
	[[ $output == *"the receiver failed: no space left at the destination"* ]]
	[ "$get_rc" = 1 ]
}

@test "a refused SUBDIR: the sender says why, exits 4" {
	mkdir "$T/out"
	ln -s "$T/out" "$T/dst/link"
	echo x >"$T/src"
	bg get "$GET" --timeout 20 -s "$REGION" "$T/dst"
	run "$PUT" --timeout 10 "$T/src" "$REGION:link/x"
	[ "$status" -eq 4 ]
	[[ $output == *"the receiver refused: the file name is not safe"* ]]
	[ "$(wait_rc get)" != 0 ]
	[ -z "$(ls -A "$T/out")" ]
}

@test "a receiver killed after the offer, before its answer: the sender says so and waits for another" {
	echo data >"$T/src"
	bg get "$GET" -q --timeout 20 -s "$REGION" "$T/dst"
	# Stopped while ready, killed once the offer to it is out.
	region_wait rx-state=1 --signal STOP --pid "$(prog_of "$get_PID")"
	on_tty put "$PUT" --timeout 20 "$T/src" "$REGION"
	region_wait tx-state=1
	kill -9 "$(prog_of "$get_PID")"
	until_true 10 grep -q "went away without answering; waiting for another" "$T/put.out"
	bg get2 "$GET" -q --timeout 20 -s "$REGION" "$T/dst"
	[ "$(wait_rc put)" = 0 ]
	[ "$(wait_rc get2)" = 0 ]
	[ "$(cat "$T/dst/src")" = data ]
}

@test "a sender whose input stalls hears within its peer timeout that its receiver died" {
	mkfifo "$T/in"
	bg put "${FROM[@]}" "$T/in" "$PUT" --peer-timeout 1 -n s - "$REGION"
	exec 5>"$T/in"
	printf 'a little\n' >&5
	# A receiver elsewhere: only its heartbeat can tell it died.
	elsewhere get "$GET" -q -s "$REGION" "$T/dst"
	region_wait rx-state=2
	kill -9 "$get_PROG"
	local t0=$EPOCHREALTIME t1
	[ "$(wait_rc put 10)" = 1 ]
	t1=$EPOCHREALTIME
	echo "# heard in $(secs "$t0" "$t1") s" >&3
	awk -v s="$(secs "$t0" "$t1")" 'BEGIN { exit !(s < 3) }'
	exec 5>&-
	grep -q "the receiver died or stopped responding" "$T/put.err"
}

@test "a receiver gone silent mid-transfer: the sender says so on its terminal before giving up" {
	mkfifo "$T/in"
	# (script(1) runs a shell command: the redirection goes in it.)
	on_tty put "$PUT --peer-timeout 3 -n s - $REGION <$T/in"
	exec 5>"$T/in"
	printf 'a little\n' >&5
	elsewhere get "$GET" -q -s "$REGION" "$T/dst"
	region_wait rx-state=2
	kill -9 "$get_PROG"
	[ "$(wait_rc put 10)" = 1 ]
	exec 5>&-
	grep -q "the receiver on $R (pid 1 on the other side) has been silent for 1\.[5-9] s; it is given up for dead at 3\.0 s (--peer-timeout)" "$T/put.out"
	grep -q "the receiver died or stopped responding" "$T/put.out"
}

@test "nshm-stat's rate mid-transfer: a 3 MB/s stream in 2 MiB chunks is not read as 0.0 MB/s" {
	head -c 6M /dev/urandom >"$T/src"
	bg get "$GET" -q --timeout 20 -s "$REGION" "$T/dst"
	# 64 KiB every 20 ms: 3.3 MB/s at most; the receiver's count moves
	# 2 MiB at a time, about every 0.6 s.
	bg feed sh -c "'$SCRIBBLE' cat '$T/src' --piece 65536 --gap-us 20000 | '$PUT' -q --timeout 20 -n s - '$REGION'"
	region_wait consumed\>=1
	run "$STAT" --json "$REGION"
	echo "$output"
	[ "$status" -eq 0 ]
	local rate
	rate=$(sed -n 's/.*"rate_mbps":\([0-9.]*\).*/\1/p' <<<"$output")
	echo "# nshm-stat mid-transfer: $rate MB/s (the pipe gives 3.3 at most)" >&3
	awk -v r="$rate" 'BEGIN { exit !(r > 1 && r < 4) }'
	[ "$(wait_rc feed)" = 0 ]
	[ "$(wait_rc get)" = 0 ]
	cmp "$T/src" "$T/dst/s"
}
