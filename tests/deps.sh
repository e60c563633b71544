#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Installs what building and testing need on Debian, when run as root;
# otherwise prints the exact apt-get line and fails.
set -euo pipefail

# command-or-file : package
need=(
	"cc:gcc" "make:make" "pkg-config:pkg-config"
	"/usr/include/zlib.h:zlib1g-dev" "/usr/include/archive.h:libarchive-dev"
	"/usr/include/isa-l.h:libisal-dev" "bats:bats"
	"qemu-system-x86_64:qemu-system-x86" "/bin/busybox:busybox-static"
	"cpio:cpio" "modinfo:kmod" "mandoc:mandoc" "clang:clang"
	"valgrind:valgrind" "/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a:libclang-rt-14-dev"
	"python3:python3" "tar:tar" "zsh:zsh" "fish:fish" "setpriv:util-linux"
	"sshd:openssh-server" "ssh:openssh-client" "nc:netcat-openbsd" "gnuplot:gnuplot-nox"
	"/usr/include/x86_64-linux-gnu/curl/curl.h:libcurl4-openssl-dev" "ip:iproute2" "/usr/share/bash-completion/bash_completion:bash-completion"
	"strace:strace" "/usr/bin/time:time" "pgrep:procps"
	"mmdebstrap:mmdebstrap" "mke2fs:e2fsprogs"
	"libvirtd:libvirt-daemon-system" "virsh:libvirt-clients"
	"/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so:libvirt-daemon-driver-qemu"
	# make deb, tests/deb.bats, tests/guest/guest-deb.bats
	"dpkg-buildpackage:dpkg-dev" "dh:debhelper" "dh_dkms:dh-dkms" "dkms:dkms" "lintian:lintian"
	"autopkgtest:autopkgtest" "fakeroot:fakeroot"
)
[ "${NSHM_DEPS_EXTRA:-}" ] && read -ra extra <<<"$NSHM_DEPS_EXTRA" && need+=("${extra[@]}")

missing=()
for item in "${need[@]}"; do
	what=${item%%:*} pkg=${item#*:}
	if [[ $what == /* ]]; then
		compgen -G "$what" >/dev/null || missing+=("$pkg")
	else
		command -v "$what" >/dev/null 2>&1 || missing+=("$pkg")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "nshm: missing packages; run as root:" >&2
	echo "  apt-get update && $cmd" >&2
	exit 1
fi
echo "nshm: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
$cmd >&2
