#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# bench/hpn.sh -- find or build HPN-SSH (hpnscp, hpnssh, hpnsshd) for bench/run.
#
#   bench/hpn.sh [--no-install] [--no-build]
#
# Prints the directory holding bin/hpnscp and sbin/hpnsshd and exits 0, or
# prints why there is none on stderr (one line) and exits 1.
#   1. hpnscp and hpnsshd on PATH (or in /usr/sbin): their common prefix.
#   2. A build already in the cache, $NSHM_BENCH_CACHE/hpn/<version>-<sha> (default
#      /var/cache/nshm-bench), made from the same tarball.
#   3. Else it builds one there from $HPN_SSH_SRC (default
#      ../shared/vendor/hpn-ssh-18.8.0.tar.gz beside the repository): about 2
#      minutes on 2 cores.  autoconf, automake, libssl-dev and zlib1g-dev are
#      installed first when missing (as root, unless --no-install).  With
#      --no-build (bench/run --smoke) it only says that there is none.
# HPN-SSH is not in Debian; neither its source nor its binaries belong in
# this repository: the cache is outside it.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NO_INSTALL=0 NO_BUILD=0
for a in "$@"; do
	case $a in
	--no-install) NO_INSTALL=1 ;;
	--no-build) NO_BUILD=1 ;;
	*) echo "usage: bench/hpn.sh [--no-install] [--no-build]" >&2; exit 2 ;;
	esac
done

fail() { printf '%s\n' "$*" >&2; exit 1; }

# 1. Already installed.
if command -v hpnscp >/dev/null; then
	bin=$(dirname "$(command -v hpnscp)")
	prefix=$(dirname "$bin")
	for s in "$prefix/sbin/hpnsshd" /usr/sbin/hpnsshd; do
		[[ -x $s ]] && { echo "$prefix"; exit 0; }
	done
fi

src=${HPN_SSH_SRC:-$(dirname "$ROOT")/shared/vendor/hpn-ssh-18.8.0.tar.gz}
[[ -f $src ]] || fail "no HPN-SSH source: $src not found (set HPN_SSH_SRC to hpn-ssh's tarball)"

cache=${NSHM_BENCH_CACHE:-/var/cache/nshm-bench}
mkdir -p "$cache/hpn" 2>/dev/null && [[ -w $cache/hpn ]] ||
	{ cache=${XDG_CACHE_HOME:-$HOME/.cache}/nshm-bench; mkdir -p "$cache/hpn"; }
sum=$(sha256sum "$src" | cut -c1-12)
name=$(basename "$src"); name=${name%.tar.gz}; name=${name%.tgz}
prefix=$cache/hpn/$name-$sum
done_mark() { [[ -x $prefix/bin/hpnscp && -x $prefix/sbin/hpnsshd && -f $prefix/.built ]]; }
done_mark && { echo "$prefix"; exit 0; }
((NO_BUILD == 0)) || fail "HPN-SSH not built: no build in $cache/hpn yet (a full bench/run builds it, about 2 minutes)"

# 3. Build.  Packages first (apt needs the real network: bench/run calls this
# before it enters its namespace).
need=()
for p in autoconf automake libssl-dev zlib1g-dev make gcc; do
	dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if ((${#need[@]})); then
	((NO_INSTALL == 0 && EUID == 0)) ||
		fail "HPN-SSH not built: packages missing (${need[*]}); as root: apt-get install ${need[*]}"
	echo "bench/hpn.sh: installing ${need[*]}" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 ||
		fail "HPN-SSH not built: apt-get install ${need[*]} failed"
fi
getent passwd sshd >/dev/null || fail "HPN-SSH not built: no user sshd for privilege separation (install openssh-server)"

exec 9>"$cache/hpn/.lock"
flock -w 900 9 || fail "HPN-SSH not built: timed out waiting for $cache/hpn/.lock"
done_mark && { echo "$prefix"; exit 0; }

t0=$SECONDS
work=$(mktemp -d "$cache/hpn/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$cache/hpn/$name-$sum.log
echo "bench/hpn.sh: building $name into $prefix (about 2 minutes; log $log)" >&2
rm -rf "$prefix"
{
	tar -xzf "$src" -C "$work" --strip-components=1 &&
		cd "$work" &&
		autoreconf -f -i &&
		# The privilege-separation user and directory of Debian's own sshd:
		# they exist wherever openssh-server does (and in the bench's guest).
		./configure --prefix="$prefix" --sysconfdir="$prefix/etc" --without-pam \
			--with-privsep-user=sshd --with-privsep-path=/run/sshd &&
		make -j"$(nproc)" &&
		make install-nokeys
} >"$log" 2>&1 || fail "HPN-SSH not built: the build failed (last line: $(tail -1 "$log"))"
done_mark() { [[ -x $prefix/bin/hpnscp && -x $prefix/sbin/hpnsshd ]]; }
done_mark || fail "HPN-SSH not built: make install gave no hpnscp/hpnsshd under $prefix"
echo "$((SECONDS - t0))" >"$prefix/.built"
echo "bench/hpn.sh: built in $((SECONDS - t0)) s" >&2
echo "$prefix"
