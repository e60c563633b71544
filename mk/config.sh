#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Writes BUILD/config.mk: what this build found on this machine (ISA-L or
# not, libarchive's soname, the flags of zlib, ISA-L and libarchive) and
# what it was asked for (compiler and its version, CFLAGS, LDFLAGS, SAN,
# WITH_ISAL). The Makefile runs it before anything that compiles or links,
# every time, and reads the file in its recipes (never when it parses, as
# the packages may not be installed then: `make demo` installs them first).
# Every object and program depends on the file. It is rewritten only when
# its content changes, so an unchanged configuration rebuilds nothing and a
# changed one rebuilds everything built with it.
#
#   mk/config.sh BUILD/config.mk
#   environment: NSHM_CC NSHM_CFLAGS NSHM_LDFLAGS NSHM_SAN NSHM_WITH_ISAL
#                (auto, yes or no) NSHM_PKGCONFIG
#
# Each library is detected by compiling and linking a program with the
# compiler and flags of the build, with pkg-config's flags where pkg-config
# knows the library, else the usual -l: a header without its library, or a
# library the sanitizers cannot link, is not found.
set -euf # no globbing: flags are split into words, never expanded

out=$1
cc=${NSHM_CC:-cc}
cflags=${NSHM_CFLAGS-}
ldflags=${NSHM_LDFLAGS-}
with_isal=${NSHM_WITH_ISAL:-auto}
pkgconfig=${NSHM_PKGCONFIG:-pkg-config}

case $with_isal in
auto | yes | no) ;;
*) echo "config: WITH_ISAL=$with_isal: use auto, yes or no" >&2; exit 1 ;;
esac
if ! command -v "${cc%% *}" >/dev/null 2>&1; then
	echo "config: no compiler '$cc': \`make deps\` (as root) installs what the build needs" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nshm-config.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# pkgflags WHAT PKG DEFAULT: pkg-config's --cflags or --libs for PKG, or
# DEFAULT when pkg-config or its .pc file is missing.
pkgflags() {
	if "$pkgconfig" --exists "$2" 2>/dev/null; then
		"$pkgconfig" "--$1" "$2"
	else
		echo "$3"
	fi
}

# probe NAME CFLAGS LIBS: does a program using NAME's header and library
# compile and link as this build would?
probe() {
	# shellcheck disable=SC2086  # flags are words
	$cc $cflags $2 -o "$tmp/$1" "$tmp/$1.c" $ldflags $3 >"$tmp/$1.log" 2>&1
}

printf '#include <zlib.h>\nint main(void) { return (int)crc32(0, 0, 0); }\n' >"$tmp/zlib.c"
printf '#include <archive.h>\nint main(void) { return archive_version_number() < 0; }\n' >"$tmp/archive.c"
printf '#include <isa-l/crc.h>\nint main(void) { return (int)crc32_gzip_refl(0, 0, 0); }\n' >"$tmp/isal.c"

z_cflags=$(pkgflags cflags zlib '') z_libs=$(pkgflags libs zlib -lz)
la_cflags=$(pkgflags cflags libarchive '') la_libs=$(pkgflags libs libarchive -larchive)
i_cflags=$(pkgflags cflags libisal '') i_libs=$(pkgflags libs libisal -lisal)

missing=
probe zlib "$z_cflags" "$z_libs" || missing="$missing zlib (zlib1g-dev)"
probe archive "$la_cflags" "$la_libs" || missing="$missing libarchive (libarchive-dev)"
if [ -n "$missing" ]; then
	echo "config: $cc $cflags cannot build with:$missing" >&2
	echo "config: \`make deps\` (as root) installs what the build needs" >&2
	exit 1
fi

have_isal=no
if [ "$with_isal" != no ]; then
	if probe isal "$i_cflags" "$i_libs"; then
		have_isal=yes
	elif [ "$with_isal" = yes ]; then
		echo "config: WITH_ISAL=yes, but ISA-L does not build (libisal-dev):" >&2
		sed 's/^/  /' "$tmp/isal.log" | tail -5 >&2
		exit 1
	fi
fi

# libarchive is loaded with dlopen (lib/tree/archive_dl.h): the soname of the
# library the headers belong to, read from the file the linker would use.
la_so=$($cc $cflags -print-file-name=libarchive.so 2>/dev/null || true)
la_dir=$("$pkgconfig" --variable=libdir libarchive 2>/dev/null || true)
[ -n "$la_dir" ] && [ -e "$la_dir/libarchive.so" ] && la_so=$la_dir/libarchive.so
la_soname=
[ -e "$la_so" ] && la_soname=$(objdump -p "$la_so" 2>/dev/null | awk '$1 == "SONAME" { print $2 }')

pkgs=zlib dep_cflags="$z_cflags $la_cflags" dep_libs="$z_libs"
defs=
if [ $have_isal = yes ]; then
	pkgs="$pkgs libisal" dep_cflags="$dep_cflags $i_cflags" dep_libs="$dep_libs $i_libs"
	defs="-DHAVE_ISAL"
fi
[ -n "$la_soname" ] && defs="$defs -DNSHM_LIBARCHIVE_SONAME='\"$la_soname\"'"

squeeze() { echo $*; } # one space between words, none at the ends

{
	echo "# Written by mk/config.sh: what this build found and was asked for."
	echo "# Every object depends on this file; do not edit (make rewrites it)."
	echo "CC=$cc"
	echo "CC_VERSION=$($cc --version 2>/dev/null | head -n1)"
	echo "CFLAGS=$(squeeze "$cflags")"
	echo "LDFLAGS=$(squeeze "$ldflags")"
	echo "SAN=${NSHM_SAN-}"
	echo "WITH_ISAL=$with_isal"
	echo "HAVE_ISAL=$have_isal"
	echo "LA_SONAME=$la_soname"
	echo "PKGS=$pkgs"
	echo "DEP_CFLAGS=$(squeeze "$dep_cflags" "$defs")"
	echo "DEP_LIBS=$(squeeze "$dep_libs" -lpthread -ldl)"
	echo "LA_LIBS=$(squeeze "$la_libs")"
} >"$tmp/config.mk"

if ! cmp -s "$tmp/config.mk" "$out"; then
	# Renamed into place from the same directory: a make that is
	# interrupted leaves the old file or the new one, never half of one.
	cp "$tmp/config.mk" "$out.tmp$$"
	mv -f "$out.tmp$$" "$out"
	echo "config: $out: crc32 $([ $have_isal = yes ] && echo isa-l || echo zlib)," \
	     "libarchive ${la_soname:-not found (dlopen: libarchive.so.13)}, $cc $(squeeze "$cflags")" >&2
fi
