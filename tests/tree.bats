#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# Sets of files: several FILEs or directories as one pax stream.
load helpers

setup() { setup_region 8M; }
teardown() { teardown_region; }

# listing DIR: type, mode, size, link target, link count, mtime (files), sha256.
listing() {
	(cd "$1" && find . -mindepth 1 -print0 | sort -z | while IFS= read -r -d '' f; do
		t=$(stat -c '%F %a %s %h' -- "$f")
		case $t in
		"regular"*) s=$(sha256sum <"$f" | cut -c1-16); m=$(stat -c %Y -- "$f") ;;
		"symbolic"*) s=$(readlink -- "$f"); m= ;;
		*) s=; m= ;;
		esac
		printf '%q %s %s %s\n' "$f" "$t" "$s" "$m"
	done)
}

make_tree() {
	local d=$1
	mkdir -p "$d/sub/deeper" "$d/empty" "$d/sub/empty too"
	echo alpha >"$d/a.txt"
	chmod 0750 "$d/a.txt"
	head -c 100000 /dev/urandom >"$d/sub/deeper/blob"
	printf 'space' >"$d/sub/with space"
	printf 'utf8' >"$d/sub/caf$(printf '\303\251')-$(printf '\346\227\245')"
	printf 'newline' >"$d/new
line"
	ln -s a.txt "$d/link"
	ln -s ../a.txt "$d/sub/uplink"
	ln "$d/a.txt" "$d/sub/hard"
	touch -d '2010-01-02 03:04:05' "$d/sub/with space"
}

@test "a tree with empty dirs, links, modes, odd names and a sparse file arrives intact" {
	make_tree "$T/src/tree"
	truncate -s 1G "$T/src/tree/sparse"
	dd if=/dev/urandom of="$T/src/tree/sparse" bs=1M count=1 seek=500 conv=notrunc status=none
	mkdir "$T/dst"
	bg get "$GET" --json -s "$REGION" "$T/dst"
	run "$PUT" --json "$T/src/tree" "$REGION"
	[ "$status" -eq 0 ]
	[ "$(wait_rc get)" = 0 ]
	diff <(listing "$T/src") <(listing "$T/dst")
	# Holes are not sent: about 1 MiB crossed the region, not 1 GiB.
	bytes=$(sed -n 's/.*"bytes":\([0-9]*\).*/\1/p' <<<"$output")
	[ "$bytes" -lt $((4 << 20)) ]
	[ "$(du -k "$T/dst/tree/sparse" | cut -f1)" -lt 4096 ]
	grep -q '"entries":14' "$T/get.out"
}

@test "several files and a directory on one command line" {
	echo one >"$T/one"
	echo two >"$T/two"
	make_tree "$T/d"
	mkdir "$T/dst"
	bg get "$GET" -q -s "$REGION" "$T/dst"
	"$PUT" -q "$T/one" "$T/d" "$T/two" "$REGION"
	[ "$(wait_rc get)" = 0 ]
	cmp "$T/one" "$T/dst/one"
	cmp "$T/two" "$T/dst/two"
	diff <(listing "$T/d") <(listing "$T/dst/d")
}

@test "1000 files of 4 KiB" {
	mkdir -p "$T/many"
	for i in $(seq 1 1000); do head -c 4096 /dev/urandom >"$T/many/f$i"; done
	bg get "$GET" -q -s "$REGION" "$T/dst"
	"$PUT" -q "$T/many" "$REGION"
	[ "$(wait_rc get)" = 0 ]
	[ "$(ls "$T/dst/many" | wc -l)" -eq 1000 ]
	(cd "$T/many" && sha256sum f* | sort) >"$T/a"
	(cd "$T/dst/many" && sha256sum f* | sort) >"$T/b"
	cmp "$T/a" "$T/b"
}

@test "existing files are not replaced without --force" {
	make_tree "$T/tree"
	mkdir -p "$T/dst/tree"
	echo mine >"$T/dst/tree/a.txt"
	bg get "$GET" -s "$REGION" "$T/dst"
	run "$PUT" -q "$T/tree" "$REGION"
	[ "$status" -ne 0 ]
	[ "$(wait_rc get)" = 4 ]
	grep -q "a.txt.*use --force" "$T/get.err"
	[ "$(cat "$T/dst/tree/a.txt")" = mine ]
	bg get2 "$GET" -q -f -s "$REGION" "$T/dst"
	"$PUT" -q "$T/tree" "$REGION"
	[ "$(wait_rc get2)" = 0 ]
	diff <(listing "$T/tree") <(listing "$T/dst/tree")
}

@test "a set of files to standard output is a pax archive" {
	make_tree "$T/tree"
	bg get "$GET" -q -s "$REGION" -
	"$PUT" -q "$T/tree" "$REGION"
	[ "$(wait_rc get)" = 0 ]
	tar -tf "$T/get.out" | grep -qx 'tree/sub/deeper/blob'
}

# craft NAME: a hostile archive written by python's tarfile.
craft() {
	python3 - "$T/$1.tar" "$1" <<'PY'
import io, sys, tarfile
path, kind = sys.argv[1], sys.argv[2]
t = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)
def add(name, data=b"x", **kw):
    ti = tarfile.TarInfo(name); ti.size = len(data)
    for k, v in kw.items(): setattr(ti, k, v)
    t.addfile(ti, io.BytesIO(data) if ti.type in (tarfile.REGTYPE,) else None)
add("fine.txt")
if kind == "dotdot": add("../escape.txt")
if kind == "deepdotdot": add("a/../../escape.txt")
if kind == "absolute": add("/tmp/nshm-abs-escape.txt")
if kind == "symlink":
    add("ln", type=tarfile.SYMTYPE, linkname="/tmp"); add("ln/nshm-through-link.txt")
if kind == "symlinkrel":
    add("up", type=tarfile.SYMTYPE, linkname=".."); add("up/escape.txt")
if kind == "hardlink": add("hl", type=tarfile.LNKTYPE, linkname="../outside.txt")
if kind == "garbage": pass
t.close()
if kind == "garbage":
    open(path, "wb").write(b"\x00" * 100 + b"not a tar at all" * 100)
PY
}

@test "hostile archives are refused and nothing lands outside DEST" {
	echo outside >"$T/outside.txt"
	for kind in dotdot deepdotdot absolute symlink symlinkrel hardlink garbage; do
		craft $kind
		rm -rf "$T/dst"; mkdir -p "$T/dst"
		bg get_$kind "$GET" -s "$REGION" --peer-timeout 5 "$T/dst"
		run "$BIN/tools/send-archive" "$T/$kind.tar" "$REGION"
		rc=$(wait_rc get_$kind)
		echo "$kind: get $rc, send $status: $(cat "$T/get_$kind.err")"
		[ "$rc" -ne 0 ]
		[ "$status" -ne 0 ]
		[ ! -e "$T/escape.txt" ]
		[ ! -e /tmp/nshm-abs-escape.txt ]
		[ ! -e /tmp/nshm-through-link.txt ]
		[ "$(cat "$T/outside.txt")" = outside ]
		# Whatever arrived is inside DEST.
		[ -z "$(find "$T" -newer "$T/outside.txt" -name '*escape*' -not -path "$T/dst/*")" ]
	done
}

@test "a tree transfer cut short keeps completed entries, removes the one in progress" {
	echo first >"$T/first"
	echo second >"$T/second"
	head -c 200M /dev/zero >"$T/big"
	mkdir "$T/dst"
	bg get "$GET" -s "$REGION" "$T/dst"
	bg put "$PUT" --slots 1 --chunk 4K "$T/first" "$T/second" "$T/big" "$REGION"
	until_true 30 partial "$T/dst" big
	pkill -9 -f "nshm-put --slots 1 --chunk 4K $T/first"
	[ "$(wait_rc get)" = 1 ]
	grep -q "2 entries arrived" "$T/get.err"
	[ "$(cat "$T/dst/first")" = first ]
	[ "$(cat "$T/dst/second")" = second ]
	[ ! -e "$T/dst/big" ]
}

# ---- issue 10: what a compromised sender must not do to the receiver ----

CRAFT=$BATS_TEST_DIRNAME/tools/craft-tar.py

# crafted KIND [GET OPTIONS...]: the real nshm-get into $T/dst, fed the
# crafted archive KIND by send-archive; $get_rc and $send_rc are set.
crafted() {
	local kind=$1 job=get_${1//-/_}; shift
	[ -s "$T/$kind.tar" ] || python3 "$CRAFT" "$kind" "$T/$kind.tar"
	bg $job "$GET" -s "$REGION" --peer-timeout 5 "$@" "$T/dst"
	send_rc=0
	"$BIN/tools/send-archive" "$T/$kind.tar" "$REGION" 2>"$T/send_$kind.err" || send_rc=$?
	get_rc=$(wait_rc $job)
	[ "$job" = "get_$kind" ] || cp "$T/$job.err" "$T/get_$kind.err"
	echo "$kind ($*): get $get_rc, send $send_rc: $(cat "$T/get_$kind.err")"
}

needs_root() { [ "$(id -u)" = 0 ] || skip "needs root"; }

@test "#10.1 a hard link carrying data does not rewrite an existing file, --force or not" {
	mkdir "$T/dst"
	for force in "" -f; do
		echo mine >"$T/dst/victim.txt"
		chmod 0644 "$T/dst/victim.txt"
		crafted hardlink-body $force
		[ "$get_rc" -ne 0 ]
		[ "$send_rc" -ne 0 ]
		[ "$(cat "$T/dst/victim.txt")" = mine ]
		[ "$(stat -c '%a %h' "$T/dst/victim.txt")" = "644 1" ]
		[ ! -e "$T/dst/evil" ]
		grep -q "evil" "$T/get_hardlink-body.err"
	done
	# Not even into a file of this transfer: a hard link has no body.
	crafted hardlink-own-body
	[ "$get_rc" -ne 0 ]
	[ "$(cat "$T/dst/mine")" = mine ]
}

@test "#10.1 a hard link to a file that existed before the transfer is refused, --force or not" {
	mkdir "$T/dst"
	echo mine >"$T/dst/victim.txt"
	for force in "" -f; do
		crafted hardlink-pre $force
		[ "$get_rc" -ne 0 ]
		[ "$(stat -c %h "$T/dst/victim.txt")" = 1 ]
		[ ! -e "$T/dst/evil" ]
		grep -q "evil" "$T/get_hardlink-pre.err"
		# Nor through a symlink the transfer made.
		rm -f "$T/dst/sl"
		crafted hardlink-symlink $force
		[ "$get_rc" -ne 0 ]
		[ "$(stat -c %h "$T/dst/victim.txt")" = 1 ]
		[ ! -e "$T/dst/evil" ]
	done
	[ "$(cat "$T/dst/victim.txt")" = mine ]
	# A link to a file of the same transfer arrives.
	crafted hardlink-ok
	[ "$get_rc" = 0 ]
	[ "$(stat -c %i "$T/dst/first")" = "$(stat -c %i "$T/dst/sub/second")" ]
	[ "$(cat "$T/dst/sub/second")" = first ]
}

@test "#10.2 device nodes and FIFOs are refused, naming the entry" {
	needs_root
	for kind in chardev blockdev fifo; do
		rm -rf "$T/dst"; mkdir "$T/dst"
		crafted $kind
		[ "$get_rc" -ne 0 ]
		[ "$send_rc" -ne 0 ]
		[ -z "$(ls -A "$T/dst")" ]
	done
	grep -q "mem.*character device" "$T/get_chardev.err"
	grep -q "disk.*block device" "$T/get_blockdev.err"
	grep -q "pipe.*FIFO" "$T/get_fifo.err"
}

@test "#10.2 set-id and sticky bits are never restored, with -p neither" {
	needs_root
	umask 022
	for p in "" -p; do
		rm -rf "$T/dst"; mkdir "$T/dst"
		crafted setid $p
		[ "$get_rc" = 0 ]
		[ "$(stat -c %a "$T/dst/suid")" = 755 ]
		[ "$(stat -c %a "$T/dst/sgid")" = 755 ]
		[ "$(stat -c %a "$T/dst/sticky")" = 644 ]
		[ "$(stat -c %a "$T/dst/sdir")" = 755 ]
	done
}

@test "#10.3 --force re-modes or re-owns neither DEST nor an existing directory" {
	needs_root
	mkdir "$T/dst" "$T/dst/sub"
	chmod 0750 "$T/dst"
	chmod 0700 "$T/dst/sub"
	for p in "" -p; do
		rm -f "$T/dst/sub/file"
		crafted dotdir -f $p
		[ "$get_rc" = 0 ]
		[ "$(stat -c '%a %u %g' "$T/dst")" = "750 0 0" ]
		[ "$(stat -c '%a %u %g' "$T/dst/sub")" = "700 0 0" ]
		[ "$(cat "$T/dst/sub/file")" = new ]
	done
}

@test "#10.4 modes pass through the receiver's umask unless -p" {
	umask 022
	mkdir "$T/dst"
	crafted modes
	[ "$get_rc" = 0 ]
	[ "$(stat -c %a "$T/dst/rw-all")" = 644 ]
	[ "$(stat -c %a "$T/dst/rwx-all")" = 755 ]
	[ "$(stat -c %a "$T/dst/dir-all")" = 755 ]
	needs_root
	rm -rf "$T/dst"; mkdir "$T/dst"
	crafted modes -p
	[ "$get_rc" = 0 ]
	[ "$(stat -c %a "$T/dst/rw-all")" = 666 ]
	[ "$(stat -c %a "$T/dst/rwx-all")" = 777 ]
	[ "$(stat -c %a "$T/dst/dir-all")" = 777 ]
}

# Peak RSS bound for the receiver: 64 MiB (not meaningful under ASan).
RSS_BOUND_KB=65536

@test "#10.5 a 20 MB GNU sparse map: refused, the receiver stays under 64 MiB" {
	python3 "$CRAFT" sparse-bomb-20 "$T/bomb.tar"
	mkdir "$T/dst"
	bg get "$BIN/tools/maxrss" "$T/rss" "$GET" -s "$REGION" --peer-timeout 5 "$T/dst"
	run "$BIN/tools/send-archive" "$T/bomb.tar" "$REGION"
	rc=$(wait_rc get)
	echo "get $rc, send $status, peak RSS $(cat "$T/rss") KiB: $(cat "$T/get.err")"
	[ "$rc" -ne 0 ]
	[ "$status" -ne 0 ]
	[ ! -e "$T/dst/bomb" ]
	if nm -D "$GET" 2>/dev/null | grep -q __asan_init || nm "$GET" 2>/dev/null | grep -q __asan_init; then
		skip "ASan build: its shadow memory is not the receiver's"
	fi
	[ "$(cat "$T/rss")" -lt "$RSS_BOUND_KB" ]
}

@test "#10.5 names and link targets beyond PATH_MAX are refused; a small sparse map arrives" {
	mkdir "$T/dst"
	for kind in longname longlink; do
		crafted $kind
		[ "$get_rc" -ne 0 ]
		[ -z "$(ls -A "$T/dst")" ]
	done
	crafted sparse
	[ "$get_rc" = 0 ]
	[ "$(stat -c %s "$T/dst/holes")" = $((1 << 20)) ]
	[ "$(dd if="$T/dst/holes" bs=1 skip=4096 count=5 status=none)" = aaaaa ]
	[ "$(dd if="$T/dst/holes" bs=1 skip=$((1 << 19)) count=5 status=none)" = bbbbb ]
}

@test "#10.5 --max-bytes caps what the receiver writes, a tree or one file" {
	mkdir "$T/dst"
	crafted big-then-small --max-bytes 1M
	[ "$get_rc" -ne 0 ]
	[ ! -e "$T/dst/big" ]
	grep -q "limit of" "$T/get_big-then-small.err"
	rm -rf "$T/dst"; mkdir "$T/dst"
	crafted big-then-small --max-bytes 4M
	[ "$get_rc" = 0 ]
	[ "$(stat -c %s "$T/dst/big")" = $((3 << 20)) ]
	# One file: refused when its offered size is over, cut when a stream of
	# unknown size goes over.
	head -c 3M /dev/urandom >"$T/one"
	bg get1 "$GET" -s "$REGION" --max-bytes 1M "$T/dst"
	run "$PUT" "$T/one" "$REGION"
	[ "$status" -ne 0 ]
	[ "$(wait_rc get1)" -ne 0 ]
	[ ! -e "$T/dst/one" ]
	grep -q "limit of" "$T/get1.err"
	bg get2 "$GET" -s "$REGION" --max-bytes 1M "$T/dst"
	run "$PUT" --name piped - "$REGION" <"$T/one"
	[ "$status" -ne 0 ]
	[ "$(wait_rc get2)" -ne 0 ]
	[ -z "$(ls -A "$T/dst" | grep -v '^big$\|^small$')" ]
	bg get3 "$GET" -q -s "$REGION" --max-bytes 3M "$T/dst"
	"$PUT" -q "$T/one" "$REGION"
	[ "$(wait_rc get3)" = 0 ]
	cmp "$T/one" "$T/dst/one"
	run "$GET" --help
	[[ $output == *"--max-bytes"* ]]
}

# partial DIR NAME: DIR holds some bytes of NAME, under its name or not.
partial() {
	[ -s "$1/$2" ] || [ -n "$(find "$1" -maxdepth 1 -name '.nshm-*' -size +0 2>/dev/null)" ]
}

@test "#10.10 a receiver killed mid-entry leaves no partial file under a final name" {
	echo first >"$T/first"
	head -c 200M /dev/zero >"$T/big"
	mkdir "$T/dst"
	bg get "$GET" -s "$REGION" "$T/dst"
	bg put "$PUT" --slots 1 --chunk 4K "$T/first" "$T/big" "$REGION"
	until_true 30 partial "$T/dst" big
	# bg's subshell runs timeout, which runs nshm-get.
	kill -9 "$(pgrep -x nshm-get -P "$(pgrep -P "$get_PID" -x timeout)")"
	wait_rc put >/dev/null
	[ "$(cat "$T/dst/first")" = first ]
	[ ! -e "$T/dst/big" ]
	# What stays: the entry in progress under a hidden temporary name.
	[ "$(find "$T/dst" -name '.nshm-*' | wc -l)" -le 1 ]
}

# As the case above, the fault being the region truncated instead of the receiver killed.
@test "#10.10 the region truncated mid-entry: no partial file under a final name" {
	echo first >"$T/first"
	head -c 200M /dev/zero >"$T/big"
	mkdir "$T/dst"
	bg get "$GET" -s "$REGION" "$T/dst"
	bg put "$PUT" --slots 1 --chunk 4K "$T/first" "$T/big" "$REGION"
	until_true 30 partial "$T/dst" big
	truncate -s 0 "/dev/shm/$REGION"
	[ "$(wait_rc get)" = 1 ]
	grep -q "region shrank or vanished" "$T/get.err"
	[ "$(cat "$T/dst/first")" = first ]
	[ ! -e "$T/dst/big" ]
}

@test "past 256 directories waiting for their modes and times: a read-only directory's content arrives, each directory gets its mtime" {
	# Each directory made waits for its mode and times as an open fd,
	# 256 at most (lib/tree/extract.h DEFER_MAX); past that the finished
	# ones (not on the way to the current entry) get theirs first. The
	# receiver is not root here, so a read-only directory given its mode
	# too early would refuse its own content.
	command -v setpriv >/dev/null || skip "setpriv (util-linux) not installed"
	W=$(mktemp -d /tmp/nshm-tree-defer.XXXXXX)
	chmod 755 "$W"
	mkdir -p "$W/src/t/ro" "$W/dst"
	for i in $(seq -w 1 300); do mkdir "$W/src/t/ro/d$i"; echo "$i" >"$W/src/t/ro/d$i/f"; done
	find "$W/src/t" -type d -exec touch -d '2001-02-03 04:05:06' {} +
	chmod 555 "$W/src/t/ro"
	chown nobody:nogroup "$W/dst"
	chmod 666 "$R"
	# nobody runs a copy of its own: the clone may sit where only root
	# can read (a fresh root's /root/nshm is 0700), and nshm-get is then
	# not there for nobody to run.
	install -m 755 "$GET" "$W/nshm-get"
	bg get setpriv --reuid=nobody --regid=nogroup --clear-groups \
		bash -c 'umask 022; exec "$@"' get "$W/nshm-get" -q --timeout 60 -s "$REGION" "$W/dst"
	# Bounded: a receiver that never came must fail the test, not hang it.
	"$PUT" -q --timeout 60 "$W/src/t" "$REGION"
	rc=$(wait_rc get)
	cat "$T/get.err"
	[ "$rc" = 0 ]
	[ "$(stat -c %a "$W/dst/t/ro")" = 555 ]
	[ "$(find "$W/dst/t/ro" -name f | wc -l)" -eq 300 ]
	want=$(stat -c %Y "$W/src/t/ro")
	got=$(find "$W/dst/t" -type d -exec stat -c %Y {} + | sort | uniq -c)
	echo "mtimes: $got (want $want)"
	[ "$(echo $got)" = "302 $want" ]
	chmod -R u+w "$W/dst" 2>/dev/null; rm -rf "$W"
}

@test "-p: owners by name where the name exists here, else by number; files, directories and symlinks" {
	needs_root
	python3 - "$T/own.tar" <<'PY'
import io, sys, tarfile
t = tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT)
def add(name, kind, uname, uid, gname, gid):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.uname, ti.uid, ti.gname, ti.gid = uname, uid, gname, gid
    if kind == tarfile.SYMTYPE:
        ti.linkname = "f"
    data = b"x\n" if kind == tarfile.REGTYPE else b""
    ti.size = len(data)
    ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    t.addfile(ti, io.BytesIO(data) if data else None)
add("d", tarfile.DIRTYPE, "nobody", 4000, "nogroup", 4001)
add("d/f", tarfile.REGTYPE, "nshm-no-such-user", 4242, "nshm-no-such-group", 4243)
add("d/l", tarfile.SYMTYPE, "nobody", 1, "nogroup", 1)
t.close()
PY
	mkdir "$T/dst"
	bg get "$GET" -p -s "$REGION" --peer-timeout 5 "$T/dst"
	"$BIN/tools/send-archive" "$T/own.tar" "$REGION"
	[ "$(wait_rc get)" = 0 ]
	[ "$(stat -c '%U %G' "$T/dst/d")" = "nobody nogroup" ]
	[ "$(stat -c '%u %g' "$T/dst/d/f")" = "4242 4243" ]
	[ "$(stat -c '%U %G' "$T/dst/d/l")" = "nobody nogroup" ]
}
