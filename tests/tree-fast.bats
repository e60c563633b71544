#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# The fast paths of sets of files (#14): the sender writes ustar headers
# itself for plain files (lib/tree/ustar.c) and libarchive the rest; the
# receiver writes regular files itself (lib/tree/rx_create.c write_fast). Both
# kinds mixed in one stream must arrive as GNU tar reads them.
load helpers

setup() { setup_region 8M; }
teardown() { teardown_region; }

# name, type, mode, size, mtime, sha256 of every entry under DIR.
describe() {
	(cd "$1" && find . -mindepth 1 -print0 | sort -z | while IFS= read -r -d '' f; do
		if [ -f "$f" ] && [ ! -L "$f" ]; then
			printf '%q %s %s\n' "$f" "$(stat -c '%F %a %s %Y' -- "$f")" \
				"$(sha256sum <"$f" | cut -c1-16)"
		else
			printf '%q %s\n' "$f" "$(stat -c '%F %a' -- "$f")"
		fi
	done)
}

long() { printf "%${1}s" | tr ' ' "$2"; }

make_mixed() {
	local d=$1 l
	mkdir -p "$d/$(long 60 d)" "$d/$(long 150 e)/$(long 90 f)"
	echo short >"$d/plain"
	# Over 100 bytes: the name splits into prefix and name fields.
	echo split >"$d/$(long 60 d)/$(long 80 x)"
	# Over 255 bytes, a component over 100: libarchive's pax record.
	echo pax1 >"$d/$(long 150 e)/$(long 90 f)/$(long 120 y)"
	# No '/' that leaves 100 bytes or less: pax too.
	echo pax2 >"$d/$(long 150 e)/$(long 101 z)"
	printf 'caf\303\251' >"$d/$(printf 'caf\303\251')"
	head -c 300000 /dev/urandom >"$d/big"
	: >"$d/empty"
	echo linked >"$d/a"
	ln "$d/a" "$d/b"
	ln -s plain "$d/sym"
	chmod 0640 "$d/plain"
	touch -d '2001-02-03 04:05:06' "$d/big"
}

@test "plain files, long names, links and UTF-8 names in one stream arrive intact" {
	make_mixed "$T/src/t"
	mkdir "$T/dst"
	bg get "$GET" -q -s "$REGION" "$T/dst"
	"$PUT" -q "$T/src/t" "$REGION"
	[ "$(wait_rc get)" = 0 ]
	diff <(describe "$T/src/t") <(describe "$T/dst/t")
	[ "$(stat -c %i "$T/dst/t/a")" = "$(stat -c %i "$T/dst/t/b")" ]
	[ -z "$(find "$T/dst" -name '.nshm-*')" ]
}

@test "the stream of a mixed tree is a tar archive GNU tar extracts the same" {
	make_mixed "$T/src/t"
	bg get "$GET" -q -s "$REGION" -
	"$PUT" -q "$T/src/t" "$REGION"
	[ "$(wait_rc get)" = 0 ]
	mkdir "$T/x"
	tar -xf "$T/get.out" -C "$T/x"
	diff <(describe "$T/src/t") <(describe "$T/x/t")
}

@test "into a directory below DEST and beside existing files: --force replaces files, never a directory" {
	mkdir -p "$T/src/t/sub" "$T/dst/t/sub/f2"
	echo one >"$T/src/t/sub/f1"
	echo two >"$T/src/t/sub/f2"
	echo old >"$T/dst/t/sub/f1"
	bg get "$GET" -q -s "$REGION" "$T/dst"
	run "$PUT" -q "$T/src/t" "$REGION"
	[ "$status" -ne 0 ]
	[ "$(wait_rc get)" != 0 ]
	grep -q "f1 exists (use --force" "$T/get.err"
	[ "$(cat "$T/dst/t/sub/f1")" = old ]
	bg get2 "$GET" -q -f -s "$REGION" "$T/dst"
	run "$PUT" -q "$T/src/t" "$REGION"
	[ "$(wait_rc get2)" != 0 ]
	grep -q "f2 is a directory" "$T/get2.err"
	[ "$(cat "$T/dst/t/sub/f1")" = one ]
	[ -d "$T/dst/t/sub/f2" ]
	[ -z "$(find "$T/dst" -name '.nshm-*')" ]
}

@test "a file entry whose directory in DEST is a symlink is refused, --force or not" {
	# Only the file, no entry for its directory: the receiver's own
	# parent walk meets the symlink.
	python3 -c 'import io, sys, tarfile
t = tarfile.open(sys.argv[1], "w", format=tarfile.USTAR_FORMAT)
i = tarfile.TarInfo("sub/f"); i.size = 2
t.addfile(i, io.BytesIO(b"x\n")); t.close()' "$T/a.tar"
	mkdir -p "$T/dst" "$T/elsewhere"
	ln -s "$T/elsewhere" "$T/dst/sub"
	for force in "" -f; do
		bg get "$GET" -q $force -s "$REGION" "$T/dst"
		run "$BIN/tools/send-archive" "$T/a.tar" "$REGION"
		[ "$(wait_rc get)" != 0 ]
		grep -q "through a symbolic link" "$T/get.err"
		[ -z "$(ls -A "$T/elsewhere")" ]
	done
}
