#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# A compromised peer against the real programs (issue 10): deadlines a
# peer cannot move, no spinning, names escaped on the terminal, the
# progress label owned by the CLI, endpoints that are what they say.
# build/tools/hostile-peer (tests/tools/hostile-peer.c) plays the peer.
load helpers

HOSTILE=$BATS_TEST_DIRNAME/../build/tools/hostile-peer

setup() {
	setup_region 4M
	mkdir -p "$T/dst"
	[ -x "$HOSTILE" ] || skip "build/tools/hostile-peer not built (make unit)"
}

teardown() {
	teardown_region
	rm -f "/dev/shm/$REGION-link" "/dev/shm/$REGION-fifo"
}

# under FILE: /usr/bin/time's last line "USER SYS WALL" (it may say the
# exit status on a line before it).
times_of() { tail -n 1 "$1"; }

@test "a sender line whose owner keeps changing: nshm-put --timeout gives up as busy" {
	bg peer "$HOSTILE" rotate-tx "$REGION" 20
	region_wait tx-owned --timeout-ms 20000
	run timeout 15 /usr/bin/time -f "%U %S %e" -o "$T/time" \
		"$PUT" --timeout 1 --peer-timeout 1 /etc/hostname "$REGION"
	echo "$output"
	[ "$status" -eq 3 ]
	[[ $output == *busy* ]]
	times_of "$T/time" | awk '{ exit !($3 < 5) }'
}

@test "a receiver line whose owner keeps changing: nshm-get --timeout gives up as busy" {
	bg peer "$HOSTILE" rotate-rx "$REGION" 20
	region_wait rx-owned --timeout-ms 20000
	run timeout 15 "$GET" --timeout 1 --peer-timeout 1 -s "$REGION" "$T/dst"
	echo "$output"
	[ "$status" -eq 3 ]
	[[ $output == *busy* ]]
}

@test "a sender that changes its owner token mid-session: nshm-get fails within its deadline" {
	bg peer "$HOSTILE" session "$REGION" 20
	run timeout 15 /usr/bin/time -f "%U %S %e" -o "$T/time" \
		"$GET" --timeout 5 --peer-timeout 1 -s "$REGION" "$T/dst"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"stopped responding"* ]]
	times_of "$T/time" | awk '{ exit !($3 < 5) }'
	[ -z "$(ls -A "$T/dst")" ]
}

@test "a receiver renewing its readiness every 50 us: nshm-put backs off (under 5 % of a core)" {
	bg peer "$HOSTILE" flip "$REGION" 20
	region_wait rx-state=1 --timeout-ms 20000
	run timeout 15 /usr/bin/time -f "%U %S %e" -o "$T/time" \
		"$PUT" --timeout 3 /etc/hostname "$REGION"
	echo "$output"; cat "$T/time"
	[ "$status" -eq 5 ]
	times_of "$T/time" | awk '{ exit !(($1 + $2) / $3 < 0.05) }'
}

@test "names from the peer are escaped on the terminal (file, progress label, nshm-stat)" {
	# Control bytes never pass the offer's checks; a C1 control in UTF-8
	# (CSI, U+009B) and a byte that is no UTF-8 do, and must not reach a
	# terminal raw.
	local evil=$'a\xc2\x9b2Jb\xffc'
	printf 'x%.0s' {1..3000} >"$T/src"
	touch "$T/dst/$evil"
	# The receiver refuses: the file exists; its message names it, escaped.
	bg put "$PUT" --timeout 10 -n "$evil" "$T/src" "$REGION"
	run timeout 15 "$GET" --timeout 10 -s "$REGION" "$T/dst"
	echo "$output"
	[ "$status" -eq 4 ]
	[[ $output == *'a\xc2\x9b2Jb\xffc exists'* ]]
	[[ $output != *$'\x9b'* ]]
	wait_rc put
	# In progress: the label on a pseudo-terminal, and nshm-stat meanwhile.
	rm -f "$T/dst/$evil"
	mkfifo "$T/pipe"
	# script(1) runs the command with $SHELL, which may be dash (no $'...'
	# there; CI has it): the name reaches it through the environment.
	export EVIL_LABEL=$'a\xc2\x9b2Jb'
	bg put2 script -qec "$PUT --timeout 10 -n \"\$EVIL_LABEL\" - $REGION <$T/pipe" /dev/null
	# The receiver first: started after the exec it would hold the pipe open.
	bg get2 "$GET" --timeout 10 -s "$REGION" "$T/dst"
	exec 5>"$T/pipe"
	printf 'x%.0s' {1..5000} >&5
	until_true 10 grep -q . <("$STAT" "$REGION" | grep transfer)
	run "$STAT" "$REGION"
	exec 5>&-
	echo "$output"
	[[ $output == *'a\xc2\x9b2Jb'* ]]
	[[ $output != *$'\x9b'* ]]
	[ "$(wait_rc put2)" = 0 ]
	[ "$(wait_rc get2)" = 0 ]
	cat "$T/put2.out"
	grep -qF 'a\xc2\x9b2Jb' "$T/put2.out"
	! grep -q $'\x9b' "$T/put2.out"
}

@test "a tree smaller than one chunk with a TTY on stderr: the label outlives its entry" {
	mkdir -p "$T/tree/d"
	echo one >"$T/tree/d/one"
	echo two >"$T/tree/two"
	bg get "$GET" --timeout 10 -s "$REGION" "$T/dst"
	run script -qec "$PUT --timeout 10 $T/tree $REGION" /dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(wait_rc get)" = 0 ]
	[ "$(cat "$T/dst/tree/two")" = two ]
}

@test "a NAME endpoint that is a symbolic link or not a regular file is refused" {
	ln -s "/dev/shm/$REGION" "/dev/shm/$REGION-link"
	run "$PUT" --timeout 1 /etc/hostname "$REGION-link"
	echo "$output"
	[ "$status" -eq 3 ]
	[[ $output == *"symbolic link"* ]]
	mkfifo "/dev/shm/$REGION-fifo"
	run timeout 5 "$GET" --timeout 1 -s "$REGION-fifo" "$T/dst"
	echo "$output"
	[ "$status" -eq 3 ]
	[[ $output == *"not a regular file"* ]]
}

@test "--name longer than 255 bytes is refused, not cut" {
	run "$PUT" --timeout 1 -n "$(printf 'n%.0s' {1..256})" - "$REGION" </dev/null
	echo "$output"
	[ "$status" -eq 2 ]
	[[ $output == *"bad --name"* ]]
}

@test "nshm-stat takes only the options its --help lists" {
	local opt
	for opt in --timeout=1 --peer-timeout=1 --quiet; do
		run "$STAT" "$opt" "$REGION"
		[ "$status" -eq 2 ]
	done
	run "$STAT" --help
	for opt in $(printf '%s\n' "$output" | grep -o -- '--[a-z-]*' | sort -u); do
		[[ $opt == --help || $opt == --version ]] && continue
		run "$STAT" "$opt" 2>&1
		[[ $output != *"unrecognized option"* ]]
	done
}

@test "a single file's mode passes through the receiver's umask" {
	echo data >"$T/src"
	chmod 0666 "$T/src"
	bg get bash -c "umask 022; exec $GET --timeout 10 -s $REGION $T/dst"
	run "$PUT" --timeout 10 "$T/src" "$REGION"
	[ "$status" -eq 0 ]
	[ "$(wait_rc get)" = 0 ]
	[ "$(stat -c %a "$T/dst/src")" = 644 ]
}

@test "--digest sha256: both ends print the stream's SHA-256, the file's own for one file" {
	head -c 3000000 /dev/urandom >"$T/src"
	local want
	want=$(sha256sum <"$T/src" | cut -d' ' -f1)
	bg get "$GET" -q --digest sha256 --timeout 10 -s "$REGION" "$T/dst"
	run "$PUT" -q --digest sha256 --timeout 10 "$T/src" "$REGION"
	[ "$status" -eq 0 ]
	[ "$output" = "$want  src" ]
	[ "$(wait_rc get)" = 0 ]
	grep -qx "$want  $T/dst/src" "$T/get.err"
	# A set of files: the pax stream's, the same on both ends, also in JSON.
	mkdir -p "$T/tree/d" "$T/dst2"
	cp "$T/src" "$T/tree/d/f"
	bg get2 "$GET" --json --digest sha256 --timeout 10 -s "$REGION" "$T/dst2"
	run "$PUT" -q --digest sha256 --timeout 10 "$T/tree" "$REGION"
	[ "$status" -eq 0 ]
	[ "$(wait_rc get2)" = 0 ]
	local sent=${output%% *}
	grep -q "\"sha256\":\"$sent\"" "$T/get2.out"
	run "$PUT" --digest md5 "$T/src" "$REGION"
	[ "$status" -eq 2 ]
}
