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
	until_true 30 test -s "$T/dst/big"
	pkill -9 -f "nshm-put --slots 1 --chunk 4K $T/first"
	[ "$(wait_rc get)" = 1 ]
	grep -q "2 entries arrived" "$T/get.err"
	[ "$(cat "$T/dst/first")" = first ]
	[ "$(cat "$T/dst/second")" = second ]
	[ ! -e "$T/dst/big" ]
}
