#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make deb: the Debian packages, built as Debian builds them
# (dpkg-buildpackage -us -uc -b) in a clean copy of this tree, so that
# neither the tree nor its build/ is touched by debian/rules clean.
#
#   tests/deb-build.sh [OUT]     build into OUT (default build/deb): the
#                                .debs, .changes and .buildinfo, build.log,
#                                and stamp (the source's hash)
#   tests/deb-build.sh --hash    print the source's hash (what stamp holds)
#   tests/deb-build.sh --current OUT   build into OUT unless its stamp is
#                                this tree's hash (tests/deb.bats, tests/guest/guest-deb.bats)
#
# The copy holds the files git knows (tracked and new, less ignored ones),
# or, outside a git checkout, the tree less build directories.
set -euo pipefail
unset MAKEFLAGS MFLAGS MAKELEVEL
cd "$(dirname "$0")/.."

sources() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do
				[ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"
			done
	else
		find . \( -path ./.git -o -path './build*' -o -path ./debian/tmp \) -prune -o \
			! -type d -printf '%P\0'
	fi | LC_ALL=C sort -z
}

# The source's hash: names, modes and contents of every file the copy has,
# less the bats suites (no package holds them, no autopkgtest runs them):
# editing tests/deb.bats does not rebuild the packages it checks.
source_hash() {
	sources | grep -zv '^tests/.*\.bats$' | tar --null --no-recursion -T - --mtime=@0 --owner=0 --group=0 \
		--numeric-owner --sort=name -cf - | sha256sum | cut -d' ' -f1
}

if [ "${1:-}" = --hash ]; then
	source_hash
	exit 0
fi

if [ "${1:-}" = --current ]; then
	if [ -f "$2/stamp" ] && [ "$(cat "$2/stamp")" = "$(source_hash)" ]; then
		echo "make deb: $2 is current (its stamp is this tree's hash)"
		exit 0
	fi
	shift
fi
out=${1:-build/deb}
ver=$(dpkg-parsechangelog -S Version)
rm -rf "$out"
mkdir -p "$out/nshm-$ver"
out=$(cd "$out" && pwd)
hash=$(source_hash)
sources | tar --null --no-recursion -T - -cf - | tar -xf - -C "$out/nshm-$ver"

echo "make deb: dpkg-buildpackage -us -uc -b in $out/nshm-$ver (log: $out/build.log)"
if ! (cd "$out/nshm-$ver" &&
	DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=$(nproc)}" \
		dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
	tail -30 "$out/build.log" >&2
	echo "make deb: dpkg-buildpackage failed; see $out/build.log" >&2
	exit 1
fi
echo "$hash" >"$out/stamp"
ls -1 "$out"/*.deb
