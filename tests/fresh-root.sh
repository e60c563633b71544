#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make fresh-check: the README's commands as a new user meets them, on a
# fresh Debian 12 machine with only build-essential and git, in a fresh clone.
#
#   tests/fresh-root.sh [A|B] [COMMIT]
#   tests/fresh-root.sh suite FILE... [-- ARG...]
#     A (default)  make demo, then make check, in the same tree
#     B            make check alone
#     suite        make deps, make all unit, then bats --tap FILE... (ARG... to bats,
#                  e.g. -f REGEX): one suite as a fresh machine runs it
#     prepare      only build the cached root tarball
#     COMMIT       of this repository (default HEAD; NSHM_FRESH_COMMIT for suite)
#
# Root only. The machine is a Debian 12 root made by mmdebstrap
# (--variant=essential, apt, build-essential, git, ca-certificates; the mirrors are
# this machine's own Debian apt sources), kept as a tarball in
# $NSHM_FRESH_CACHE (default /var/cache/nshm-fresh) and unpacked afresh for
# every run: a root that one run changed is no longer fresh. The run gets
# proc, sysfs, /dev, /dev/pts, a tmpfs /run and a tmpfs /dev/shm of
# $NSHM_FRESH_SHM (default 8g), in a mount namespace of its own (nothing it
# mounts is seen outside, and nothing outlives it even if it is killed); all
# is unmounted and the root removed on exit, also on failure
# (NSHM_FRESH_KEEP=1 keeps the root). Logs: $NSHM_FRESH_LOGS (default
# /var/tmp/nshm-fresh-logs/RUN). Prints the demo's figures, make check's
# failures and closing line, and exits non-zero if either command failed.
set -euo pipefail

mode=${1:-A}
suite_args=()
if [ "$mode" = suite ]; then
	shift
	suite_args=("$@")
	[ ${#suite_args[@]} -gt 0 ] || { echo "usage: $0 suite FILE.bats... [-- BATS-ARG...]" >&2; exit 2; }
	rev=${NSHM_FRESH_COMMIT:-HEAD}
else
	rev=${2:-HEAD}
fi
case $mode in A | B | suite | prepare) ;; *) echo "usage: $0 [A|B|prepare] [COMMIT] | suite FILE.bats..." >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "fresh-root: needs root (chroot, mounts)" >&2; exit 2; }

# only_std_fds
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"

src=$(git -C "$(dirname "$0")/.." rev-parse --path-format=absolute --git-common-dir)
# HEAD as this checkout has it (a worktree's own HEAD, not the main one's).
commit=$(git -C "$(dirname "$0")/.." rev-parse --verify "$rev^{commit}")
cache=${NSHM_FRESH_CACHE:-/var/cache/nshm-fresh}
shm_size=${NSHM_FRESH_SHM:-8g}
# --variant=essential has no apt (it is "important", not "essential"): a
# Debian machine always has it.
include=apt,build-essential,git,ca-certificates

# Everything below runs in a private mount namespace: the kernel drops the
# mounts with the namespace, whatever happens to this script.
if [ -z "${NSHM_FRESH_NS:-}" ]; then
	if [ "$mode" = suite ]; then
		NSHM_FRESH_NS=1 NSHM_FRESH_COMMIT=$commit exec unshare --mount --propagation private -- \
			bash "$0" suite "${suite_args[@]}"
	fi
	NSHM_FRESH_NS=1 exec unshare --mount --propagation private -- bash "$0" "$mode" "$commit"
fi

# The mirrors: the Debian "deb" entries of this machine's apt sources, in
# one-line form (both the deb822 .sources and the .list formats); only
# Debian's bookworm suites (not, say, a local repository of a test).
mirrors() {
	local f
	{ for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] && sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\{0,1\}/deb /p' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		# Stanzas separated by blank lines; one "deb URI SUITE COMPONENTS"
		# per suite of an enabled Types: deb stanza.
		awk 'function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no")
				for (i = 1; i <= ns; i++) print "deb " uri " " s[i] " " comps
			types = uri = comps = ""; ns = 0; enabled = "" }
		     /^[[:space:]]*$/ { flush(); next }
		     /^#/ { next }
		     tolower($1) == "types:" { $1 = ""; types = substr($0, 2) }
		     tolower($1) == "uris:" { uri = $2 }
		     tolower($1) == "suites:" { ns = split(substr($0, index($0, $2)), s, " ") }
		     tolower($1) == "components:" { $1 = ""; comps = substr($0, 2) }
		     tolower($1) == "enabled:" { enabled = tolower($2) }
		     END { flush() }' "$f"
	done; } | grep -E ' (bookworm|bookworm-updates|bookworm-security) ' | grep -E '/debian(-security)?/? ' | sort -u
}

mapfile -t mirror_lines < <(mirrors)
[ ${#mirror_lines[@]} -gt 0 ] || { echo "fresh-root: no Debian bookworm deb lines in /etc/apt" >&2; exit 2; }
key=$(printf '%s\n' "$include" "${mirror_lines[@]}" | sha256sum | cut -c1-12)
tarball=$cache/bookworm-essential-$key.tar

# The root's tarball: made once (a few minutes), under a lock so that two
# runs never build it at once.
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -s "$tarball" ] || [ -n "${NSHM_FRESH_REBUILD:-}" ]; then
	if ! command -v mmdebstrap >/dev/null; then
		echo "fresh-root: installing mmdebstrap" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mmdebstrap >&2
	fi
	echo "fresh-root: building $tarball (mmdebstrap, a few minutes)" >&2
	rm -f "$tarball.tmp.tar"
	only_std_fds mmdebstrap --variant=essential --mode=root --include="$include" \
		bookworm "$tarball.tmp.tar" "${mirror_lines[@]}" </dev/null >&2
	mv "$tarball.tmp.tar" "$tarball"
fi
# Closed, not only unlocked: the root's processes inherit no descriptor of ours.
exec 9>&-
[ "$mode" = prepare ] && { echo "fresh-root: $tarball"; exit 0; }

run=$(date -u +%Y%m%dT%H%M%SZ)-$mode-${commit:0:8}-$$
logs=${NSHM_FRESH_LOGS:-/var/tmp/nshm-fresh-logs/$run}
root=$(mktemp -d "/var/tmp/nshm-fresh-root.$run.XXXXXX")
mkdir -p "$logs"
mounted=()

# Processes still running in the root (a test that left a QEMU behind) would
# keep its mounts busy: stop those, and only those, by pid.
stop_root_procs() {
	local p r pids=()
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		[ "$r" = "$root" ] && pids+=("${p#/proc/}")
	done
	[ ${#pids[@]} -eq 0 ] || kill -KILL "${pids[@]}" 2>/dev/null || true
}

cleanup() {
	local rc=$? i
	set +e
	stop_root_procs
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}"
	done
	if grep -qE " $root(/| )" /proc/self/mountinfo; then
		echo "fresh-root: mounts left under $root; not removing it" >&2
	elif [ -n "${NSHM_FRESH_KEEP:-}" ]; then
		echo "fresh-root: root kept in $root" >&2
	else
		rm -rf --one-file-system "$root"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mnt() { # mnt TARGET MOUNT-ARGS...: mount, and remember it for cleanup
	local t=$root$1; shift
	mkdir -p "$t"
	mount "$@" "$t"
	mounted+=("$t")
}

tar -xpf "$tarball" --numeric-owner -C "$root"
# The root a mount point of its own, as / is on a machine: virtiofsd (make
# check's benchmark smoke pass) makes / a slave mount before it sandboxes
# itself, and that fails with EINVAL on a directory that is not one.
mnt "" --bind "$root"
mnt /proc -t proc proc
mnt /sys -t sysfs sysfs
mnt /dev --bind /dev
mnt /dev/pts --bind /dev/pts
mnt /dev/shm -t tmpfs -o "size=$shm_size,mode=1777" tmpfs
mnt /run -t tmpfs -o size=256m,mode=755 tmpfs
mkdir -p "$root/run/lock"
chmod 1777 "$root/run/lock"

# apt as on this machine: its Debian sources (mmdebstrap wrote the same
# mirrors in one-line form), its resolver.
rm -f "$root/etc/apt/sources.list"
printf '%s\n' "${mirror_lines[@]}" >"$root/etc/apt/sources.list"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"

# A fresh clone of the commit, as a user gets it.
git clone -q --no-local "$src" "$root/root/nshm"
git -C "$root/root/nshm" checkout -q --detach "$commit"

# inroot LOG CMD: a login-like shell in the root, nothing of this
# environment (MAKEFLAGS, BUILD, NSHM_*) nor its open descriptors carried in; stopped after
# NSHM_FRESH_TIMEOUT seconds (default 5400), should a test hang.
inroot() {
	local log=$1; shift
	only_std_fds timeout -k 30 "${NSHM_FRESH_TIMEOUT:-5400}" chroot "$root" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		LANG=C.UTF-8 TERM=dumb \
		bash -c "cd /root/nshm && $*" >"$logs/$log" 2>&1
}

echo "fresh-root: mode $mode, commit $commit, root $root, logs $logs"
start=$SECONDS
if [ "$mode" = suite ]; then
	# The files before "--", the rest to bats; each quoted for the root's shell.
	files=() bats_args=()
	for a in "${suite_args[@]}"; do
		if [ ${#bats_args[@]} -gt 0 ] || [ "$a" = -- ]; then bats_args+=("$a"); else files+=("$a"); fi
	done
	[ ${#bats_args[@]} -gt 0 ] && bats_args=("${bats_args[@]:1}")
	t=$SECONDS
	rc=0
	inroot suite.log "make deps && make -s -j2 all unit && CI=true bats --tap $(printf '%q ' "${bats_args[@]}" "${files[@]}")" || rc=$?
	{ grep -E '^(not ok|ok|#)' "$logs/suite.log" || true; } | sed 's/^/  /' | tail -80
	[ "$rc" = 0 ] || tail -20 "$logs/suite.log" | sed 's/^/  | /'
	echo "fresh-root: suite ${files[*]}: exit $rc, $((SECONDS - t)) s"
	exit "$rc"
fi
demo_rc=- check_rc=-
if [ "$mode" = A ]; then
	t=$SECONDS
	inroot demo.log make demo && demo_rc=0 || demo_rc=$?
	echo "== make demo: exit $demo_rc, $((SECONDS - t)) s"
	# What the configuration found, and the demo's own lines.
	# (|| true: a demo that died before any such line must not end this script
	# under pipefail, before make check and the closing line.)
	{ grep -E '^config: ' "$logs/demo.log" || true; } | sed 's/^/  /'
	sed -n '/^demo: [0-9]* MiB/,$p' "$logs/demo.log" | sed 's/^/  /' 
	[ "$demo_rc" = 0 ] || tail -30 "$logs/demo.log" | sed 's/^/  | /'
	# A fresh machine has ISA-L once make demo installed it: the demo
	# must have run on it.
	if [ "$demo_rc" = 0 ] && ! grep -q '^crc32: *isa-l on both sides' "$logs/demo.log"; then
		echo "  make demo did not run on ISA-L's CRC"
		demo_rc=isa-l
	fi
fi
t=$SECONDS
inroot check.log make check && check_rc=0 || check_rc=$?
echo "== make check: exit $check_rc, $((SECONDS - t)) s"
{ grep -E '^ +\[.*(not ok|exited|build failed)|^build failed|^== make check: |^[0-9]+ passed, [0-9]+ failed' "$logs/check.log" || true; } |
	sed 's/^/  /' | tail -60
# The root's own copy of the full log (each test's output).
cp "$root/root/nshm/build/check.log" "$logs/check-full.log" 2>/dev/null || true
echo "fresh-root: mode $mode: make demo exit $demo_rc, make check exit $check_rc, $((SECONDS - start)) s in all"
[ "$demo_rc" != 0 ] && [ "$demo_rc" != - ] && exit 1
[ "$check_rc" = 0 ]
