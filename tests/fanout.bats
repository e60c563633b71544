#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# nshm-put -T A -T B ...: one read of the source for several regions, each
# with its own real nshm-get receiver; a killed, a stopped and a blocked
# receiver fail their own target only.
load helpers
bats_require_minimum_version 1.5.0

setup() {
	setup_region 4M
	NAMES=()
}
teardown() {
	local n
	teardown_region
	for n in "${NAMES[@]:-}"; do
		[ -n "$n" ] && rm -f "/dev/shm/$n"
	done
}

# regions N: N regions of 1 MiB, named $REGION-1 ... (their receivers are
# killed by teardown_region's pkill on $REGION).
regions() {
	local i
	for ((i = 1; i <= $1; i++)); do
		truncate -s 1M "/dev/shm/$REGION-$i"
		NAMES+=("$REGION-$i")
	done
}

# receive I [nshm-get options]: a one-shot receiver on region I into $T/dI.
receive() {
	local i=$1; shift
	mkdir -p "$T/d$i"
	bg get$i "$GET" -q -s "$REGION-$i" --timeout 60 "$@" "$T/d$i"
}

# stdin_verified I...: receiver I exited 0 and holds the source as stdin.
stdin_verified() {
	local i
	for i in "$@"; do
		[ "$(wait_rc get$i)" = 0 ]
		cmp "$T/src" "$T/d$i/stdin"
	done
}

# targets N: -T $REGION-1 ... -T $REGION-N
targets() {
	local i
	for ((i = 1; i <= $1; i++)); do
		printf -- '-T\n%s\n' "$REGION-$i"
	done
}

# wait_region I COND [--signal SIG --pid PID]: region_wait on region I.
wait_region() {
	local i=$1; shift
	REGION=$REGION-$i region_wait "$@" --timeout-ms 30000
}

@test "one file into 1, 2 and 4 regions: every copy verified by its own receiver" {
	head -c 5M /dev/urandom >"$T/src"
	for n in 1 2 4; do
		regions $n
		for ((i = 1; i <= n; i++)); do rm -rf "$T/d$i"; receive $i; done
		run "$PUT" --timeout 30 $(targets $n) "$T/src"
		echo "$n targets: exit $status: $output"
		[ "$status" -eq 0 ]
		for ((i = 1; i <= n; i++)); do
			[ "$(wait_rc get$i)" = 0 ]
			cmp "$T/src" "$T/d$i/src"
		done
		if [ "$n" -gt 1 ]; then
			# One line per target, each saying it was verified.
			[ "$(grep -c ': src: 5242880 bytes .*, verified$' <<<"$output")" -eq "$n" ]
		fi
	done
}

@test "standard input into 3 regions, read once; SUBDIR and --json per target" {
	regions 3
	head -c 3M /dev/urandom >"$T/src"
	for i in 1 2 3; do receive $i; done
	run --separate-stderr "$PUT" --json -n piped --timeout 30 \
		-T "$REGION-1" -T "$REGION-2:sub/dir" -T "$REGION-3" - < <(cat "$T/src")
	echo "exit $status: $output / $stderr"
	[ "$status" -eq 0 ]
	for i in 1 2 3; do [ "$(wait_rc get$i)" = 0 ]; done
	cmp "$T/src" "$T/d1/piped"
	cmp "$T/src" "$T/d2/sub/dir/piped"
	cmp "$T/src" "$T/d3/piped"
	[ "$(grep -c '"event":"done","target":' <<<"$output")" -eq 3 ]
	grep -q "\"target\":\"$REGION-2:sub/dir\",\"name\":\"piped\",\"bytes\":3145728" <<<"$output"
}

@test "a tree into 2 regions: archived once, extracted by each" {
	regions 2
	mkdir -p "$T/tree/a/b"
	head -c 300K /dev/urandom >"$T/tree/a/b/f"
	echo small >"$T/tree/s"
	ln -s s "$T/tree/l"
	for i in 1 2; do receive $i; done
	run "$PUT" -q --timeout 30 -T "$REGION-1" -T "$REGION-2" "$T/tree"
	echo "exit $status: $output"
	[ "$status" -eq 0 ]
	for i in 1 2; do
		[ "$(wait_rc get$i)" = 0 ]
		diff -r --no-dereference "$T/tree" "$T/d$i/tree"
	done
}

@test "the same target twice, or one region under two names: a usage error, nothing sent" {
	regions 2
	echo x >"$T/src"
	run "$PUT" -T "$REGION-1" -T "$REGION-1:sub" "$T/src"
	[ "$status" -eq 2 ]
	[[ $output == *"target $REGION-1 is named twice"* ]]
	run "$PUT" -T "$REGION-1" -T "/dev/shm/$REGION-1" "$T/src"
	[ "$status" -eq 2 ]
	[[ $output == *"are the same region"* ]]
	run "$PUT" -T "$REGION-1" -T "$REGION-2"
	[ "$status" -eq 2 ]
	[[ $output == *"need FILE"* ]]
	# No one claimed either region.
	run "$STAT" --json "$REGION-1"
	[[ $output != *'"claimed":true'* ]]
}

# start_fifo_put SIG BUFFER: mid-transfer, at a known point: the source
# is a FIFO the test writes (1 MiB first); receiver 2 gets SIG the moment
# it has freed two 64 KiB chunks.
start_fifo_put() {
	local sig=$1 buffer=$2
	mkfifo "$T/fifo"
	# (A redirection of bg itself would open the FIFO in this shell.)
	bg put sh -c 'exec "$@" <"$0"' "$T/fifo" "$PUT" --peer-timeout 2 --buffer "$buffer" \
		--chunk 64K --timeout 30 $(targets 3) -
	exec 5>"$T/fifo"
	head -c 1M /dev/urandom >"$T/src"
	P2=$(prog_of "$get2_PID")
	cat "$T/src" >&5
	wait_region 2 'consumed>=2' --signal "$sig" --pid "$P2"
}

@test "a receiver killed mid-transfer: the others complete, the status and summary name it" {
	regions 3
	for i in 1 2 3; do receive $i; done
	start_fifo_put KILL 2M
	head -c 4M /dev/urandom | tee -a "$T/src" >&5
	exec 5>&-
	[ "$(wait_rc put)" = 6 ]
	stdin_verified 1 3
	cat "$T/put.err"
	grep -q "^nshm-put: $REGION-2: failed (exit 1): the receiver died" "$T/put.err"
	[ "$(grep -c ', verified$' "$T/put.err")" -eq 2 ]
	[ ! -e "$T/d2/stdin" ]
}

@test "a stopped receiver: the others finish while it is stopped, it fails at its deadline" {
	regions 3
	for i in 1 2 3; do receive $i; done
	start_fifo_put STOP 4M
	wait_stopped "$P2"
	# Less than the buffer: receivers 1 and 3 need not wait for 2.
	head -c 512K /dev/urandom | tee -a "$T/src" >&5
	exec 5>&-
	stdin_verified 1 3
	# Done while receiver 2 is still stopped and the sender still waits.
	[ ! -e "$T/put.rc" ]
	[ "$(wait_rc put)" = 6 ]
	kill -CONT "$P2"
	grep -q "^nshm-put: $REGION-2: failed (exit 1): the receiver died or stopped responding" "$T/put.err"
}

# The case above with more than the buffer: the same steps on purpose, the other outcome
# (the others wait for the stopped one's deadline).
@test "a stopped receiver holding the buffer full: the others wait only up to its deadline" {
	regions 3
	for i in 1 2 3; do receive $i; done
	start_fifo_put STOP 2M
	wait_stopped "$P2"
	# Twice the buffer: 1 and 3 can only finish once 2 has failed.
	head -c 4M /dev/urandom | tee -a "$T/src" >&5
	exec 5>&-
	[ "$(wait_rc put)" = 6 ]
	stdin_verified 1 3
	kill -CONT "$P2"
	grep -Eq "^nshm-put: $REGION-2: failed \(exit 1\): (the receiver died or stopped responding|fell behind)" "$T/put.err"
}

@test "a live receiver that takes nothing (blocked writing): it fell behind, the others complete" {
	regions 3
	for i in 1 3; do receive $i; done
	# Receiver 2 writes to a pipe nobody reads: its heartbeat goes on,
	# its data does not; the sender's lag rule (the peer timeout) ends it.
	mkfifo "$T/sinkfifo"
	exec 6<>"$T/sinkfifo"
	bg get2 sh -c 'exec "$0" -q -s "$1" --timeout 60 - >"$2"' "$GET" "$REGION-2" \
		"$T/sinkfifo"
	mkfifo "$T/fifo"
	# (A redirection of bg itself would open the FIFO in this shell.)
	bg put sh -c 'exec "$@" <"$0"' "$T/fifo" "$PUT" --peer-timeout 2 --buffer 2M \
		--chunk 64K --timeout 30 $(targets 3) -
	exec 5>"$T/fifo"
	head -c 4M /dev/urandom >"$T/src"
	cat "$T/src" >&5
	exec 5>&-
	[ "$(wait_rc put)" = 6 ]
	stdin_verified 1 3
	cat "$T/put.err"
	grep -q "^nshm-put: $REGION-2: failed (exit 1): fell behind: it kept the other targets waiting" "$T/put.err"
	exec 6>&-
}

@test "a refusing receiver fails its target only (exit 6, its line says 4); all failing alike: their status" {
	regions 2
	head -c 200K /dev/urandom >"$T/src"
	mkdir -p "$T/d2"
	echo old >"$T/d2/src"          # receiver 2 refuses: the file exists
	for i in 1 2; do receive $i; done
	run "$PUT" --timeout 30 -T "$REGION-1" -T "$REGION-2" "$T/src"
	echo "exit $status: $output"
	[ "$status" -eq 6 ]
	[[ $output == *"$REGION-2: failed (exit 4): the receiver refused"* ]]
	[ "$(wait_rc get1)" = 0 ]
	cmp "$T/src" "$T/d1/src"
	[ "$(cat "$T/d2/src")" = old ]
	# Nobody listening on either: both time out alike, exit 5.
	run "$PUT" --timeout 0.3 -T "$REGION-1" -T "$REGION-2" "$T/src"
	[ "$status" -eq 5 ]
	[ "$(grep -c 'failed (exit 5): no receiver' <<<"$output")" -eq 2 ]
}

@test "Ctrl-C mid-transfer aborts every target (exit 130); no receiver keeps a file" {
	regions 3
	for i in 1 2 3; do receive $i; done
	mkfifo "$T/fifo"
	bg put sh -c 'exec "$@" <"$0"' "$T/fifo" "$PUT" --buffer 2M --chunk 64K --timeout 30 \
		$(targets 3) -
	exec 5>"$T/fifo"
	head -c 1M /dev/urandom >&5
	wait_region 1 'consumed>=2'
	kill -INT "$(prog_of "$put_PID")"
	[ "$(wait_rc put)" = 130 ]
	exec 5>&-
	for i in 1 2 3; do
		[ "$(wait_rc get$i)" != 0 ]
		[ -z "$(ls -A "$T/d$i")" ]
	done
}
