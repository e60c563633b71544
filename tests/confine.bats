#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# Confinement by file descriptor (issue 20, findings 1, 2 and 5): a path a
# peer names is resolved once beneath DIR or ROOT and only its fd is used
# after, so another user swapping a directory for a symlink in a loop gets
# nothing out of ROOT and puts nothing outside DIR; FIFOs, devices and
# sockets are refused, never opened to block; a source that shrinks under
# the sender fails the transfer with a message, never a signal.
#
# Each race runs 1,000 tries against a swapper that exchanges a directory
# and a symlink (renameat2 RENAME_EXCHANGE) as fast as it can, as the user
# nobody. The tries are made by tests/tools/race-peer in one process (a
# thousand nshm-put or nshm-get processes would cost a minute); the
# resident under test is $BIN/nshm-get, except for the trees' race, whose
# receiver is the library's own in race-peer (see there). Against e1e3d2e
# (NSHM_BIN=/old/build) these tests fail; the trees' race against 5ee0822,
# where libarchive's writer still made entries by name, too (10 entries
# outside DEST in 1000 tries).
load helpers

TOOLS=$BATS_TEST_DIRNAME/../build/tools
TRIES=${NSHM_RACE_TRIES:-1000}

setup() {
	setup_region 4M
	# Where the stranger plays: reachable by nobody (bats' own dir is 0700).
	W=$(mktemp -d /tmp/nshm-confine.XXXXXX)
	chmod 755 "$W"
	mkdir -p "$W/in" "$W/root" "$W/out" "$W/secret"
	echo SECRET >"$W/secret/f"
	chown nobody:nogroup "$W/in" "$W/root"
}

teardown() {
	teardown_region
	rm -rf "$W"
}

# serve [OPTIONS...]: the resident under test, DIR $W/in, log in serve.err.
serve() {
	bg serve "$GET" --serve --json --peer-timeout 5 -s "$REGION" "$@" "$W/in"
	until_true 10 grep -q . <("$STAT" "$REGION" | grep '^receiver.*ready')
}

alive() {
	pgrep -f "nshm-get --serve --json --peer-timeout 5 -s $REGION " >/dev/null
}

# swapper A B: nobody exchanges A and B in a loop; returns once it has.
swapper() {
	local before
	before=$(stat -c %F "$1")
	bg swap setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$TOOLS/race-peer" swap "$1" "$2"
	until_true 10 flipped "$1" "$before"
}

flipped() {
	[ "$(stat -c %F "$1" 2>/dev/null)" != "$2" ]
}

# stop_swapper: the swapper process itself, by its pid.
stop_swapper() {
	local p
	p=$(pgrep -P "$swap_PID" | head -1)
	[ -n "$p" ] && kill "$p" 2>/dev/null || true
	wait_rc swap 10 >/dev/null
}

@test "push to SUBDIR: $TRIES tries while a component flips between a directory and a symlink out of DIR, 0 escapes" {
	mkdir "$W/in/a"
	ln -s "$W/out" "$W/in/a.alt"
	chown -h nobody:nogroup "$W/in/a" "$W/in/a.alt"
	serve
	swapper "$W/in/a" "$W/in/a.alt"
	run timeout 120 "$TOOLS/race-peer" push "$REGION" a/b "$TRIES"
	stop_swapper
	echo "$output"
	[ "$status" -eq 0 ]
	escapes=$(find "$W/out" -mindepth 1 | wc -l)
	echo "escapes: $escapes" >&3
	echo "# push: $output" >&3
	[ "$escapes" -eq 0 ]
	[[ $output == "tries $TRIES "*"failed 0 "* ]]
	alive
	# Refusals say why.
	grep -q "symbolic link" "$T/serve.err"
}

@test "push of a set of files to SUBDIR: $TRIES tries against the same flip, 0 escapes" {
	mkdir "$W/in/a" "$T/tree"
	echo t >"$T/tree/t"
	ln -s "$W/out" "$W/in/a.alt"
	chown -h nobody:nogroup "$W/in/a" "$W/in/a.alt"
	serve --force
	swapper "$W/in/a" "$W/in/a.alt"
	run timeout 120 "$TOOLS/race-peer" push-tree "$REGION" a/b "$TRIES" "$T/tree"
	stop_swapper
	echo "$output"
	echo "# tree: $output" >&3
	escapes=$(find "$W/out" -mindepth 1 | wc -l)
	[ "$escapes" -eq 0 ]
	[[ $output == "tries $TRIES "*"failed 0 "* ]]
	[ "$(cat "$W/in/a/b/tree/t" 2>/dev/null || cat "$W/in/a.alt/b/tree/t")" = t ]
	alive
}

# nested_archive FILE: a pax archive whose every entry lies below a/,
# with no entry for a itself (the receiver only passes through it): 4
# nested directories, each with a file, a symlink to it and a hard link
# to it (ustar, 20 KiB: each try costs a few ms).
nested_archive() {
	python3 - "$1" <<'PY'
import io, sys, tarfile
t = tarfile.open(sys.argv[1], "w", format=tarfile.USTAR_FORMAT)
def add(name, data=None, **kw):
    ti = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(ti, k, v)
    ti.size = len(data) if data else 0
    t.addfile(ti, io.BytesIO(data) if data else None)
d = "a"
for i in range(4):
    d += "/d%d" % i
    add(d, type=tarfile.DIRTYPE, mode=0o755)
    add(d + "/f", b"f\n", mode=0o644)
    add(d + "/l", type=tarfile.SYMTYPE, linkname="f")
    add(d + "/h", type=tarfile.LNKTYPE, linkname=d + "/f")
t.close()
PY
}

@test "trees of nested directories, symlinks and hard links: $TRIES tries while a directory they pass through flips with a symlink out of DEST, 0 escapes" {
	# Every entry of a tree is made relative to its parent's fd (mkdirat,
	# symlinkat, linkat, a file's temporary name and rename), the parent
	# reached one name at a time without following a symlink: the swap
	# either finds the real directory (held by fd wherever it is renamed
	# to, inside DEST) or refuses the entry. The receiver is the library's
	# (nshm_rx_tree, what nshm-get runs) in race-peer itself: a resident
	# pauses after each failed transfer, and half of these fail.
	mkdir "$W/in/a"
	ln -s "$W/out" "$W/in/a.alt"
	chown -h nobody:nogroup "$W/in/a" "$W/in/a.alt"
	chown nobody:nogroup "$W/in"
	nested_archive "$T/nested.tar"
	swapper "$W/in/a" "$W/in/a.alt"
	timeout 150 "$TOOLS/race-peer" tree-rx "$REGION" "$TRIES" "$T/nested.tar" "$W/in" \
		>"$T/rx.out" 2>"$T/rx.err"
	stop_swapper
	out=$(cat "$T/rx.out")
	echo "$out"
	sort "$T/rx.err" | uniq -c | sort -rn | head -5
	echo "# nested: $out" >&3
	escapes=$(find "$W/out" -mindepth 1 | wc -l)
	echo "# escapes: $escapes" >&3
	find "$W/out" -mindepth 1 | head -5
	[ "$escapes" -eq 0 ]
	[[ $out == "tries $TRIES "* ]]
	# Some tries found the directory, some the symlink: refused, saying so.
	[[ $out != *" ok 0 "* ]]
	grep -q "through a symbolic link" "$T/rx.err"
}

# made_dir_moment SWAP-COMMAND [nshm-get OPTIONS...]: a tree $T/src
# (swapme/f, swapme/deeper/g) sent to the hooks build of nshm-get, which
# stops right after it made DEST/src/swapme and before it opens it; SWAP
# runs then (as another user would, had they write access there), then
# the receiver goes on. get.rc and put.rc are in $T.
made_dir_moment() {
	local swap=$1 hget=$BIN/hooks/nshm-get pid; shift
	[ -x "$hget" ] || skip "no hooks build (make unit builds build/hooks/)"
	mkdir -p "$T/src/swapme/deeper"
	echo f >"$T/src/swapme/f"
	echo g >"$T/src/swapme/deeper/g"
	[ -z "${PREP:-}" ] || eval "$PREP"
	bg get env NSHM_TEST_STOP_MADE_DIR=swapme "$hget" "$@" --timeout 30 -s "$REGION" "$W/in"
	bg put "$PUT" --timeout 30 "$T/src" "$REGION"
	pid=$(prog_of "$get_PID")
	wait_stopped "$pid"
	[ -d "$W/in/src/swapme" ] && [ ! -e "$W/in/src/swapme/f" ]
	eval "$swap"
	kill -CONT "$pid"
	wait_rc get 40 >"$T/get.rc.seen"
	wait_rc put 40 >"$T/put.rc.seen"
	cat "$T/get.err" "$T/put.err"
}

@test "a tree's directory swapped for a symlink out of DEST between mkdirat and its open: nothing lands outside, both sides fail" {
	made_dir_moment 'mv "$W/in/src/swapme" "$W/moved" && ln -s "$W/out" "$W/in/src/swapme"'
	[ "$(cat "$T/get.rc.seen")" != 0 ]
	[ "$(cat "$T/put.rc.seen")" != 0 ]
	[ -z "$(ls -A "$W/out")" ]
	[ -z "$(ls -A "$W/moved")" ]
	grep -q "refused 'src/swapme/'" "$T/get.err"
	grep -q "the receiver failed" "$T/put.err"
}

@test "-p as root: a directory another user swapped in between mkdirat and its open keeps its owner, mode and times; the tree arrives in it" {
	# The check that the opened directory is this process's own (else
	# left as it is) is what keeps root from chown'ing it to the sender's
	# owner and chmod'ing it: the swapped-in one stays nobody's, 0777.
	PREP='chmod 0750 "$T/src/swapme"; chown 1234:1234 "$T/src/swapme"; touch -d 2001-01-01 "$T/src/swapme"' \
		made_dir_moment 'mv "$W/in/src/swapme" "$W/moved" && mkdir "$W/in/src/swapme" &&
			chown nobody:nogroup "$W/in/src/swapme" && chmod 0777 "$W/in/src/swapme"' -p
	[ "$(cat "$T/get.rc.seen")" = 0 ]
	[ "$(cat "$T/put.rc.seen")" = 0 ]
	[ "$(stat -c '%U %a' "$W/in/src/swapme")" = "nobody 777" ]
	[ "$(stat -c %Y "$W/in/src/swapme")" -gt "$(date -d 2002-01-01 +%s)" ]
	[ "$(cat "$W/in/src/swapme/deeper/g")" = g ]
	[ -z "$(ls -A "$W/moved")" ]
}

@test "pull: $TRIES tries while a component flips between a directory and a symlink out of ROOT, 0 escapes" {
	mkdir "$W/root/a"
	echo plain >"$W/root/a/f"
	ln -s "$W/secret" "$W/root/a.alt"
	chown -h nobody:nogroup "$W/root/a" "$W/root/a.alt" "$W/root/a/f"
	serve --allow-pull "$W/root"
	swapper "$W/root/a" "$W/root/a.alt"
	run timeout 120 "$TOOLS/race-peer" pull "$REGION" a/f "$TRIES" SECRET
	stop_swapper
	echo "$output"
	echo "# pull: $output" >&3
	[ "$status" -eq 0 ]
	[[ $output == *"escaped 0"* ]]
	[[ $output == "tries $TRIES "*"failed 0 "* ]]
	alive
}

@test "pull: $TRIES tries while a file flips with a FIFO, the resident never blocks" {
	echo plain >"$W/root/p"
	mkfifo "$W/root/p.alt"
	chown nobody:nogroup "$W/root/p" "$W/root/p.alt"
	serve --allow-pull "$W/root"
	swapper "$W/root/p" "$W/root/p.alt"
	run timeout 120 "$TOOLS/race-peer" pull "$REGION" p "$TRIES" SECRET
	stop_swapper
	echo "$output"
	echo "# fifo: $output" >&3
	[ "$status" -eq 0 ]
	[[ $output == "tries $TRIES "*"failed 0 "* ]]
	alive
}

@test "a FIFO, a device or a socket at the pulled path is refused with a reason; the resident goes on" {
	mkfifo "$W/root/fifo"
	mknod "$W/root/null" c 1 3
	"$TOOLS/race-peer" sock "$W/root/sock"
	echo plain >"$W/root/ok"
	serve --allow-pull "$W/root"
	for what in fifo:FIFO null:device sock:socket; do
		run timeout 30 "$GET" --timeout 10 -s "$REGION" --pull "${what%%:*}" "$T/"
		echo "$output"
		[ "$status" -eq 4 ]
		[[ $output == *"cannot take this kind"* ]]
		grep -q "${what%%:*}: a ${what##*:}.*, not a file or a directory" "$T/serve.err"
		alive
	done
	"$GET" --timeout 10 -s "$REGION" --pull ok "$T/"
	[ "$(cat "$T/ok")" = plain ]
}

@test "a FIFO at the destination is never opened: refused, or replaced with --force" {
	mkfifo "$W/in/f" "$W/in/sub"
	echo data >"$T/f"
	serve
	run timeout 30 "$PUT" --timeout 10 "$T/f" "$REGION"
	[ "$status" -eq 4 ]
	run timeout 30 "$PUT" --timeout 10 "$T/f" "$REGION:sub"
	[ "$status" -eq 4 ]
	grep -q "SUBDIR 'sub': it is not a directory" "$T/serve.err"
	[ -p "$W/in/f" ] && [ -p "$W/in/sub" ]
	alive
	# The one-shot receiver, DEST a FIFO.
	mkfifo "$T/dest"
	truncate -s 4M "/dev/shm/$REGION-2"
	bg get "$GET" --timeout 10 -s "$REGION-2" "$T/dest"
	run timeout 30 "$PUT" --timeout 10 "$T/f" "$REGION-2"
	[ "$status" -eq 4 ]
	[ "$(wait_rc get 20)" -eq 4 ]
	[ -p "$T/dest" ]
	rm -f "/dev/shm/$REGION-2"
}

@test "nshm-put refuses a SUBDIR with '..' or absolute before any transfer, in the receiver's words" {
	serve
	echo x >"$T/f"
	for sub in ../esc a/../../b /abs a/./b; do
		run "$PUT" --timeout 1 "$T/f" "$REGION:$sub"
		echo "$output"
		[ "$status" -eq 2 ]
		[[ $output == *"bad SUBDIR '$sub': "* ]]
	done
	[ "$(grep -c '"event":"offered"' "$T/serve.out")" -eq 0 ]
	# The receiver's rule is the same function: a forged request says the same.
	run "$PUT" --timeout 1 "$T/f" "$REGION:a/../../b"
	why=${output#*: it }
	why=${why%% (*}
	"$TOOLS/hostile-peer" request "$REGION" "a/../../b" || true
	grep -qF "it $why" "$T/serve.err"
	# A symlinked component only the receiver can see: refused there, with
	# the reason, and nshm-put says so.
	ln -s "$W/out" "$W/in/link"
	run "$PUT" --timeout 10 "$T/f" "$REGION:link/x"
	echo "$output"
	[ "$status" -eq 4 ]
	grep -q "SUBDIR 'link': it is or passes through a symbolic link" "$T/serve.err"
	[ -z "$(ls -A "$W/out")" ]
	alive
}

# stalled_get NAME ARGS...: nshm-get ARGS writing to a pipe whose reader
# takes 1 MiB, says so ($T/NAME.stalled) and stops reading until
# $T/NAME.go exists: the sender then waits, its source mapped, for slots.
stalled_get() {
	local name=$1; shift
	bg "$name" bash -c '"$@" - | { head -c 1048576 >/dev/null; touch "$T/'"$name"'.stalled"
		until [ -e "$T/'"$name"'.go" ]; do sleep 0.05; done; cat >/dev/null; }
		exit "${PIPESTATUS[0]}"' get "$@"
}

@test "a source cut or grown under nshm-put fails the transfer with a message, not a signal" {
	export T
	truncate -s 64M "$T/big"
	stalled_get get "$GET" --timeout 10 -s "$REGION"
	bg put "$PUT" --timeout 10 "$T/big" "$REGION"
	until_true 30 test -e "$T/get.stalled"
	truncate -s 0 "$T/big"
	touch "$T/get.go"
	[ "$(wait_rc put 30)" -eq 1 ]
	grep -q "source shrank" "$T/put.err"
	[ "$(wait_rc get 30)" -ne 0 ]
	grep -q "sender aborted" "$T/get.err"
	# Grown: more than was offered is never sent.
	truncate -s 64M "$T/big"
	stalled_get get2 "$GET" --timeout 10 -s "$REGION"
	bg put "$PUT" --timeout 10 "$T/big" "$REGION"
	until_true 30 test -e "$T/get2.stalled"
	truncate -s 65M "$T/big"
	touch "$T/get2.go"
	rc=$(wait_rc put 30)
	cat "$T/put.err" "$T/get2.err"
	[ "$rc" -eq 1 ]
	grep -q "source changed size" "$T/put.err"
	[ "$(wait_rc get2 30)" -ne 0 ]
}

@test "a source cut while it is pulled: the resident logs it and goes on, the requester fails" {
	export T
	truncate -s 64M "$W/root/big"
	echo plain >"$W/root/ok"
	serve --allow-pull "$W/root"
	stalled_get pull "$GET" --timeout 10 -s "$REGION" --pull big
	until_true 30 test -e "$T/pull.stalled"
	truncate -s 0 "$W/root/big"
	touch "$T/pull.go"
	[ "$(wait_rc pull 30)" -ne 0 ]
	cat "$T/pull.err"
	grep -q "sender aborted" "$T/pull.err"
	until_true 10 grep -q "source shrank" "$T/serve.err"
	alive
	"$GET" --timeout 10 -s "$REGION" --pull ok "$T/"
	[ "$(cat "$T/ok")" = plain ]
}

@test "without openat2 (ENOSYS, a seccomp filter) a peer's SUBDIR and pull PATH are refused with the reason, nothing made; a tree into DIR arrives" {
	# Linux before 5.6 (or a container's seccomp profile) has no openat2:
	# the resident must refuse what it cannot confine, not fall back to a
	# lookup by name. tests/tools/no-openat2 makes openat2 fail with ENOSYS
	# for the resident alone.
	echo data >"$T/f"
	echo plain >"$W/root/ok"
	mkdir -p "$T/tree/d" "$W/in/sub"
	echo t >"$T/tree/d/t"
	bg serve "$TOOLS/no-openat2" "$GET" --serve --json --peer-timeout 5 -s "$REGION" \
		--allow-pull "$W/root" "$W/in"
	until_true 10 grep -q . <("$STAT" "$REGION" | grep '^receiver.*ready')
	run timeout 30 "$PUT" --timeout 10 "$T/f" "$REGION:sub/new"
	echo "$output"
	[ "$status" -eq 4 ]
	run timeout 30 "$GET" --timeout 10 -s "$REGION" --pull ok "$T/"
	echo "$output"
	[ "$status" -eq 4 ]
	[ ! -e "$T/ok" ]
	cat "$T/serve.err"
	grep -q "SUBDIR 'sub': this kernel has no openat2" "$T/serve.err"
	grep -q "refused a pull: ok: this kernel has no openat2" "$T/serve.err"
	[ -z "$(ls -A "$W/in/sub")" ]
	# A tree into DIR itself arrives whole: the tree receiver walks to each
	# entry's parent one name at a time with openat(O_NOFOLLOW), the same
	# rule as openat2's for one name (lib/util/beneath.c nshm_open_child),
	# so it needs no openat2; and what arrives stays beneath DIR.
	run timeout 30 "$PUT" --timeout 10 "$T/tree" "$REGION"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(cat "$W/in/tree/d/t")" = t ]
	[ -z "$(ls -A "$W/out")" ] && [ -z "$(ls -A "$W/in/sub")" ]
	[ "$(ls -A "$W/in")" = "$(printf 'sub\ntree')" ]
	alive
}
