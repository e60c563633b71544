#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# The guest module (kmod/) builds, -Werror clean with W=1, against both of Debian 12's kernel
# series: 6.1 (linux-image-amd64) and 6.12 (bookworm-security). The newest installed headers of
# each are used; when a series has none they are installed (as root) for the kernel the VM
# tests boot (tests/vm/lib.sh: vm_kernel_package, vm_headers). About 5-15 s per series.
# The guest tests (tests/vm/vm-kmod.bats) load and use what this builds.

setup() {
  source "$BATS_TEST_DIRNAME/vm/lib.sh"
}

# headers SERIES: the newest installed linux-headers-SERIES.*-amd64 directory (not -cloud or
# -rt), installing the VM kernel's when there is none.
headers() {
  local series=$1 hdr pkg
  hdr=$(ls -d /usr/src/linux-headers-"$series".*-amd64 2>/dev/null |
    grep -vE -- '-(cloud|rt)-amd64$' | sort -V | tail -n 1)
  if [[ -z $hdr || ! -f $hdr/Makefile ]]; then
    source "$BATS_TEST_DIRNAME/vm/lib.sh"
    if [[ $series == 6.1 ]]; then pkg=$(vm_kernel_package); else pkg=$(vm_kernel_package "$series"); fi
    [[ -n $pkg ]] || { echo "no kernel package for $series in the package lists" >&2; return 1; }
    hdr=$(vm_headers "$pkg") || return 1
  fi
  printf '%s\n' "$hdr"
}

# build_against HDR: vm_kmod_build (a copy of kmod/ built in build/kmod/, which the VM suites
# then load instead of building it again), its whole log shown and read.
build_against() {
  local hdr=$1 ko
  ko=$(vm_kmod_build "$hdr")
  cat "$(dirname "$ko")/build.log"
  ! grep -E 'warning:|error:' "$(dirname "$ko")/build.log"
  [ "$(modinfo -F vermagic "$ko" | cut -d' ' -f1)" = "${hdr#/usr/src/linux-headers-}" ]
}

@test "kmod builds -Werror clean (W=1) against Debian 12's 6.1 headers" {
  local hdr
  hdr=$(headers 6.1)
  echo "headers: $hdr"
  build_against "$hdr"
}

@test "kmod builds -Werror clean (W=1) against bookworm-security's 6.12 headers" {
  local hdr
  hdr=$(headers 6.12)
  echo "headers: $hdr"
  build_against "$hdr"
}

# The type byte of the module's ioctls is no other uapi's (0xB5 was rpmsg's).
@test "kmod's ioctl magic is used by no uapi header of 6.1 or 6.12" {
  local magic hdr series
  magic=$(sed -n 's/^#define NSHM_IOC_MAGIC \(0x[0-9A-Fa-f]*\).*/\1/p' "$BATS_TEST_DIRNAME/../kmod/nshm_uapi.h")
  echo "magic: $magic"
  [ -n "$magic" ]
  [ "$((magic))" -ne $((0xb5)) ]
  for series in 6.1 6.12; do
    hdr=$(headers "$series")
    # Debian keeps the architecture-independent headers in the -common package's directory.
    [[ -d $hdr/include/uapi ]] && hdr=$hdr/include/uapi || hdr=${hdr%-amd64}-common/include/uapi
    echo "looking in $hdr"
    [ -d "$hdr" ]
    ! grep -rniE "_IO(R|W|WR)?\(\s*$magic\s*," "$hdr"
    ! grep -rniE "define\s+\w*(MAGIC|IOC\w*|IOCTL\w*)\s+\(?$magic\)?\s*$" "$hdr"
  done
}
