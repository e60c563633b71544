#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# The Debian packages of `make deb` (debian/, tests/deb-build.sh): built
# by dpkg-buildpackage in a clean copy (or build/deb/ reused when its stamp
# matches this tree), then: lintian reports no error and no warning, each
# package holds exactly its files, the dependencies are right (libarchive
# declared although only dlopen loads it), the versions agree, the symbols
# file is the library's exports, a user without libarchive is told what to
# install, dkms builds the packaged module for Debian 12's kernels, and
# the autopkgtests pass (autopkgtest ... -- null: on this machine; packages
# it installs are purged afterwards unless they were installed before).
# What the packages do in a running systemd guest: tests/guest/guest-deb.bats.

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
OUT=${NSHM_DEB_DIR:-$ROOT/build/deb}
VER=$(sed -nE 's/^#define NSHM_LIB_VERSION "([0-9.]+)"$/\1/p' "$ROOT/lib/nshm.h")
MAJOR=${VER%%.*}
ARCH=$(dpkg --print-architecture)
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
PKGS="nshm libnshm$MAJOR libnshm-dev nshm-dkms"

setup_file() {
	unset MAKEFLAGS MFLAGS MAKELEVEL
	bash "$ROOT/tests/deb-build.sh" --current "$OUT" >"$BATS_FILE_TMPDIR/build.out" 2>&1 ||
		{ cat "$BATS_FILE_TMPDIR/build.out" >&2; return 1; }
	sed 's/^/# /' "$BATS_FILE_TMPDIR/build.out" | grep 'is current' >&3 || true
	local p
	for p in $PKGS; do
		mkdir -p "$BATS_FILE_TMPDIR/x/$p"
		dpkg-deb -x "$(deb "$p")" "$BATS_FILE_TMPDIR/x/$p"
	done
}

setup() {
	T=$BATS_TEST_TMPDIR
	X=$BATS_FILE_TMPDIR/x
	PIDS=()
}

teardown() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	rm -f "/dev/shm/nshm-deb-$$-$BATS_TEST_NUMBER"
}

# deb PACKAGE: the path of its .deb.
deb() {
	local a=$ARCH
	[ "$1" != nshm-dkms ] || a=all
	echo "$OUT/${1}_${VER}_$a.deb"
}

# files PACKAGE: its regular files and links, one a line, sorted.
files() {
	dpkg-deb -c "$(deb "$1")" | awk '$1 !~ /^d/ { sub(/^\.\//, "", $6); print $6 }' | LC_ALL=C sort
}

# field PACKAGE FIELD: a control field.
field() {
	dpkg-deb -f "$(deb "$1")" "$2"
}

not() {
	if "$@"; then
		echo "unexpectedly true: $*" >&2
		return 1
	fi
	return 0
}

@test "deb: make deb builds the four packages (and debug symbols) from one version" {
	local p
	for p in $PKGS; do
		[ -f "$(deb "$p")" ]
		[ "$(field "$p" Version)" = "$VER" ]
	done
	[ -f "$OUT/nshm-dbgsym_${VER}_$ARCH.deb" ]
	[ -f "$OUT/nshm_${VER}_$ARCH.changes" ]
	# One version: the changelog's (native), lib/nshm.h's, kmod/dkms.conf's.
	[ "$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)" = "$VER" ]
	grep -qx "PACKAGE_VERSION=\"$VER\"" "$ROOT/kmod/dkms.conf"
	# The library's package is named after its soname.
	grep -q "^Package: libnshm$MAJOR\$" "$ROOT/debian/control"
	[ -f "$X/libnshm$MAJOR/usr/lib/$MA/libnshm.so.$VER" ]
	run readelf -d "$X/libnshm$MAJOR/usr/lib/$MA/libnshm.so.$VER"
	[[ $output == *"Library soname: [libnshm.so.$MAJOR]"* ]]
}

@test "deb: lintian reports no error and no warning" {
	run lintian --info "$OUT/nshm_${VER}_$ARCH.changes"
	echo "$output"
	not grep -E '^[EW]: ' <<<"$output"
	# An override needs a comment saying why.
	local o
	for o in "$ROOT"/debian/*lintian-overrides "$ROOT"/debian/source/lintian-overrides; do
		[ -f "$o" ] || continue
		awk '/^[^#]/ && prev !~ /^#/ { print FILENAME ": override without a comment: " $0; bad = 1 }
		     { prev = $0 } END { exit bad }' "$o"
	done
}

@test "deb: nshm holds the programs, pages, completions, units, rule and defaults" {
	local p
	{
		echo etc/default/nshm-receiver
		echo lib/systemd/system/nshm-receiver@.service
		echo lib/systemd/system/nshm-server@.service
		echo lib/udev/rules.d/70-nshm.rules
		for p in nshm-get nshm-put nshm-server nshm-stat; do
			echo "usr/bin/$p"
			echo "usr/share/bash-completion/completions/$p"
			echo "usr/share/fish/vendor_completions.d/$p.fish"
		done
		for p in "$ROOT"/man/*.[178]; do
			echo "usr/share/man/man${p##*.}/${p##*/}.gz"
		done
		echo usr/share/doc/nshm/changelog.gz
		echo usr/share/doc/nshm/copyright
		echo usr/share/zsh/vendor-completions/_nshm
	} | LC_ALL=C sort >"$T/expected"
	files nshm >"$T/got"
	diff -u "$T/expected" "$T/got"
	# The units run the packaged programs; the rule starts the packaged unit.
	grep -qx 'ExecStart=/usr/bin/nshm-get --serve -s %I $NSHM_RECEIVER_ARGS ${NSHM_INCOMING}' \
		"$X/nshm/lib/systemd/system/nshm-receiver@.service"
	grep -q '^ExecStart=/usr/bin/nshm-server ' "$X/nshm/lib/systemd/system/nshm-server@.service"
	cmp "$ROOT/cmd/systemd/70-nshm.rules" "$X/nshm/lib/udev/rules.d/70-nshm.rules"
	grep -q 'EnvironmentFile=-/etc/default/nshm-receiver' "$X/nshm/lib/systemd/system/nshm-receiver@.service"
	# /etc/default/nshm-receiver is a conffile: purge removes it.
	dpkg-deb --ctrl-tarfile "$(deb nshm)" | tar -xOf - ./conffiles | grep -qx /etc/default/nshm-receiver
	# Completions where Debian's shells look.
	zsh -fc 'print -l $fpath' 2>/dev/null | grep -qx /usr/share/zsh/vendor-completions ||
		[ ! -x /usr/bin/zsh ]
}

@test "deb: libnshm$MAJOR, libnshm-dev and nshm-dkms hold exactly their files" {
	printf '%s\n' "usr/lib/$MA/libnshm.so.$MAJOR" "usr/lib/$MA/libnshm.so.$VER" \
		usr/share/doc/libnshm$MAJOR/changelog.gz usr/share/doc/libnshm$MAJOR/copyright |
		LC_ALL=C sort >"$T/expected"
	files "libnshm$MAJOR" >"$T/got"
	diff -u "$T/expected" "$T/got"
	printf '%s\n' usr/include/nshm.h "usr/lib/$MA/libnshm.a" "usr/lib/$MA/libnshm.so" \
		"usr/lib/$MA/pkgconfig/nshm.pc" usr/share/man/man3/libnshm.3.gz \
		usr/share/doc/libnshm-dev/changelog.gz usr/share/doc/libnshm-dev/copyright |
		LC_ALL=C sort >"$T/expected"
	files libnshm-dev >"$T/got"
	diff -u "$T/expected" "$T/got"
	grep -qx "libdir=/usr/lib/$MA" "$X/libnshm-dev/usr/lib/$MA/pkgconfig/nshm.pc"
	cmp "$ROOT/lib/nshm.h" "$X/libnshm-dev/usr/include/nshm.h"
	# The module's sources as dkms wants them, its rule and helper.
	printf '%s\n' lib/udev/rules.d/99-nshm-dkms.rules usr/libexec/nshm/nshm-mtrr-restore \
		usr/share/doc/nshm-dkms/changelog.gz usr/share/doc/nshm-dkms/copyright \
		"usr/src/nshm-$VER/dkms.conf" "usr/src/nshm-$VER/Kbuild" "usr/src/nshm-$VER/Makefile" \
		"usr/src/nshm-$VER/nshm.c" "usr/src/nshm-$VER/nshm_uapi.h" |
		LC_ALL=C sort >"$T/expected"
	files nshm-dkms >"$T/got"
	diff -u "$T/expected" "$T/got"
	cmp "$ROOT/kmod/dkms.conf" "$X/nshm-dkms/usr/src/nshm-$VER/dkms.conf"
	# The rule runs the helper where the package puts it, and only there.
	local run
	run=$(sed -n 's/.*RUN+="\([^"]*\)".*/\1/p' "$X/nshm-dkms/lib/udev/rules.d/99-nshm-dkms.rules")
	[ "$run" = /usr/libexec/nshm/nshm-mtrr-restore ]
	[ -x "$X/nshm-dkms$run" ]
	grep -v '^#' "$X/nshm-dkms/lib/udev/rules.d/99-nshm-dkms.rules" >"$T/rule"
	not grep -q /usr/local "$T/rule"
}

@test "deb: dependencies: shared libraries found, libarchive (dlopen) declared" {
	# The programs carry libnshm statically; what they link is found by
	# dpkg-shlibdeps: libc, zlib and ISA-L (a minimal system lacks libisal2).
	run field nshm Depends
	[[ $output == *"libc6 ("* && $output == *"zlib1g ("* && $output == *"libisal2 ("* ]]
	not grep -q libnshm <<<"$output"
	# libarchive is loaded with dlopen for sets of files: no program links it,
	# so only the control file can declare it. A Recommends (see
	# debian/control for why), by the name of the soname the build baked in.
	run readelf -d "$X/nshm/usr/bin/nshm-get"
	not grep -q 'libarchive' <<<"$output"
	grep -q 'libarchive.so.13' "$X/nshm/usr/bin/nshm-get"
	[ "$(field nshm Recommends)" = libarchive13 ]
	[ "$(field "libnshm$MAJOR" Recommends)" = libarchive13 ]
	run field "libnshm$MAJOR" Depends
	[[ $output == *"libc6 ("* && $output == *"libisal2 ("* ]]
	# nshm.pc's Requires.private must resolve: their -dev packages.
	run field libnshm-dev Depends
	[[ $output == *"libnshm$MAJOR (= $VER)"* && $output == *zlib1g-dev* && $output == *libisal-dev* ]]
	grep -qx 'Requires.private: zlib libisal' "$X/libnshm-dev/usr/lib/$MA/pkgconfig/nshm.pc"
	run field nshm-dkms Depends
	[[ $output == *"dkms (>= "* ]]
	[ "$(field nshm-dkms Architecture)" = all ]
	[ "$(field "libnshm$MAJOR" Multi-Arch)" = same ]
}

@test "deb: the symbols file is exactly the library's exports, all nshm_*" {
	nm -D --defined-only "$X/libnshm$MAJOR/usr/lib/$MA/libnshm.so.$VER" |
		awk '$2 == "T" || $2 == "D" || $2 == "B" || $2 == "R" { print $3 }' | LC_ALL=C sort >"$T/exports"
	[ -s "$T/exports" ]
	not grep -v '^nshm_' "$T/exports"
	sed -n 's/^ \([^@ ]*\)@Base .*/\1/p' "$ROOT/debian/libnshm0.symbols" | LC_ALL=C sort >"$T/symbols"
	diff -u "$T/symbols" "$T/exports" ||
		{ echo "update debian/libnshm0.symbols (new API: its version) for the exports above" >&2; return 1; }
	# The package carries it (dpkg-gensymbols passed at build time).
	dpkg-deb --ctrl-tarfile "$(deb "libnshm$MAJOR")" | tar -xOf - ./symbols | grep -q '^ nshm_tx_begin@Base'
}

@test "deb: maintainer scripts start receivers on install and stop them on remove" {
	local c=$T/ctrl
	mkdir "$c"
	dpkg-deb -e "$(deb nshm)" "$c"
	sh -n "$c/postinst" && sh -n "$c/prerm" && sh -n "$c/postrm"
	# Only where systemd runs; the devices already present replay "add".
	grep -q 'udevadm trigger --action=add --subsystem-match=pci' "$c/postinst"
	grep -q 'attr-match=vendor=0x1af4 --attr-match=device=0x1110' "$c/postinst"
	grep -q '/run/systemd/system' "$c/postinst"
	grep -q "deb-systemd-invoke stop 'nshm-receiver@\*.service'" "$c/prerm"
	# What they do in a running guest: tests/guest/guest-deb.bats. Here, without
	# systemd, configure does nothing and fails on nothing.
	[ -d /run/systemd/system ] || sh "$c/postinst" configure
}

@test "deb: without libarchive13, nshm-get and nshm-put say what to install" {
	command -v unshare >/dev/null || skip "no unshare"
	local la r=nshm-deb-$$-$BATS_TEST_NUMBER bin=$X/nshm/usr/bin
	la=$(readlink -f "/usr/lib/$MA/libarchive.so.13")
	[ -f "$la" ]
	truncate -s 1M "/dev/shm/$r"
	mkdir -p "$T/tree/sub" "$T/in"
	echo a >"$T/tree/sub/a"
	# libarchive13 "removed": an empty file in its place, in a private
	# mount namespace (dlopen fails as it does when the package is absent).
	"$bin/nshm-get" -q --timeout 20 -s "$r" "$T/in" 2>"$T/get.err" &
	PIDS+=($!)
	run unshare -m sh -c "mount --bind /dev/null '$la' && exec '$bin/nshm-put' -q --timeout 20 '$T/tree' '$r'"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"sets of files need libarchive"*"install it (Debian: apt-get install libarchive13)"* ]]
	not wait "${PIDS[0]}"
	[ -z "$(ls -A "$T/in")" ]
	# A single file needs no libarchive.
	echo one >"$T/one"
	"$bin/nshm-get" -q --timeout 20 -s "$r" "$T/in" &
	PIDS+=($!)
	unshare -m sh -c "mount --bind /dev/null '$la' && exec '$bin/nshm-put' -q --timeout 20 '$T/one' '$r'"
	wait "${PIDS[1]}"
	cmp "$T/one" "$T/in/one"
}

# dkms_build SERIES: dkms builds the packaged module source in a private
# tree (nothing is installed) for the newest installed kernel headers of
# SERIES (6.1 or 6.12, not -cloud or -rt), installing the VM kernel's when
# there are none (as tests/kmod-build.bats does).
dkms_build() {
	local series=$1 hdr pkg k
	hdr=$(ls -d /usr/src/linux-headers-"$series".*-amd64 2>/dev/null |
		grep -vE -- '-(cloud|rt)-amd64$' | sort -V | tail -n 1)
	if [[ -z $hdr || ! -f $hdr/Makefile ]]; then
		source "$ROOT/tests/vm/lib.sh"
		if [[ $series == 6.1 ]]; then pkg=$(vm_kernel_package); else pkg=$(vm_kernel_package "$series"); fi
		[[ -n $pkg ]] || { echo "no kernel package for $series in the package lists" >&2; return 1; }
		hdr=$(vm_headers "$pkg")
	fi
	k=${hdr#/usr/src/linux-headers-}
	mkdir -p "$T/dkms"
	run dkms build -m nshm -v "$VER" -k "$k" --sourcetree "$X/nshm-dkms/usr/src" --dkmstree "$T/dkms"
	echo "$output"
	[ "$status" -eq 0 ]
	# (Debian's 6.12 kernels compress modules: dkms makes nshm.ko.xz.)
	local ko
	ko=$(ls "$T/dkms/nshm/$VER/$k/$(uname -m)/module/"nshm.ko*)
	run modinfo -F vermagic "$ko"
	[[ $output == "$k "* ]]
}

@test "deb: dkms builds the packaged module for Debian 12's 6.1 kernel" {
	dkms_build 6.1
}

@test "deb: dkms builds the packaged module for Debian 12's 6.12 kernel" {
	dkms_build 6.12
}

@test "deb: the autopkgtests pass (autopkgtest -- null)" {
	local p before=()
	for p in nshm "libnshm$MAJOR" libnshm-dev; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' && before+=("$p")
	done
	# The packages just built, installed by dpkg (their dependencies are
	# build dependencies, so present); autopkgtest then runs the tests of
	# the built tree against them (-B) without rebuilding an apt archive
	# of them, which took it a minute more here.
	run dpkg -i "$(deb nshm)" "$(deb "libnshm$MAJOR")" "$(deb libnshm-dev)"
	local rc=$status out=$output
	if [ "$rc" -eq 0 ]; then
		run autopkgtest -B "$OUT/nshm-$VER/" -- null
		rc=$status out=$output
	fi
	# Leave this machine as it was.
	for p in libnshm-dev "libnshm$MAJOR" nshm; do
		[[ " ${before[*]} " == *" $p "* ]] || dpkg --purge "$p" >/dev/null 2>&1 || true
	done
	sed -n '/@@@@ summary/,$p' <<<"$out" | grep -E '^[a-z-]+ +(PASS|FAIL|SKIP)' || echo "$out"
	[ "$rc" -eq 0 ]
	grep -qE '^loopback +PASS' <<<"$out"
	grep -qE '^pkg-config +PASS' <<<"$out"
}
