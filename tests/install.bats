#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# `make install DESTDIR=... PREFIX=/usr`: the exact files, the shared
# library's soname and links, pkg-config, a program built against the
# installed tree sending to the installed nshm-get, the completions found
# where each shell looks, and `make uninstall` leaving nothing behind.
#
# The build goes to a scratch BUILD directory so that it neither depends on
# nor disturbs build/ (and nshm.pc is made with this PREFIX).

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
# The library's version, from its one source; the soname carries its major.
VER=$(sed -nE 's/^#define NSHM_LIB_VERSION "([0-9.]+)"$/\1/p' "$ROOT/lib/nshm.h")
MAJOR=${VER%%.*}

setup_file() {
	export D=$BATS_FILE_TMPDIR/dest B=$BATS_FILE_TMPDIR/build
	mkdir -p "$D"
	# Under `make check`, the outer make's flags (SAN=1, a jobserver) stay out.
	unset MAKEFLAGS MFLAGS MAKELEVEL
	make -C "$ROOT" -j"$(nproc 2>/dev/null || echo 2)" BUILD="$B" DESTDIR="$D" PREFIX=/usr \
		install >"$BATS_FILE_TMPDIR/install.log" 2>&1 ||
		{ cat "$BATS_FILE_TMPDIR/install.log" >&2; return 1; }
}

setup() {
	T=$BATS_TEST_TMPDIR
	SHM=nshm-install-$$-$BATS_TEST_NUMBER
	PIDS=()
	export HOME=$T/home XDG_CONFIG_HOME=$T/home/.config XDG_DATA_HOME=$T/home/.local/share
	mkdir -p "$HOME"
}

teardown() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	rm -f "/dev/shm/$SHM"
}

# not CMD...: CMD fails (a bare "! CMD" never fails a bats test).
not() {
	if "$@"; then
		echo "unexpectedly true: $*" >&2
		return 1
	fi
	return 0
}

installed() {
	(cd "$D" && find . ! -type d | sed 's|^\./||' | LC_ALL=C sort)
}

@test "install: exactly the expected files" {
	local m
	{
		printf '%s\n' usr/bin/nshm-put usr/bin/nshm-get usr/bin/nshm-stat \
			usr/bin/nshm-server usr/lib/systemd/system/nshm-server@.service \
			usr/lib/systemd/system/nshm-receiver@.service \
			usr/lib/udev/rules.d/70-nshm.rules usr/lib/udev/rules.d/99-nshm.rules \
			usr/sbin/nshm-mtrr-restore \
			usr/share/bash-completion/completions/nshm-server \
			usr/share/fish/vendor_completions.d/nshm-server.fish \
			usr/share/man/man8/nshm-server.8 \
			usr/include/nshm.h \
			"usr/lib/libnshm.so.$VER" "usr/lib/libnshm.so.$MAJOR" usr/lib/libnshm.so \
			usr/lib/libnshm.a usr/lib/pkgconfig/nshm.pc \
			usr/share/bash-completion/completions/nshm-put \
			usr/share/bash-completion/completions/nshm-get \
			usr/share/bash-completion/completions/nshm-stat \
			usr/share/zsh/site-functions/_nshm \
			usr/share/fish/vendor_completions.d/nshm-put.fish \
			usr/share/fish/vendor_completions.d/nshm-get.fish \
			usr/share/fish/vendor_completions.d/nshm-stat.fish \
			usr/share/man/man1/nshm-put.1 usr/share/man/man1/nshm-get.1 \
			usr/share/man/man1/nshm-stat.1 usr/share/man/man3/libnshm.3
		# nshm(7) once it is written.
		[ ! -f "$ROOT/man/nshm.7" ] || echo usr/share/man/man7/nshm.7
	} | LC_ALL=C sort >"$T/expected"
	installed >"$T/got"
	diff -u "$T/expected" "$T/got"
	# Every page in man/ is installed (the list above has them all).
	for m in "$ROOT"/man/*.[1378]; do
		grep -qx "usr/share/man/man${m##*.}/${m##*/}" "$T/got"
	done
}

@test "install: modes, links, soname and contents" {
	local f
	for f in nshm-put nshm-get nshm-stat nshm-server; do
		[ "$(stat -c %a "$D/usr/bin/$f")" = 755 ]
		[ ! -L "$D/usr/bin/$f" ]
		cmp "$B/$f" "$D/usr/bin/$f"
	done
	[ -n "$VER" ] && [ "$MAJOR" -ge 0 ]
	for f in "usr/lib/libnshm.so.$VER" usr/lib/libnshm.a usr/include/nshm.h \
		usr/lib/pkgconfig/nshm.pc usr/share/man/man1/nshm-put.1 \
		usr/share/zsh/site-functions/_nshm; do
		[ "$(stat -c %a "$D/$f")" = 644 ]
	done
	[ -f "$D/usr/lib/libnshm.so.$VER" ] && [ ! -L "$D/usr/lib/libnshm.so.$VER" ]
	[ "$(readlink "$D/usr/lib/libnshm.so.$MAJOR")" = "libnshm.so.$VER" ]
	[ "$(readlink "$D/usr/lib/libnshm.so")" = "libnshm.so.$MAJOR" ]
	run readelf -d "$D/usr/lib/libnshm.so.$VER"
	[ "$status" -eq 0 ]
	[[ $output == *"(SONAME)"*"Library soname: [libnshm.so.$MAJOR]"* ]]
	# Only the API is exported, by the shared library and the static one.
	run sh -c "nm -D --defined-only '$D/usr/lib/libnshm.so.$VER' | awk '\$2 == \"T\" { print \$3 }'"
	[[ $output == *nshm_tx_begin* ]]
	not grep -qv '^nshm_' <<<"$output"
	local so=$output
	run sh -c "nm -g --defined-only '$D/usr/lib/libnshm.a' | awk 'NF == 3 { print \$3 }'"
	[ "$status" -eq 0 ]
	[[ $output == *nshm_tx_begin* ]]
	not grep -qv '^nshm_' <<<"$output"
	diff -u <(LC_ALL=C sort <<<"$so") <(LC_ALL=C sort <<<"$output")
	cmp "$ROOT/lib/nshm.h" "$D/usr/include/nshm.h"
	cmp "$ROOT/completions/nshm.bash" "$D/usr/share/bash-completion/completions/nshm-get"
	for f in "$ROOT"/man/*.1; do cmp "$f" "$D/usr/share/man/man1/${f##*/}"; done
	grep -qx 'prefix=/usr' "$D/usr/lib/pkgconfig/nshm.pc"
	# Paths in the unit and the rules follow PREFIX.
	grep -qx 'ExecStart=/usr/bin/nshm-get .*' "$D/usr/lib/systemd/system/nshm-receiver@.service"
	grep -q 'RUN+="/usr/sbin/nshm-mtrr-restore"' "$D/usr/lib/udev/rules.d/99-nshm.rules"
	[ "$(stat -c %a "$D/usr/sbin/nshm-mtrr-restore")" = 755 ]
	grep -qx 'libdir=/usr/lib' "$D/usr/lib/pkgconfig/nshm.pc"
	grep -qx 'includedir=/usr/include' "$D/usr/lib/pkgconfig/nshm.pc"
	"$D/usr/bin/nshm-put" --version
	# The unit runs the installed server.
	grep -qx 'ExecStart=/usr/bin/nshm-server $NSHM_SERVER_ARGS %I' \
		"$D/usr/lib/systemd/system/nshm-server@.service"
	[ "$(stat -c %a "$D/usr/lib/systemd/system/nshm-server@.service")" = 644 ]
	# The resident receiver's unit, and the udev rule that starts it.
	grep -qx 'ExecStart=/usr/bin/nshm-get --serve -s %I $NSHM_RECEIVER_ARGS ${NSHM_INCOMING}' \
		"$D/usr/lib/systemd/system/nshm-receiver@.service"
	grep -q 'SYSTEMD_WANTS.*nshm-receiver@pci:%k.service' "$D/usr/lib/udev/rules.d/70-nshm.rules"
	cmp "$ROOT/man/nshm-server.8" "$D/usr/share/man/man8/nshm-server.8"
}

# pc ARGS...: pkg-config on the installed tree.
pc() {
	PKG_CONFIG_SYSROOT_DIR=$D PKG_CONFIG_PATH=$D/usr/lib/pkgconfig \
		pkg-config "$@"
}

@test "install: a program built with pkg-config sends a buffer to the installed nshm-get" {
	run pc --modversion nshm
	[ "$output" = "$VER" ]
	run pc --cflags --libs nshm
	[ "$status" -eq 0 ]
	[[ $output == *"-I$D/usr/include"* && $output == *"-L$D/usr/lib"* && $output == *-lnshm* ]]
	# shellcheck disable=SC2046
	cc -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$T/sendbuf" \
		"$ROOT/tests/install/sendbuf.c" $(pc --cflags --libs nshm)
	# It runs on the installed shared library.
	run env LD_LIBRARY_PATH="$D/usr/lib" ldd "$T/sendbuf"
	[[ $output == *"libnshm.so.0 => $D/usr/lib/libnshm.so.0 "* ]]

	# 3 MB through a 1 MiB region: many chunks, every slot reused.
	truncate -s 1M "/dev/shm/$SHM"
	mkdir "$T/in"
	LD_LIBRARY_PATH=$D/usr/lib timeout 30 "$D/usr/bin/nshm-get" -q --timeout 20 \
		-s "$SHM" "$T/in" >"$T/get.out" 2>"$T/get.err" &
	PIDS+=($!)
	local get=$!
	LD_LIBRARY_PATH=$D/usr/lib timeout 30 "$T/sendbuf" "$SHM" buffer.bin 3000000 "$T/sent"
	wait "$get" || { cat "$T/get.err" >&2; return 1; }
	cmp "$T/sent" "$T/in/buffer.bin"
	[ "$(stat -c '%s %a %Y' "$T/in/buffer.bin")" = "3000000 640 1234567890" ]
	[ "$(ls -A "$T/in")" = buffer.bin ]
}

@test "install: a program linking libnshm.a statically may use the library's internal names" {
	# Names libnshm uses inside. Were they global in libnshm.a, nshm_stat's
	# call of snap_tx would reach this program's, or the link would fail.
	cat >"$T/clash.c" <<-'EOF'
	#include <stdio.h>
	#include <nshm.h>
	int wait_until(void);
	int snap_tx(void);
	int claim_take(void);
	int validate_name(void);
	int wait_until(void) { return 1; }
	int snap_tx(void) { return 2; }
	int claim_take(void) { return 3; }
	int validate_name(void) { return 4; }
	int main(int argc, char **argv)
	{
		struct nshm_region *r;
		struct nshm_stat st;
		char msg[256];
		int rc;

		if (argc != 2 || nshm_open(&r, argv[1], 0, msg, sizeof(msg)) != 0)
			return 2;
		rc = nshm_stat(r, &st, 1);
		nshm_close(r);
		printf("%d %d %d\n", rc, st.tx.present,
		       wait_until() + snap_tx() + claim_take() + validate_name());
		return rc != 0;
	}
	EOF
	# libnshm.a itself, its dependencies shared (pkg-config --static would
	# want the static libraries of libarchive's own dependencies).
	local deps
	deps="$(pkg-config --libs zlib libarchive) -lpthread"
	! pkg-config --exists libisal || deps="$deps $(pkg-config --libs libisal)"
	# shellcheck disable=SC2086
	cc -std=c11 -Wall -Wextra -Werror -I"$D/usr/include" -o "$T/clash" "$T/clash.c" \
		"$D/usr/lib/libnshm.a" $deps
	# Static: no libnshm.so needed.
	not sh -c "readelf -d '$T/clash' | grep -q libnshm"
	truncate -s 64K "/dev/shm/$SHM"
	run "$T/clash" "$SHM"
	[ "$status" -eq 0 ]
	[ "$output" = "0 0 10" ]
}

@test "install: each shell finds the completions where it looks" {
	local share=$D/usr/share
	# bash-completion: <XDG_DATA_DIRS>/bash-completion/completions/<command>.
	if [ -f /usr/share/bash-completion/bash_completion ]; then
		run env XDG_DATA_DIRS="$share" BASH_COMPLETION_USER_DIR="$T/none" bash -c '
			source /usr/share/bash-completion/bash_completion
			for p in nshm-put nshm-get nshm-stat; do
				complete -r $p 2>/dev/null
				__load_completion $p && complete -p $p
			done'
		[ "$status" -eq 0 ]
		[[ $output == *"-F _nshm nshm-put"* && $output == *"-F _nshm nshm-get"* &&
			$output == *"-F _nshm nshm-stat"* ]]
	fi
	# zsh: site-functions on $fpath, #compdef picked up by compinit.
	run zsh -fc "fpath=(${share@Q}/zsh/site-functions \$fpath)
		autoload -U compinit && compinit -u -D
		print -r -- \$_comps[nshm-put] \$_comps[nshm-get] \$_comps[nshm-stat]"
	[ "$status" -eq 0 ]
	[ "$output" = "_nshm _nshm _nshm" ]
	# fish: <XDG_DATA_DIRS>/fish/vendor_completions.d, autoloaded by the
	# name of a command found on PATH.
	run env XDG_DATA_DIRS="$share" PATH="$D/usr/bin:$PATH" fish -c 'complete -C "nshm-stat --"'
	[ "$status" -eq 0 ]
	[[ $output == *--watch* && $output == *--interval* ]]
	run env XDG_DATA_DIRS="$share" PATH="$D/usr/bin:$PATH" fish -c 'complete -C "nshm-get --"'
	[[ $output == *--preserve-owner* ]]
}

@test "uninstall: leaves no files behind" {
	unset MAKEFLAGS MFLAGS MAKELEVEL
	make -C "$ROOT" BUILD="$B" DESTDIR="$D" PREFIX=/usr uninstall >"$T/uninstall.log" 2>&1 ||
		{ cat "$T/uninstall.log" >&2; return 1; }
	installed >"$T/left"
	[ ! -s "$T/left" ] || { cat "$T/left" >&2; return 1; }
}
