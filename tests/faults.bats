#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# Faults: either side killed or interrupted at each phase, a full or
# read-only destination, the region truncated or corrupted under a
# transfer, random scribbles during real transfers, and a short pass of the
# fuzzers. What cli.bats covers (kill -9 of either side mid-stream, Ctrl-C
# of the sender, busy sender, small region, bad magic or version) is not
# repeated. build/fuzz/scribble (tests/fuzz/scribble.c) does the precise
# work: it waits on region values, stops a process at a given point, and
# flips bytes in slots.
load helpers

setup_file() { scribbler_build; }

setup() {
	setup_region 4M
	MOUNTS=()
	mkdir -p "$T/dst"
}

teardown() {
	local m
	for m in "${MOUNTS[@]:-}"; do
		[ -n "$m" ] && umount -l "$m" 2>/dev/null
	done
	teardown_region
}

# start NAME CMD...: CMD in the background as itself, so that $NAME_PID is
# the program (for kill -9 and SIGSTOP); output in $T/NAME.out and .err,
# standard input from $IN (default /dev/null).
start() {
	local name=$1; shift
	"$@" <"${IN:-/dev/null}" >"$T/$name.out" 2>"$T/$name.err" &
	PIDS+=($!)
	eval "${name}_PID=$!"
}

# finish NAME [SECONDS]: wait for it to exit by itself and set NAME_RC to
# its status; one still running after SECONDS is a hang: killed, RC=hang.
finish() {
	local name=$1 secs=${2:-30} pid i rc=0
	pid=$(eval echo "\$${name}_PID")
	for ((i = 0; i < secs * 20; i++)); do
		running "$pid" || break
		sleep 0.05
	done
	if running "$pid"; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null || true
		echo "$name (pid $pid) still running after $secs s: a hang" >&2
		eval "${name}_RC=hang"
		return 0
	fi
	wait "$pid" || rc=$?
	eval "${name}_RC=$rc"
	echo "$name exited $rc: $(head -c 300 "$T/$name.err")" >&2
}

running() {
	kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# The region works again: a fresh pair moves a file through it.
transfer_ok() {
	head -c 300000 /dev/urandom >"$T/again"
	mkdir -p "$T/again.d"
	start get2 "$GET" -q --timeout 20 -s "$REGION" "$T/again.d"
	run "$PUT" -q --timeout 20 "$T/again" "$REGION"
	echo "second transfer: put exited $status: $output" >&2
	[ "$status" -eq 0 ]
	finish get2
	[ "$get2_RC" = 0 ]
	cmp "$T/again" "$T/again.d/again"
}

# No file under its final name, and (unless KEEP_TMP: a kill -9 leaves
# one) no temporary either.
no_file() {
	local name=$1
	[ ! -e "$T/dst/$name" ]
	[ -n "${KEEP_TMP:-}" ] || [ -z "$(ls -A "$T/dst")" ]
}

# A file under its final name is the source, byte for byte.
no_wrong_file() {
	[ ! -e "$T/dst/$1" ] || cmp "$2" "$T/dst/$1"
}

# ---- before the handshake ----

@test "kill -9 of a receiver waiting for a sender: the region works after" {
	start get "$GET" -s "$REGION" "$T/dst"
	region_wait rx-state=1 --timeout-ms 10000
	kill -9 "$get_PID"
	finish get
	[ "$get_RC" = 137 ]
	[ -z "$(ls -A "$T/dst")" ]
	transfer_ok
}

# The SIGINT twins of the kill -9 cases (exit 130, not 137): the same steps on purpose, one
# case per signal so that a failure names it.
@test "SIGINT to a receiver waiting for a sender: exit 130, the region works after" {
	start get "$GET" -s "$REGION" "$T/dst"
	region_wait rx-state=1 --timeout-ms 10000
	kill -INT "$get_PID"
	finish get 10
	[ "$get_RC" = 130 ]
	[ -z "$(ls -A "$T/dst")" ]
	transfer_ok
}

@test "kill -9 of a sender waiting for a receiver: the region works after" {
	head -c 100000 /dev/urandom >"$T/src"
	start put "$PUT" "$T/src" "$REGION"
	region_wait tx-claimed --timeout-ms 10000
	wait_blocked "$put_PID" sleep    # in its wait for a receiver
	kill -9 "$put_PID"
	finish put
	[ "$put_RC" = 137 ]
	transfer_ok
}

@test "SIGINT to a sender waiting for a receiver: exit 130, the region works after" {
	head -c 100000 /dev/urandom >"$T/src"
	start put "$PUT" "$T/src" "$REGION"
	region_wait tx-claimed --timeout-ms 10000
	wait_blocked "$put_PID" sleep    # in its wait for a receiver
	kill -INT "$put_PID"
	finish put 10
	[ "$put_RC" = 130 ]
	transfer_ok
}

# ---- mid-stream (kill -9 of either side and SIGINT of the sender are in
# cli.bats) ----

@test "SIGINT to the receiver mid-stream: exit 130, sender fails, no file, region works" {
	head -c 3M /dev/urandom >"$T/src"
	mkfifo "$T/fifo"
	start get "$GET" -s "$REGION" "$T/dst"
	IN=$T/fifo start put "$PUT" --chunk 64K --name slow - "$REGION"
	"$SCRIBBLE" cat "$T/src" --piece 16384 --gap-us 5000 >"$T/fifo" &
	PIDS+=($!)
	region_wait consumed\>=3 --timeout-ms 20000
	kill -INT "$get_PID"
	finish get 10
	[ "$get_RC" = 130 ]
	finish put 10
	[ "$put_RC" = 1 ]
	grep -q "receiver.*interrupted" "$T/put.err"
	no_file slow
	transfer_ok
}

# ---- while the sender waits for the verdict ----
# The receiver is stopped before the sender can publish its end record, so
# the sender then sits in its verdict wait; then one side is hit. Whatever
# the receiver had reached, the outcome must be consistent: a file under
# its final name is the source; the sender succeeds only if it is.

# The order is made, not caught: the sender reads a pipe and publishes a
# chunk only when it is full, and its end record only at end of input. Two
# full chunks and a part of a third go in; once the receiver has freed both
# it is stopped (and seen stopped by the kernel); only then is the pipe
# closed, and the sender publishes the last part and its end record and
# waits for a verdict that cannot come. (Waiting for the end record and
# stopping the receiver then raced it: it takes the record in microseconds.)
verdict_setup() {
	head -c $((2 * 65536 + 18928)) /dev/urandom >"$T/src"
	mkfifo "$T/verdict.pipe"
	start get "$GET" --peer-timeout 30 -s "$REGION" "$T/dst"
	IN=$T/verdict.pipe start put "$PUT" --peer-timeout 30 --chunk 64K --slots 2 -n src - "$REGION"
	exec 6>"$T/verdict.pipe"
	cat "$T/src" >&6
	region_wait consumed'>='2 --signal STOP --pid "$get_PID" --timeout-ms 20000
	wait_stopped "$get_PID"
	[ "$("$SCRIBBLE" wait "$R" tx-state=2 --timeout-ms 0 2>/dev/null; echo $?)" = 1 ]
	exec 6>&-
	region_wait tx-state=2 --timeout-ms 20000
	wait_blocked "$put_PID" sleep    # in its verdict wait
}

@test "kill -9 of the sender waiting for the verdict: receiver consistent, region works" {
	verdict_setup
	kill -9 "$put_PID" 2>/dev/null || true
	finish put
	kill -CONT "$get_PID"
	finish get
	[ "$get_RC" != hang ]
	[ "$get_RC" -lt 128 ]
	if [ "$get_RC" = 0 ]; then cmp "$T/src" "$T/dst/src"; else no_file src; fi
	if [ "$put_RC" != 137 ]; then
		[ "$put_RC" = 0 ]
		[ "$get_RC" = 0 ]
	fi
	transfer_ok
}

@test "SIGINT to the sender waiting for the verdict: consistent outcome, region works" {
	verdict_setup
	kill -INT "$put_PID" 2>/dev/null || true
	kill -CONT "$get_PID"
	finish put 10
	finish get 10
	[ "$put_RC" != hang ]
	[ "$get_RC" != hang ]
	[ "$get_RC" -lt 128 ]
	if [ "$get_RC" = 0 ]; then cmp "$T/src" "$T/dst/src"; else no_file src; fi
	if [ "$put_RC" = 0 ]; then [ "$get_RC" = 0 ]; else [ "$put_RC" = 130 ]; fi
	transfer_ok
}

@test "kill -9 of the receiver while the sender waits for the verdict: sender fails, region works" {
	verdict_setup
	kill -9 "$get_PID"
	finish get
	finish put 20
	[ "$get_RC" = 137 ]
	# Done may have been published just before the stop; otherwise the
	# sender sees the receiver die.
	if [ "$put_RC" = 0 ]; then
		cmp "$T/src" "$T/dst/src"
	else
		[ "$put_RC" = 1 ]
		grep -qi "receiver" "$T/put.err"
		KEEP_TMP=1 no_wrong_file src "$T/src"
	fi
	transfer_ok
}

@test "SIGINT to the receiver while the sender waits for the verdict: consistent, region works" {
	verdict_setup
	kill -INT "$get_PID"
	kill -CONT "$get_PID"
	finish get 10
	finish put 10
	[ "$get_RC" != hang ]
	[ "$put_RC" != hang ]
	if [ "$get_RC" = 0 ]; then
		cmp "$T/src" "$T/dst/src"
	else
		[ "$get_RC" = 130 ] || [ "$get_RC" = 1 ]
		no_file src
		[ "$put_RC" -ne 0 ]
		[ "$put_RC" -lt 128 ]
	fi
	transfer_ok
}

# ---- the destination ----

@test "the receiver's disk fills up: both sides fail saying so, no partial file" {
	mkdir "$T/small"
	mount -t tmpfs -o size=2M tmpfs "$T/small" || skip "cannot mount a tmpfs here"
	MOUNTS+=("$T/small")
	head -c 5M /dev/urandom >"$T/src"
	start get "$GET" -s "$REGION" "$T/small"
	run "$PUT" --timeout 20 "$T/src" "$REGION"
	echo "put: $status: $output" >&2
	[ "$status" -eq 1 ]
	[[ $output == *"no space"* ]]
	finish get
	[ "$get_RC" = 1 ]
	grep -qi "no space" "$T/get.err"
	[ -z "$(ls -A "$T/small")" ]
}

@test "a read-only destination: both sides fail with a clear error" {
	mkdir "$T/ro"
	mount -t tmpfs -o size=1M tmpfs "$T/ro" || skip "cannot mount a tmpfs here"
	MOUNTS+=("$T/ro")
	mount -o remount,ro "$T/ro"
	echo data >"$T/src"
	start get "$GET" -s "$REGION" "$T/ro"
	run "$PUT" --timeout 20 "$T/src" "$REGION"
	echo "put: $status: $output" >&2
	[ "$status" -ne 0 ]
	[[ $output == *"permission denied at the destination"* ]]
	finish get
	[ "$get_RC" != 0 ]
	[ "$get_RC" -lt 128 ]
	grep -q "Read-only file system" "$T/get.err"
}

# ---- the region itself ----

truncate_setup() {
	head -c 3M /dev/urandom >"$T/src"
	mkfifo "$T/fifo"
	start get "$GET" -s "$REGION" "$T/dst"
	IN=$T/fifo start put "$PUT" --chunk 64K --name big - "$REGION"
	"$SCRIBBLE" cat "$T/src" --piece 16384 --gap-us 5000 >"$T/fifo" 2>/dev/null &
	PIDS+=($!)
	region_wait consumed\>=3 --timeout-ms 20000
	truncate -s 0 "$R"
}

@test "the region truncated mid-transfer: nshm-get removes its temporary file and exits 1" {
	truncate_setup
	finish get 20
	[ "$get_RC" = 1 ]
	grep -q "region shrank or vanished" "$T/get.err"
	no_file big
}

@test "the region truncated mid-transfer: nshm-put exits with a message, not SIGBUS" {
	truncate_setup
	finish put 20
	[ "$put_RC" != hang ]
	# 135 is death by SIGBUS: nshm-put has no handler (see nshm-get's).
	[ "$put_RC" -ne 0 ]
	[ "$put_RC" -lt 128 ]
	[ -s "$T/put.err" ]
}

@test "the input file truncated while it is sent: nshm-put says so, exits 1, no file; the region works after" {
	# nshm-put maps a regular file (lib/proto/tx.c tx_from_map); a file cut
	# short under the mapping raises SIGBUS in the middle of a copy, which
	# the library turns into a failed transfer (send_window).
	head -c 16M /dev/urandom >"$T/src"
	start get "$GET" --peer-timeout 30 -s "$REGION" "$T/dst"
	start put "$PUT" --peer-timeout 30 --chunk 64K --slots 2 "$T/src" "$REGION"
	region_wait consumed\>=1 --signal STOP --pid "$get_PID" --timeout-ms 20000
	region_wait full --timeout-ms 10000
	truncate -s 0 "$T/src"
	kill -CONT "$get_PID"
	finish put 20
	finish get 20
	[ "$put_RC" = 1 ]
	grep -q "source shrank" "$T/put.err"
	[ "$get_RC" != 0 ] && [ "$get_RC" != hang ]
	no_file src
	transfer_ok
}

@test "a chunk corrupted after publication: the receiver fails on its checksum, no file" {
	head -c 2M /dev/urandom >"$T/src"
	mkfifo "$T/fifo"
	start get "$GET" --peer-timeout 30 -s "$REGION" "$T/dst"
	# From a slow pipe, so that the receiver is stopped early in the stream.
	IN=$T/fifo start put "$PUT" --peer-timeout 30 --chunk 64K --slots 2 --name src - "$REGION"
	"$SCRIBBLE" cat "$T/src" --piece 16384 --gap-us 2000 >"$T/fifo" 2>/dev/null &
	PIDS+=($!)
	# Stop the receiver mid-stream, let the sender fill every slot, flip a
	# bit in a published chunk the receiver has not started on, resume.
	region_wait consumed\>=1 --signal STOP --pid "$get_PID" --timeout-ms 20000
	region_wait full --timeout-ms 10000
	"$SCRIBBLE" corrupt-published "$R"
	kill -CONT "$get_PID"
	finish get
	finish put
	[ "$get_RC" = 1 ]
	grep -q "did not match its CRC-32" "$T/get.err"
	[ "$put_RC" = 1 ]
	grep -q "checksum mismatch" "$T/put.err"
	no_file src
	transfer_ok
}

@test "a chunk corrupted while the sender fills its slot: never a wrong file reported good" {
	head -c 200000 /dev/urandom >"$T/src"
	mkfifo "$T/fifo"
	start get "$GET" -s "$REGION" "$T/dst"
	IN=$T/fifo start put "$PUT" --chunk 64K --slots 1 --name filling - "$REGION"
	exec 7>"$T/fifo"
	head -c 10000 "$T/src" >&7
	region_wait rx-state=2 --timeout-ms 10000
	# Blocked reading its empty input: it has put the 10000 bytes into
	# slot 0 and waits for more.
	wait_blocked "$put_PID" read:0 poll
	"$SCRIBBLE" corrupt-filling "$R"
	# The sender may have failed meanwhile (it closes the pipe): fine.
	tail -c +10001 "$T/src" >&7 2>/dev/null || true
	exec 7>&-
	finish get
	finish put
	[ "$get_RC" != hang ]
	[ "$get_RC" -lt 128 ]
	# The sender's checksum must cover its input, not the slot, which
	# anyone with the region can rewrite before it is published.
	if [ "$get_RC" = 0 ]; then
		cmp "$T/src" "$T/dst/filling"
	else
		no_file filling
		[ "$put_RC" -ne 0 ]
	fi
}

# ---- random ----

@test "scribbler: random writes during real transfers (NSHM_SCRIBBLE_SECONDS, default 30)" {
	run bash "$BATS_TEST_DIRNAME/fuzz/scribble.sh" "${NSHM_SCRIBBLE_SECONDS:-30}"
	printf '%s\n' "$output" | tail -30 >&2
	printf '%s\n' "$output" | grep 'rounds survived' | sed 's/^/# /' >&3
	[ "$status" -eq 0 ]
}

@test "fuzzers survive a short pass (NSHM_FUZZ_SECONDS per harness, default 5)" {
	command -v "${FUZZ_CC:-clang}" >/dev/null || skip "no clang"
	# Its own build and corpus: a long `make fuzz` may be using build/fuzz.
	FUZZ_OUT=$T/fuzz run bash "$BATS_TEST_DIRNAME/fuzz/run.sh" "${NSHM_FUZZ_SECONDS:-5}"
	printf '%s\n' "$output" >&2
	[[ $output != *"cannot build libFuzzer targets"* ]] || skip "no libFuzzer runtime"
	printf '%s\n' "$output" | grep -E '^fuzz_[a-z]+: [0-9]' | sed 's/^/# /' >&3
	[ "$status" -eq 0 ]
	# The tree receiver's harness (fuzz_tree.c) ran among them.
	printf '%s\n' "$output" | grep -qE '^fuzz_tree: [0-9]+ execs'
}

# ---- peers that died on the other side ----
# A guest killed while its program waited leaves that program's line
# behind: claimed, the heartbeat still, a pid this kernel cannot check.

@test "a dead receiver of the other side left ready: nshm-put --timeout still gives up" {
	"$SCRIBBLE" forge "$R" rx --state 1
	echo data >"$T/src"
	start put "$PUT" --timeout 2 --peer-timeout 1 "$T/src" "$REGION"
	finish put 15
	[ "$put_RC" = 5 ]
	grep -q "no receiver" "$T/put.err"
}

@test "a dead sender of the other side left offering: nshm-get --timeout still gives up" {
	"$SCRIBBLE" forge "$R" tx --state 1
	start get "$GET" --timeout 2 --peer-timeout 1 -s "$REGION" "$T/dst"
	finish get 15
	[ "$get_RC" = 5 ]
	grep -q "no sender" "$T/get.err"
	[ -z "$(ls -A "$T/dst")" ]
}

@test "a dead receiver of the other side left ready: a new pair transfers after the peer timeout" {
	"$SCRIBBLE" forge "$R" rx --state 1
	head -c 100000 /dev/urandom >"$T/src"
	start put "$PUT" -q --timeout 20 --peer-timeout 1 "$T/src" "$REGION"
	region_wait tx-claimed --timeout-ms 10000
	wait_blocked "$put_PID" sleep    # waiting on the dead receiver
	start get "$GET" -q --timeout 20 --peer-timeout 1 -s "$REGION" "$T/dst"
	finish get 25
	finish put 25
	[ "$get_RC" = 0 ]
	[ "$put_RC" = 0 ]
	cmp "$T/src" "$T/dst/src"
}

# ---- a live pair wedged by one write ----
# Found by the scribbler (a round where both programs ran into the hard
# timeout): the sender's state turned from "ended" back to "idle" before
# the receiver saw the end record. The receiver then waits for more chunks
# from a live sender, the sender for a verdict from a live receiver: both
# heartbeats move, so neither --peer-timeout nor --timeout ends it. Each
# side could notice that its own published state is no longer what it
# wrote.

# end_overwritten STATE: the sender's end state set to STATE by a third
# writer before the receiver saw it; neither side may hang.
end_overwritten() {
	head -c 100000 /dev/urandom >"$T/src"
	mkfifo "$T/pipe"
	start get "$GET" --peer-timeout 5 -s "$REGION" "$T/dst"
	IN=$T/pipe start put "$PUT" --peer-timeout 5 --chunk 64K --slots 2 -n src - "$REGION"
	# The first chunk, then the receiver stopped, then the rest: the end
	# record then waits for the receiver, however loaded the machine
	# (catching the moment it stands otherwise was a race).
	exec 5>"$T/pipe"
	head -c 65536 "$T/src" >&5
	region_wait produced'>='1 --signal STOP --pid "$get_PID" --timeout-ms 20000
	tail -c +65537 "$T/src" >&5
	exec 5>&-
	region_wait tx-state=2 --timeout-ms 20000
	"$SCRIBBLE" set "$R" tx.state "$1"
	kill -CONT "$get_PID"
	finish get 15
	finish put 15
	cat "$T/get.err" "$T/put.err"
	[ "$get_RC" != hang ]
	[ "$put_RC" != hang ]
}

@test "the sender's end record overwritten before the receiver saw it: both sides end" {
	end_overwritten 0
	if [ "$get_RC" = 0 ]; then cmp "$T/src" "$T/dst/src"; else no_file src; fi
}

@test "the sender's end state set back to offer before the receiver saw it: both sides fail, no wedge" {
	# Found by the scribbler (a fresh run at 612fd27): the receiver waited
	# for a chunk, the sender for the verdict, both alive. The sender now
	# checks its own end state while it waits, as it checks its count.
	end_overwritten 1
	[ "$get_RC" != 0 ]
	[ "$put_RC" != 0 ]
	grep -q "our end record was overwritten" "$T/put.err"
	no_file src
}

@test "an end state a third writer stores before any chunk (piped input): the receiver fails the length check, never an empty success" {
	# Found by the scribbler (round 98 of a fresh-clone run at 612fd27):
	# tx.state set to end while the sender still waited for its input; the
	# zeroed totals passed as an empty stream, and nshm-get said success.
	mkfifo "$T/pipe"
	start get "$GET" --peer-timeout 5 -s "$REGION" "$T/dst"
	IN=$T/pipe start put "$PUT" --peer-timeout 5 --chunk 64K --slots 2 -n src - "$REGION"
	exec 5>"$T/pipe"
	region_wait rx-state=2 --timeout-ms 20000
	"$SCRIBBLE" set "$R" tx.state 2
	finish get 15
	(printf x >&5) 2>/dev/null || true   # a sender that heard the failure has gone
	exec 5>&-
	finish put 15
	cat "$T/get.err" "$T/put.err"
	[ "$get_RC" != hang ]
	[ "$put_RC" != hang ]
	[ "$get_RC" != 0 ]
	[ "$put_RC" != 0 ]
	grep -q "length does not match its end record" "$T/get.err"
	no_file src
}

@test "the receiver's count of freed chunks set back mid-stream: both sides end, no wedge" {
	mkfifo "$T/pipe"
	start get "$GET" --peer-timeout 1 -s "$REGION" "$T/dst"
	start put sh -c "exec $PUT --peer-timeout 1 --chunk 64K --slots 2 -n src - $REGION <$T/pipe"
	exec 5>"$T/pipe"
	head -c 1048576 /dev/urandom >&5
	# The receiver has freed all 16 chunks and waits for more; the sender
	# waits for input. Set the count back: before the fix, the sender then
	# waited for a slot and the receiver for a chunk, both alive, forever.
	region_wait consumed'>='16 --timeout-ms 20000
	"$SCRIBBLE" set "$R" rx.consumed 0
	# Bounded: a sender that waits for a slot stops reading its input.
	timeout 5 head -c 1048576 /dev/urandom >&5 || true
	exec 5>&-
	finish get 15
	finish put 15
	[ "$get_RC" != hang ]
	[ "$put_RC" != hang ]
	[ "$put_RC" != 0 ]
	no_file src
}

# The same write, before the sender read the count it replaced: the
# sender then has nothing to compare with and waits for a slot, and only
# the receiver can tell that its own count changed (scribbler round 117 of
# a fresh-clone run: both programs ran into the hard timeout).
@test "the receiver's count of freed chunks set back before the sender read it: both sides end" {
	mkfifo "$T/pipe"
	start get "$GET" --peer-timeout 1 -s "$REGION" "$T/dst"
	start put sh -c "exec $PUT --peer-timeout 1 --chunk 64K --slots 1 -n src - $REGION <$T/pipe"
	exec 5>"$T/pipe"
	# One chunk: the sender publishes it and waits for input, the
	# receiver frees it and waits for the next one.
	head -c 65536 /dev/urandom >&5
	region_wait consumed'>='1 --timeout-ms 20000
	"$SCRIBBLE" set "$R" rx.consumed 0
	# The next chunk needs the slot the sender now thinks is taken.
	timeout 5 head -c 65536 /dev/urandom >&5 || true
	exec 5>&-
	finish get 15
	finish put 15
	[ "$get_RC" != hang ]
	[ "$put_RC" != hang ]
	[ "$get_RC" != 0 ]
	[ "$put_RC" != 0 ]
	grep -q "our count of freed chunks was overwritten" "$T/get.err"
	no_file src
}
