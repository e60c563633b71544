# SPDX-License-Identifier: BSD-2-Clause
# shellcheck shell=bash
# tests/vm/lib.sh - boot a throw-away QEMU/KVM guest with an ivshmem device and drive it.
#
# Sourced by tests/vm/vm.bats, tests/vm/demo.sh and tests/vm/measure-map.sh. It only defines
# functions and never changes shell options, so that bats' own error handling stays in charge.
#
# How the pieces talk to each other:
#   * The guest's console (ttyS0) goes to VMDIR/console.log. The guest's /init prints marker
#     lines there: "@@NSHM-READY", "@@NSHM-START id", "@@NSHM-OUT id text", "@@NSHM-ERR id text",
#     "@@NSHM-END id rc=N secs=S". The host polls that file, always with a time limit.
#   * The host sends commands on a second serial port (ttyS1), backed by the FIFO pair
#     VMDIR/ctl.in / ctl.out (QEMU's "pipe" chardev). One line per command: "ID SHELL-COMMAND".
#     The guest runs every command in the background, so the host can start a guest program,
#     start its own peer program, and then wait for both.
#   * Every piece of state lives in files under VMDIR, not in shell variables, so that bats'
#     setup_file, its tests and teardown_file (separate processes) can share one boot.
#
# Environment knobs:
#   NSHM_VM_CACHE          cache for the kernel (default /var/cache/nshm-vm, else ~/.cache/nshm-vm)
#   NSHM_VM_ACCEL          force "kvm" or "tcg" instead of probing
#   NSHM_VM_PROBE_TIMEOUT  seconds a KVM probe boot may take (default 10)
#   NSHM_VM_KVM_CPU        -cpu model with KVM (default host)
#   NSHM_VM_BOOT_TIMEOUT   seconds a real boot may take to reach /init (default 90)
#   NSHM_VM_MAX_LIFE       hard limit on any QEMU process's life in seconds (default 900)
#   NSHM_BUILD_DIR         where nshm-get / nshm-put are (default <repo>/build)
#   NSHM_VM_KEEP=1         keep the run directory (console logs) after cleanup
#   NSHM_VM_NO_INSTALL=1   never run apt-get install; only say what is missing
#   NSHM_VM_QEMU           the QEMU binary (default qemu-system-x86_64)
#   NSHM_VM_TCG_CPU        -cpu model under TCG (default: QEMU's own, qemu64)

VM_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_REPO_DIR=$(cd "$VM_LIB_DIR/../.." && pwd)
# median, region_create: shared with bench/ and the host suites.
# shellcheck source=tests/lib/common.sh
source "$VM_REPO_DIR/tests/lib/common.sh"
VM_PACKAGES=(qemu-system-x86 busybox-static cpio kmod)
# Kernel modules copied into the cache when the kernel is first fetched (for the 9p, virtiofs
# and network baselines); only these and vmlinuz are kept.
VM_DEFAULT_MODULES="9p 9pnet_virtio virtiofs virtio_net virtio_pci"

# ---------------------------------------------------------------------------------------------
# Messages and timing

# Print a note for the person running the tests: to the TAP stream (fd 3) under bats, where it
# shows up as a "# ..." comment, else to stderr. Also append it to the run's times log.
vm_note() {
  local msg="$*"
  if [[ -n ${BATS_VERSION:-} ]] && { true >&3; } 2>/dev/null; then
    printf '# %s\n' "$msg" >&3
  else
    printf 'vm: %s\n' "$msg" >&2
  fi
  if [[ -n ${VM_RUN:-} && -d ${VM_RUN:-} ]]; then
    printf '%s\n' "$msg" >>"$VM_RUN/times.log"
  fi
}

vm_die() {
  printf 'vm: error: %s\n' "$*" >&2
  return 1
}

# Monotonic-enough wall clock with sub-second resolution, for timing boots and cases.
vm_now() { date +%s.%N; }

# vm_since T0 -> seconds elapsed since T0, with two decimals.
vm_since() { awk -v a="$1" -v b="$(vm_now)" 'BEGIN { printf "%.2f", b - a }'; }

# ---------------------------------------------------------------------------------------------
# Host tools

# Make sure the host has what the harness needs; install it with apt when we are root.
# Returns 1 (with the exact command printed) when something is still missing.
vm_require_tools() { vm__require vm vm__missing_tools "${VM_PACKAGES[@]}"; }

# vm__require WHO MISSING-FN PACKAGE...: MISSING-FN ARRAYNAME appends what is missing; when
# anything is, the PACKAGEs are installed with apt as root (never with NSHM_VM_NO_INSTALL=1),
# and what is still missing is said with the command that would install it. tests/guest/lib.sh
# uses it for its own list.
vm__require() {
  local who=$1 check=$2 missing=()
  shift 2
  "$check" missing
  ((${#missing[@]} == 0)) && return 0
  local install="apt-get update && apt-get install -y --no-install-recommends $*"
  local log=${TMPDIR:-/tmp}/nshm-$who-apt.log
  if [[ $(id -u) == 0 && ${NSHM_VM_NO_INSTALL:-0} != 1 ]] && command -v apt-get >/dev/null; then
    printf '%s: installing missing tools (%s): %s\n' "$who" "${missing[*]}" "$install" >&2
    # -qq and a log file: apt's progress output would flood the TAP stream.
    (export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@") >"$log" 2>&1 ||
      printf '%s: apt-get failed, see %s\n' "$who" "$log" >&2
    missing=()
    "$check" missing
  fi
  if ((${#missing[@]})); then
    printf '%s: missing: %s\n%s: as root, run: %s\n' "$who" "${missing[*]}" "$who" "$install" >&2
    return 1
  fi
}

# vm__missing_tools ARRAYNAME: append the names of missing commands to the array.
vm__missing_tools() {
  local -n _out=$1
  local cmd
  for cmd in "${NSHM_VM_QEMU:-qemu-system-x86_64}" busybox cpio modinfo apt-get dpkg ldd timeout flock; do
    command -v "$cmd" >/dev/null || _out+=("$cmd")
  done
}

# ---------------------------------------------------------------------------------------------
# The guest kernel: Debian's own, unpacked into a cache outside the source tree.

vm_cache_dir() {
  local dir=${NSHM_VM_CACHE:-}
  if [[ -z $dir ]]; then
    dir=/var/cache/nshm-vm
    if ! mkdir -p "$dir" 2>/dev/null || [[ ! -w $dir ]]; then
      dir=${XDG_CACHE_HOME:-$HOME/.cache}/nshm-vm
    fi
  fi
  mkdir -p "$dir" && printf '%s\n' "$dir"
}

# The kernel package that linux-image-amd64 depends on, e.g. linux-image-6.1.0-56-amd64.
vm__kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-/ { print $2; exit }'
}

# vm_kernel_package [SERIES]: the kernel package to boot. Without SERIES the one
# linux-image-amd64 depends on (bookworm: 6.1); with one (e.g. 6.12, in bookworm-security) the
# newest linux-image-SERIES.N+deb12-amd64 whose headers package is there too (for nshm.ko).
vm_kernel_package() {
  local series=${1:-} p
  if [[ -z $series ]]; then
    vm__kernel_package
    return
  fi
  for p in $(apt-cache pkgnames "linux-image-$series." 2>/dev/null |
    grep -E "^linux-image-${series//./\\.}\.[0-9]+\+deb12-amd64\$" | sort -rV); do
    # (A name may be only a virtual one, e.g. provided by the -unsigned package.)
    if vm__pkg_version "$p" >/dev/null && vm__pkg_version "linux-headers-${p#linux-image-}" >/dev/null; then
      printf '%s\n' "$p"
      return 0
    fi
  done
  return 1
}

# vm__pkg_version PACKAGE: its candidate version; fails for a purely virtual package.
vm__pkg_version() {
  local v
  v=$(apt-cache show --no-all-versions "$1" 2>/dev/null | awk '/^Version:/ { print $2; exit }')
  [[ -n $v ]] && printf '%s\n' "$v"
}

# vm_headers PACKAGE [VERSION]: make sure the headers matching the kernel package PACKAGE (same
# ABI, same version) are installed (apt-get, as root); print their directory (a KDIR for kmod/).
vm_headers() {
  local abi=${1#linux-image-} ver=${2:-} hdr
  hdr=/usr/src/linux-headers-$abi
  if [[ ! -f $hdr/Makefile ]]; then
    [[ -n $ver ]] || ver=$(vm__pkg_version "$1")
    if [[ $(id -u) != 0 || -z $ver ]]; then
      echo "linux-headers-$abi is not installed (as root: apt-get install linux-headers-$abi${ver:+=$ver})" >&2
      return 1
    fi
    (export DEBIAN_FRONTEND=noninteractive
      apt-get install -y -qq --no-install-recommends "linux-headers-$abi=$ver" ||
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends "linux-headers-$abi=$ver"; }
    ) >"${TMPDIR:-/tmp}/nshm-headers-apt.log" 2>&1 ||
      { cat "${TMPDIR:-/tmp}/nshm-headers-apt.log" >&2; return 1; }
  fi
  printf '%s\n' "$hdr"
}

# vm_kmod_build [HDR]: nshm.ko from kmod/, built against the kernel headers in HDR (default:
# those of the kernel the harness boots, linux-image-amd64's or VM_KERNEL_PKG's) -Werror clean
# with W=1, a warning in nshm.c failing it too; prints its path (beside it, build.log). Built
# once per sources, headers and flags: kept in BUILD/kmod/HEADERS-HASH, so that the suites
# that need it (kmod-build.bats, vm-kmod.bats, libvirt.bats) pay for one build per kernel.
vm_kmod_build() {
  local hdr=${1:-} kdir base key out tmp
  if [[ -z $hdr ]]; then
    kdir=$(vm_kernel_dir) || return 1
    base=$(basename "$kdir")
    hdr=$(vm_headers "${base%%_*}" "${base#*_}") || return 1
  fi
  key=$({ printf '%s\n' "$hdr" "W=1 KCFLAGS=-Werror"
    cat "$VM_REPO_DIR"/kmod/{nshm.c,nshm_uapi.h,Kbuild,Makefile}; } | sha256sum | cut -c1-16)
  out=$(vm_build_dir)/kmod/$(basename "$hdr")-$key
  if [[ ! -f $out/nshm.ko ]]; then
    tmp=$out.tmp.$$
    rm -rf "$tmp" && mkdir -p "$tmp" || return 1
    cp "$VM_REPO_DIR"/kmod/{nshm.c,nshm_uapi.h,Kbuild,Makefile} "$tmp/"
    make -C "$tmp" KDIR="$hdr" W=1 KCFLAGS=-Werror >"$tmp/build.log" 2>&1 ||
      { cat "$tmp/build.log" >&2; rm -rf "$tmp"; return 1; }
    if grep -E "nshm\.c:[0-9]+:[0-9]+: warning" "$tmp/build.log" >&2; then rm -rf "$tmp"; return 1; fi
    # Another run may have put the same one there meanwhile: either is the same module.
    mv -T "$tmp" "$out" 2>/dev/null || rm -rf "$tmp"
  fi
  printf '%s\n' "$out/nshm.ko"
}

# vm_kernel_dir: print the cache directory of the current kernel, fetching it when needed.
# It holds vmlinuz, the package itself (so that more modules can be added without a download)
# and modules/NAME.ko plus modules/NAME.deps for the modules fetched so far. The kernel is
# linux-image-amd64's, or the package VM_KERNEL_PKG names (see vm_kernel_package; vm_boot
# --kernel sets it for one boot).
vm_kernel_dir() {
  local cache pkg ver kdir memo=${VM_RUN:-}/kdir${VM_KERNEL_PKG:+-$VM_KERNEL_PKG}
  # Asked once per run: apt-cache is slow-ish and the answer must not change mid-run.
  if [[ -n ${VM_RUN:-} && -s $memo ]]; then
    cat "$memo"
    return 0
  fi
  cache=$(vm_cache_dir) || return 1
  pkg=${VM_KERNEL_PKG:-$(vm__kernel_package)}
  if [[ -z $pkg && $(id -u) == 0 ]]; then
    # A fresh machine may have no package lists yet.
    apt-get update -qq >/dev/null 2>&1 || true
    pkg=$(vm__kernel_package)
  fi
  ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | awk '/^Version:/ { print $2; exit }')
  if [[ -z $pkg || -z $ver ]]; then
    # No package lists (offline?): fall back on whatever kernel the cache already has.
    kdir=$(ls -d "$cache"/kernel/${VM_KERNEL_PKG:-linux-image-[0-9]*-amd64}_*/ 2>/dev/null | sort -V | tail -n 1)
    if [[ -n $kdir && -f $kdir/vmlinuz ]]; then
      printf '%s\n' "${kdir%/}"
      return 0
    fi
    vm_die "cannot tell which kernel to boot (${VM_KERNEL_PKG:-linux-image-amd64}; apt-get update?)"
    return 1
  fi
  kdir=$cache/kernel/${pkg}_${ver}
  if [[ ! -f $kdir/vmlinuz ]]; then
    # Two runs may fill the cache at the same time: one fetches, the other waits (bounded).
    (
      flock -w 900 9 || { vm_die "timed out waiting for the lock on $cache"; exit 1; }
      [[ -f $kdir/vmlinuz ]] && exit 0
      vm__kernel_fetch "$pkg" "$kdir"
    ) 9>"$cache/.lock" || return 1
  fi
  [[ -n ${VM_RUN:-} && -d ${VM_RUN:-} ]] && printf '%s\n' "$kdir" >"$memo"
  printf '%s\n' "$kdir"
}

vm__kernel_fetch() {
  local pkg=$1 kdir=$2
  mkdir -p "$kdir/modules" || return 1
  vm__kernel_unpack "$kdir" || return 1
  # The modules the benchmarks will want, taken now so that the package need not be fetched
  # again; a module not in this list later costs one more download.
  vm_kernel_modules "$kdir" $VM_DEFAULT_MODULES >/dev/null || return 1
  vm__kernel_tree_done "$kdir"
}

# vm__kernel_deb KDIR: download the kernel package into KDIR/kernel.deb (KDIR's name is
# PACKAGE_VERSION, so it is always the same version as the cached files).
vm__kernel_deb() {
  local kdir=$1 tmp base
  [[ -f $kdir/kernel.deb ]] && return 0
  base=$(basename "$kdir")
  tmp=$(mktemp -d "$kdir/.fetch.XXXXXX") || return 1
  printf 'vm: downloading %s=%s with apt-get download (about 70 MB)\n' "${base%%_*}" "${base#*_}" >&2
  if ! (cd "$tmp" && apt-get download -qq "${base%%_*}=${base#*_}" >/dev/null 2>"$tmp/apt.err"); then
    cat "$tmp/apt.err" >&2
    rm -rf "$tmp"
    vm_die "apt-get download ${base%%_*}=${base#*_} failed"
    return 1
  fi
  mv "$(ls "$tmp"/*.deb | head -n 1)" "$kdir/kernel.deb"
  rm -rf "$tmp"
}

# Unpack the package into KDIR/tree (400 MB) and take vmlinuz from it. The tree and the package
# are deleted again by vm__kernel_tree_done once the wanted modules are copied out.
vm__kernel_unpack() {
  local kdir=$1
  [[ -d $kdir/tree ]] && return 0
  vm__kernel_deb "$kdir" || return 1
  rm -rf "$kdir/.tree"
  dpkg -x "$kdir/kernel.deb" "$kdir/.tree" || { vm_die "dpkg -x $kdir/kernel.deb failed"; return 1; }
  mv "$kdir/.tree" "$kdir/tree"
  if [[ ! -f $kdir/vmlinuz ]]; then
    cp "$(ls "$kdir"/tree/boot/vmlinuz-* | head -n 1)" "$kdir/.vmlinuz" && mv "$kdir/.vmlinuz" "$kdir/vmlinuz"
  fi
  # The list of built-in modules lets vm_kernel_modules accept names that need no file.
  cp "$(ls "$kdir"/tree/lib/modules/*/modules.builtin | head -n 1)" "$kdir/modules.builtin" 2>/dev/null || true
}

vm__kernel_tree_done() { rm -rf "$1/tree" "$1/kernel.deb"; }

# vm_kernel_modules KDIR NAME... : make sure the modules NAME (and what they depend on, per
# `modinfo -F depends`) are in KDIR/modules, then print all of them one per line in an order in
# which insmod can load them (dependencies first). Built-in modules are left out of the list.
# Example: vm_kernel_modules "$kdir" 9p virtiofs virtio_net
vm_kernel_modules() {
  local kdir=$1
  shift
  # shellcheck disable=SC2034  # filled through a nameref in vm__mod_order
  local -A seen=()
  local order=() name
  # First fetch what is missing (unpacking the package only if needed), then order.
  for name in "$@"; do vm__mod_closure "$kdir" "${name//-/_}" || return 1; done
  for name in "$@"; do vm__mod_order "$kdir" "${name//-/_}" seen order || return 1; done
  [[ -d $kdir/tree ]] && vm__kernel_tree_done "$kdir"
  ((${#order[@]})) && printf '%s\n' "${order[@]}"
  return 0
}

# vm__mod_closure KDIR NAME: ensure NAME and its dependencies are cached (recursively).
vm__mod_closure() {
  local kdir=$1 name=$2 dep deps
  if [[ ! -f $kdir/modules/$name.deps ]]; then
    (
      flock -w 900 9 || exit 1
      [[ -f $kdir/modules/$name.deps ]] && exit 0
      vm__kernel_unpack "$kdir" || exit 1
      local file
      file=$(find "$kdir/tree/lib/modules" -name '*.ko*' | awk -v n="$name" '
        { b = $0; sub(/.*\//, "", b); sub(/\.ko(\.(xz|zst|gz))?$/, "", b); gsub(/-/, "_", b)
          if (b == n) { print; exit } }')
      if [[ -z $file ]]; then
        if grep -Eq "/${name//_/[-_]}\.ko\$" "$kdir/modules.builtin" 2>/dev/null; then
          : >"$kdir/modules/$name.deps"
          : >"$kdir/modules/$name.builtin"
          exit 0
        fi
        vm_die "no module named $name in $(basename "$kdir")"
        exit 1
      fi
      vm__mod_copy "$file" "$kdir/modules/$name.ko" || exit 1
      modinfo -F depends "$kdir/modules/$name.ko" | tr ',' ' ' >"$kdir/modules/.$name.deps"
      mv "$kdir/modules/.$name.deps" "$kdir/modules/$name.deps"
    ) 9>"$kdir/.lock" || return 1
  fi
  deps=$(<"$kdir/modules/$name.deps")
  for dep in $deps; do vm__mod_closure "$kdir" "${dep//-/_}" || return 1; done
}

# Copy a module file, decompressing it: busybox insmod reads plain .ko files only.
vm__mod_copy() {
  local src=$1 dst=$2
  case $src in
    *.ko) cp "$src" "$dst.tmp" ;;
    *.ko.xz) xz -dc "$src" >"$dst.tmp" ;;
    *.ko.zst) zstd -qdc "$src" >"$dst.tmp" ;;
    *.ko.gz) gzip -dc "$src" >"$dst.tmp" ;;
    *) false ;;
  esac || { rm -f "$dst.tmp"; vm_die "cannot copy module $src"; return 1; }
  mv "$dst.tmp" "$dst"
}

# vm__mod_order KDIR NAME SEEN ORDER: depth-first, dependencies before the module itself.
vm__mod_order() {
  local kdir=$1 name=$2 dep
  local -n _seen=$3 _order=$4
  [[ -n ${_seen[$name]:-} ]] && return 0
  _seen[$name]=1
  for dep in $(<"$kdir/modules/$name.deps"); do
    vm__mod_order "$kdir" "${dep//-/_}" "$3" "$4" || return 1
  done
  [[ -f $kdir/modules/$name.builtin ]] || _order+=("$name")
}

# vm_kernel_image KDIR: print the kernel file to boot. Under emulation, unpacking the compressed
# bzImage takes the guest about 2 s of every boot, so once per kernel the uncompressed ELF
# vmlinux is extracted from it (like the kernel's scripts/extract-vmlinux) and booted directly
# through its PVH entry point. Falls back on vmlinuz if that is not possible.
vm_kernel_image() {
  local kdir=$1
  if [[ ${NSHM_VM_KERNEL_FORMAT:-} != bzimage && ! -f $kdir/vmlinux && ! -f $kdir/vmlinux.none ]]; then
    (
      flock -w 300 9 || exit 1
      [[ -f $kdir/vmlinux || -f $kdir/vmlinux.none ]] && exit 0
      vm__extract_vmlinux "$kdir/vmlinuz" "$kdir/.vmlinux" && mv "$kdir/.vmlinux" "$kdir/vmlinux" ||
        { rm -f "$kdir/.vmlinux"; : >"$kdir/vmlinux.none"; }
    ) 9>"$kdir/.lock"
  fi
  if [[ ${NSHM_VM_KERNEL_FORMAT:-} != bzimage && -f $kdir/vmlinux ]]; then
    printf '%s\n' "$kdir/vmlinux"
  else
    printf '%s\n' "$kdir/vmlinuz"
  fi
}

# vm__extract_vmlinux BZIMAGE OUT: find the xz, gzip or zstd stream in a bzImage and unpack it; the
# result must be an ELF file with Xen/PVH notes (QEMU boots an ELF kernel only through PVH).
vm__extract_vmlinux() {
  local in=$1 out=$2 off unxz=(xz -dc)
  command -v xz >/dev/null || unxz=(busybox xz -dc)
  for off in $(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "$in" | cut -d: -f1) ; do
    tail -c +$((off + 1)) "$in" | "${unxz[@]}" >"$out" 2>/dev/null
    vm__is_pvh_elf "$out" && return 0
  done
  for off in $(LC_ALL=C grep -abo $'\x1f\x8b\x08' "$in" | cut -d: -f1); do
    tail -c +$((off + 1)) "$in" | gzip -dc >"$out" 2>/dev/null
    vm__is_pvh_elf "$out" && return 0
  done
  # Debian's 6.12 kernels are zstd-compressed.
  command -v zstd >/dev/null || return 1
  for off in $(LC_ALL=C grep -abo $'\x28\xb5\x2f\xfd' "$in" | cut -d: -f1); do
    tail -c +$((off + 1)) "$in" | zstd -qdc >"$out" 2>/dev/null
    vm__is_pvh_elf "$out" && return 0
  done
  return 1
}

vm__is_pvh_elf() {
  [[ -s $1 && $(head -c 4 "$1" | od -An -c | tr -d ' ') == 177ELF ]] && LC_ALL=C grep -aqF 'xen-3.0' "$1"
}

# vm_deb_file PACKAGE PATH: print a file from a Debian package unpacked into the cache (not
# installed on the host), e.g. vm_deb_file qemu-guest-agent /usr/bin/qemu-ga for a guest. The
# package is fetched with apt-get download once per version; only its files are kept.
vm_deb_file() {
  local pkg=$1 path=$2 cache ver dir tmp
  cache=$(vm_cache_dir) || return 1
  ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | awk '/^Version:/ { print $2; exit }')
  if [[ -z $ver ]]; then
    # No package lists (offline?): any version already in the cache.
    dir=$(ls -d "$cache/debs/${pkg}_"*/ 2>/dev/null | sort -V | tail -n 1)
    [[ -n $dir && -e ${dir%/}$path ]] && { printf '%s\n' "${dir%/}$path"; return 0; }
    vm_die "apt-cache knows no package $pkg"
    return 1
  fi
  dir=$cache/debs/${pkg}_${ver//:/_}
  if [[ ! -e $dir$path ]]; then
    mkdir -p "$cache/debs" || return 1
    tmp=$(mktemp -d "$cache/debs/.fetch.XXXXXX") || return 1
    if ! (cd "$tmp" && apt-get download -qq "$pkg=$ver" >/dev/null 2>"$tmp/apt.err" &&
      dpkg -x "$tmp"/*.deb "$tmp/root"); then
      cat "$tmp/apt.err" >&2
      rm -rf "$tmp"
      vm_die "apt-get download $pkg=$ver failed"
      return 1
    fi
    rm -rf "$dir"
    mv "$tmp/root" "$dir" && rm -rf "$tmp"
  fi
  [[ -e $dir$path ]] || { vm_die "$pkg $ver has no $path"; return 1; }
  printf '%s\n' "$dir$path"
}

# ---------------------------------------------------------------------------------------------
# The initramfs

# vm__copy_exec ROOT FILE: copy an executable and every shared library `ldd` lists for it (and
# the loader) to the same paths under ROOT, like Debian's mkinitramfs copy_exec.
vm__copy_exec() {
  local root=$1 file=$2 dest=${3:-}
  [[ -n $dest ]] || dest=/usr/local/bin/$(basename "$file")
  mkdir -p "$root$(dirname "$dest")"
  cp -L "$file" "$root$dest" || return 1
  local lib
  # ldd prints "name => /path (addr)" or "/path (addr)"; a static file makes ldd fail: no libs.
  while read -r lib; do
    [[ -e $root$lib ]] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib" || return 1
  done < <(ldd "$file" 2>/dev/null | awk '/=> \// { print $3; next } /^[ \t]*\// { print $1 }')
}

# vm_initramfs OUT [-m "MODULES"] [FILE...]: build a gzip-free initramfs (an uncompressed cpio
# unpacks much faster under software emulation) with busybox, our /init, the named modules and
# the given executables (copied into /usr/local/bin with their libraries; FILE=/GUEST/PATH puts
# one at that path instead).
vm_initramfs() {
  local out=$1
  shift
  local modules=""
  if [[ ${1:-} == -m ]]; then
    modules=$2
    shift 2
  fi
  local kdir root f m
  kdir=$(vm_kernel_dir) || return 1
  root=$(mktemp -d "${VM_RUN:-${TMPDIR:-/tmp}}/initramfs.XXXXXX") || return 1
  mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc/nshm,lib/modules/nshm}
  vm__copy_exec "$root" "$(command -v busybox)" /bin/busybox || return 1
  install -m 0755 "$VM_LIB_DIR/guest-init.sh" "$root/init"
  if [[ -n $modules ]]; then
    # shellcheck disable=SC2086  # word splitting of the module list is intended
    vm_kernel_modules "$kdir" $modules >"$root/etc/nshm/modules" || return 1
    while read -r m; do cp "$kdir/modules/$m.ko" "$root/lib/modules/nshm/"; done <"$root/etc/nshm/modules"
  else
    : >"$root/etc/nshm/modules"
  fi
  for f in "$@"; do
    if [[ $f == *=/* ]]; then
      vm__copy_exec "$root" "${f%%=/*}" "/${f#*=/}" || { vm_die "cannot copy $f into the initramfs"; return 1; }
      continue
    fi
    vm__copy_exec "$root" "$f" || { vm_die "cannot copy $f into the initramfs"; return 1; }
  done
  # The programs load libarchive with dlopen for sets of files: ldd does not list it.
  local la
  la=$(ldconfig -p | awk '/libarchive\.so\.[0-9]+ .*x86-64/ { print $NF; exit }')
  if [[ -n $la ]]; then
    vm__copy_exec "$root" "$la" "$la" || { vm_die "cannot copy $la into the initramfs"; return 1; }
  fi
  (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out.tmp" ||
    { vm_die "cpio failed"; return 1; }
  mv "$out.tmp" "$out"
  rm -rf "$root"
}

# ---------------------------------------------------------------------------------------------
# Runs, boots and cleanup

# vm_run_init: create this run's directory (VM_RUN, exported) holding every VM's state, and the
# list of /dev/shm objects to remove. Callers install a trap that calls vm_cleanup.
vm_run_init() {
  if [[ -n ${VM_RUN:-} && -d ${VM_RUN:-} ]]; then return 0; fi
  vm__sweep_stale
  VM_RUN=$(mktemp -d "${TMPDIR:-/tmp}/nshm-vm.XXXXXX") || return 1
  export VM_RUN
  echo "$$" >"$VM_RUN/owner"
  : >"$VM_RUN/shm.list"
  : >"$VM_RUN/times.log"
}

# A run killed outright (kill -9, a closed pipe) never reaches its cleanup. Its owner is then
# gone: clean up after it here (its QEMU is verified by command line before it is killed).
vm__sweep_stale() {
  local dir owner
  for dir in "${TMPDIR:-/tmp}"/nshm-vm.*/; do
    dir=${dir%/}
    [[ -f $dir/owner ]] || continue
    owner=$(cat "$dir/owner" 2>/dev/null) || continue
    [[ $owner =~ ^[0-9]+$ ]] || continue
    kill -0 "$owner" 2>/dev/null && continue
    [[ ${NSHM_VM_KEEP:-0} == 1 ]] && continue
    (VM_RUN=$dir vm_cleanup) 2>/dev/null || true
  done
}

# vm_shm_create NAME SIZE: a fresh /dev/shm/NAME of SIZE (e.g. 4M), removed again by vm_cleanup.
vm_shm_create() {
  local name=$1 size=$2
  printf '%s\n' "$name" >>"$VM_RUN/shm.list"
  region_create "$name" "$size"
}

# A name unique to this run, for /dev/shm objects.
vm_shm_name() { printf 'nshm-vm-%s-%s\n' "$(basename "$VM_RUN" | cut -d. -f2)" "$1"; }

# Kill one VM (by the pids we recorded) and wait until it is gone.
vm_kill() {
  local vmdir=$1 pid
  for pid in $(cat "$vmdir/qemu.pid" "$vmdir/wrapper.pid" 2>/dev/null); do
    vm__is_ours "$pid" "$vmdir" && kill -TERM "$pid" 2>/dev/null
  done
  local i
  for ((i = 0; i < 50; i++)); do
    vm_alive "$vmdir" || break
    sleep 0.1
  done
  for pid in $(cat "$vmdir/qemu.pid" "$vmdir/wrapper.pid" 2>/dev/null); do
    vm__is_ours "$pid" "$vmdir" && kill -KILL "$pid" 2>/dev/null
  done
  rm -f "$vmdir/qemu.pid" "$vmdir/wrapper.pid"
  return 0
}

# Is PID still a process of this VM? (Guards against a recycled pid.)
vm__is_ours() {
  local pid=$1 vmdir=$2
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$vmdir/"
}

vm_alive() {
  local pid
  pid=$(cat "$1/wrapper.pid" 2>/dev/null) || return 1
  vm__is_ours "$pid" "$1"
}

# vm_cleanup: kill every VM of this run, remove its /dev/shm objects and its directory.
# Safe to call more than once and from a trap.
vm_cleanup() {
  [[ -n ${VM_RUN:-} && -d ${VM_RUN:-} ]] || return 0
  local vmdir name
  for vmdir in "$VM_RUN"/vm-*/; do
    [[ -d $vmdir ]] && vm_kill "${vmdir%/}"
  done
  while read -r name; do
    [[ -n $name && $name != */* ]] && rm -f "/dev/shm/$name"
  done <"$VM_RUN/shm.list"
  if [[ ${NSHM_VM_KEEP:-0} == 1 ]]; then
    printf 'vm: kept %s\n' "$VM_RUN" >&2
  else
    rm -rf "$VM_RUN"
  fi
  VM_RUN=
}

# vm_accel: print "kvm" or "tcg". KVM is used only when a short probe boot with it reaches
# /init; nested KVM can hang after the BIOS, hence the time limit. The answer is kept for the
# rest of the run.
vm_accel() {
  if [[ -n ${NSHM_VM_ACCEL:-} ]]; then
    printf '%s\n' "$NSHM_VM_ACCEL"
    return 0
  fi
  if [[ -f $VM_RUN/accel ]]; then
    cat "$VM_RUN/accel"
    return 0
  fi
  local accel=tcg
  if [[ -r /dev/kvm && -w /dev/kvm ]]; then
    local t0 probe
    t0=$(vm_now)
    probe=$VM_RUN/vm-probe
    mkdir -p "$probe"
    [[ -f $VM_RUN/probe.cpio ]] || vm_initramfs "$VM_RUN/probe.cpio" || return 1
    if vm__qemu_start "$probe" kvm "$VM_RUN/probe.cpio" probe "" "" &&
      vm__wait_marker "$probe" '@@NSHM-READY' "${NSHM_VM_PROBE_TIMEOUT:-10}" 2>/dev/null; then
      accel=kvm
    fi
    vm_kill "$probe"
    vm_note "accel probe: kvm $([[ $accel == kvm ]] && echo works || echo 'does not work, using tcg') ($(vm_since "$t0") s)"
  fi
  printf '%s\n' "$accel" >"$VM_RUN/accel"
  printf '%s\n' "$accel"
}

# vm__qemu_start VMDIR ACCEL INITRD MODE SHMNAME SHMSIZE
# Starts QEMU in the background and records its pids; returns at once.
vm__qemu_start() {
  [[ -v VM_QEMU_EXTRA ]] || VM_QEMU_EXTRA=()
  local vmdir=$1 accel=$2 initrd=$3 mode=$4 shm=$5 size=$6 kdir
  kdir=$(vm_kernel_dir) || return 1
  rm -f "$vmdir/ctl.in" "$vmdir/ctl.out" "$vmdir/console.log"
  mkfifo "$vmdir/ctl.in" "$vmdir/ctl.out"
  : >"$vmdir/console.log"
  local args=(
    -accel "$accel" -m 512 -nographic -no-reboot -monitor none
    # No NIC (its boot ROM costs time under emulation, and no test may use a network), no VGA.
    -net none -vga none
    -kernel "$(vm_kernel_image "$kdir")" -initrd "$initrd"
    -append "console=ttyS0 panic=-1 quiet loglevel=1 nshm.mode=$mode"
    -pidfile "$vmdir/qemu.pid"
    # ttyS0: the console, to stdout (a log file); ttyS1: commands from the host.
    -serial stdio -serial "pipe:$vmdir/ctl"
  )
  vm__qemu_cpu_shm args "$accel" "$shm" "$size"
  args+=("${VM_QEMU_EXTRA[@]}")
  printf '%q ' "${NSHM_VM_QEMU:-qemu-system-x86_64}" "${args[@]}" >"$vmdir/cmdline"
  # `timeout` is a last-resort limit should every cleanup path fail; fd 3 is closed because bats
  # waits for whoever holds it open.
  timeout -k 5 "${NSHM_VM_MAX_LIFE:-900}" "${NSHM_VM_QEMU:-qemu-system-x86_64}" "${args[@]}" \
    </dev/null >"$vmdir/console.log" 2>"$vmdir/qemu.err" 3>&- &
  echo $! >"$vmdir/wrapper.pid"
  date +%s.%N >"$vmdir/started"
}

# vm_boot NAME [--shm SHMNAME SIZE] [--doorbell SOCKET] [--initrd FILE] [--kernel PACKAGE]
# [-- QEMU-ARG...]: boot
# a guest, wait until its /init is ready for commands, print the VM's directory (the handle for
# the other functions). --doorbell gives it an ivshmem-doorbell device (2 vectors) served by the
# ivshmem server (nshm-server) at SOCKET, instead of (or beside) --shm's ivshmem-plain.
# --kernel boots that kernel package (vm_kernel_package) instead of linux-image-amd64's.
# Arguments after -- go to QEMU as they are (e.g. -virtfs for a 9p share; build the
# initramfs with vm_initramfs -m "virtio_pci 9pnet_virtio 9p" for that).
vm_boot() {
  local name=$1
  shift
  local shm="" size="" initrd=${VM_RUN}/guest.cpio bell=() VM_KERNEL_PKG=${VM_KERNEL_PKG:-}
  VM_QEMU_EXTRA=()
  while (($#)); do
    case $1 in
      --shm) shm=$2 size=$3; shift 3 ;;
      # shellcheck disable=SC2054  # QEMU's option values are comma-separated
      --doorbell) bell=(-chardev "socket,path=$2,id=ivs" -device ivshmem-doorbell,chardev=ivs,vectors=2)
        shift 2 ;;
      --initrd) initrd=$2; shift 2 ;;
      --kernel) VM_KERNEL_PKG=$2; shift 2 ;;
      --) shift; VM_QEMU_EXTRA=("$@"); break ;;
      *) vm_die "vm_boot: unknown option $1"; return 1 ;;
    esac
  done
  VM_QEMU_EXTRA=("${bell[@]}" "${VM_QEMU_EXTRA[@]}")
  local vmdir=$VM_RUN/vm-$name accel t0
  mkdir -p "$vmdir/jobs"
  echo 0 >"$vmdir/jobs/counter"
  accel=$(vm_accel) || return 1
  t0=$(vm_now)
  vm__qemu_start "$vmdir" "$accel" "$initrd" serve "$shm" "$size" || return 1
  if ! vm__wait_marker "$vmdir" '@@NSHM-READY' "${NSHM_VM_BOOT_TIMEOUT:-90}"; then
    vm__dump "$vmdir"
    vm_kill "$vmdir"
    return 1
  fi
  vm_note "boot $name ($accel${shm:+, ivshmem $size}): $(vm_since "$t0") s to /init"
  printf '%s\n' "$vmdir"
}

# vm__qemu_cpu_shm ARRAY ACCEL SHM SIZE [,DEVICE-OPTION...]: append to ARRAY the -cpu for
# ACCEL (KVM: NSHM_VM_KVM_CPU, default host; TCG: QEMU's own unless NSHM_VM_TCG_CPU) and, when
# SHM is not empty, an ivshmem-plain device on /dev/shm/SHM of SIZE. Both harnesses boot so.
vm__qemu_cpu_shm() {
  local -n _qa=$1
  local accel=$2 shm=$3 size=$4 devopt=${5:-}
  if [[ $accel == kvm ]]; then
    _qa+=(-cpu "${NSHM_VM_KVM_CPU:-host}")
  elif [[ -n ${NSHM_VM_TCG_CPU:-} ]]; then
    _qa+=(-cpu "$NSHM_VM_TCG_CPU")
  fi
  if [[ -n $shm ]]; then
    # shellcheck disable=SC2054  # QEMU's option values are comma-separated
    _qa+=(-object "memory-backend-file,id=hm,size=$size,mem-path=/dev/shm/$shm,share=on"
      -device "ivshmem-plain,memdev=hm$devopt")
  fi
}

# Show what the guest printed, for a failure message.
vm__dump() {
  printf 'vm: --- %s/cmdline\n%s\n' "$1" "$(cat "$1/cmdline" 2>/dev/null)" >&2
  printf 'vm: --- qemu stderr\n%s\n' "$(tail -n 20 "$1/qemu.err" 2>/dev/null)" >&2
  printf 'vm: --- console (last 40 lines)\n%s\n' "$(tr -d '\r' <"$1/console.log" | tail -n 40)" >&2
}

# vm__wait_marker VMDIR REGEX TIMEOUT [LOG]: poll VMDIR/LOG (default console.log; the guest
# harness's channel is chan.log) until a line matches (return 0), QEMU exits or the time is
# up (return 1).
vm__wait_marker() {
  local vmdir=$1 re=$2 limit=$3 log=$1/${4:-console.log} t0
  t0=$(date +%s)
  while :; do
    grep -aqE -- "$re" "$log" 2>/dev/null && return 0
    if ! vm_alive "$vmdir"; then
      # One last look: the line may have arrived just before QEMU exited.
      grep -aqE -- "$re" "$log" 2>/dev/null && return 0
      printf 'vm: guest %s exited while waiting for /%s/\n' "$(basename "$vmdir")" "$re" >&2
      return 1
    fi
    if (($(date +%s) - t0 >= limit)); then
      printf 'vm: timed out after %s s waiting for /%s/ from %s\n' "$limit" "$re" "$(basename "$vmdir")" >&2
      return 1
    fi
    sleep 0.05
  done
}

# vm_start VMDIR SHELL-COMMAND: run a command in the guest in the background; print its id.
# The command runs under busybox sh, stdin /dev/null, PATH has /usr/local/bin (our programs).
vm_start() {
  local vmdir=$1 cmd=$2 n id
  if [[ $cmd == *$'\n'* ]]; then vm_die "vm_start: one line only"; return 1; fi
  n=$(($(cat "$vmdir/jobs/counter") + 1))
  echo "$n" >"$vmdir/jobs/counter"
  id=j$n
  printf '%s\n' "$cmd" >"$vmdir/jobs/$id.cmd"
  # Opening the FIFO read-write never blocks, even if QEMU is gone.
  printf '%s %s\n' "$id" "$cmd" 1<>"$vmdir/ctl.in"
  printf '%s\n' "$id"
}

# vm_wait_started VMDIR ID [TIMEOUT]: wait until the guest has started job ID.
vm_wait_started() {
  vm__wait_marker "$1" "@@NSHM-START $2\$|@@NSHM-START $2[^0-9]" "${3:-30}"
}

# vm_job_running VMDIR ID: has job ID started and not yet ended?
vm_job_running() {
  grep -aqE "@@NSHM-START $2(\$|[^0-9])" "$1/console.log" && ! grep -aq "@@NSHM-END $2 rc=" "$1/console.log"
}

# vm_wait VMDIR ID [TIMEOUT]: wait for job ID to end; its stdout goes to our stdout, its stderr
# to our stderr, and the return status is the job's exit status (255 when the harness failed:
# the guest died or the time ran out).
vm_wait() {
  local vmdir=$1 id=$2 limit=${3:-60}
  if ! vm__wait_marker "$vmdir" "@@NSHM-END $id rc=" "$limit"; then
    vm__dump "$vmdir"
    return 255
  fi
  local log rc
  log=$(tr -d '\r' <"$vmdir/console.log")
  # Lines are "@@NSHM-OUT id text" / "@@NSHM-ERR id text"; a kernel message could precede the
  # marker on the same line, hence the search anywhere in the line.
  sed -n "s/.*@@NSHM-OUT $id //p" <<<"$log"
  sed -n "s/.*@@NSHM-ERR $id //p" <<<"$log" >&2
  rc=$(sed -n "s/.*@@NSHM-END $id rc=\([0-9]*\).*/\1/p" <<<"$log" | head -n 1)
  sed -n "s/.*@@NSHM-END $id rc=[0-9]* secs=\([0-9.]*\).*/\1/p" <<<"$log" | head -n 1 >"$vmdir/jobs/$id.secs"
  return "${rc:-255}"
}

# vm_exec VMDIR TIMEOUT SHELL-COMMAND: run a command in the guest and wait for it.
vm_exec() {
  local id
  id=$(vm_start "$1" "$3") || return 255
  vm_wait "$1" "$id" "$2"
}

# The guest's own timing of a finished job, in seconds (from /proc/uptime, 0.01 s resolution).
vm_job_secs() { cat "$1/jobs/$2.secs" 2>/dev/null; }

# vm_shutdown VMDIR: ask the guest to power off, wait (bounded) for QEMU to exit, else kill it.
vm_shutdown() {
  local vmdir=$1 i
  if vm_alive "$vmdir"; then
    printf 'shutdown poweroff\n' 1<>"$vmdir/ctl.in"
    for ((i = 0; i < 100; i++)); do
      vm_alive "$vmdir" || break
      sleep 0.1
    done
  fi
  vm_kill "$vmdir"
}

# ---------------------------------------------------------------------------------------------
# The programs under test

vm_build_dir() { printf '%s\n' "${NSHM_BUILD_DIR:-$VM_REPO_DIR/build}"; }

# vm_programs: print the paths of nshm-get and nshm-put, or fail saying they are not built.
vm_programs() {
  local b p
  b=$(vm_build_dir)
  for p in nshm-get nshm-put; do
    [[ -x $b/$p ]] || { vm_die "$b/$p is missing: run make first"; return 1; }
    printf '%s\n' "$b/$p"
  done
}

# vm_script_boot REGION [NAME]: everything a stand-alone script (demo, measurements) needs
# before its first command: tools, kernel, an initramfs with the freshly built programs, a
# fresh /dev/shm region of REGION bytes (e.g. 16M) and a booted guest. Sets VM and SHM.
# The caller must have `trap vm_cleanup EXIT` in place.
vm_script_boot() {
  local region=$1 name=${2:-main} progs
  vm_require_tools || return 1
  vm_run_init || return 1
  progs=$(vm_programs) || return 1
  # shellcheck disable=SC2086  # two paths without spaces
  vm_initramfs "$VM_RUN/guest.cpio" $progs || return 1
  SHM=$(vm_shm_name "$name")
  vm_shm_create "$SHM" "$region" || return 1
  # shellcheck disable=SC2034  # VM and SHM are for the caller
  VM=$(vm_boot "$name" --shm "$SHM" "$region") || return 1
}

# vm_json_field JSON KEY: a number or string field from the programs' one-line --json summary.
vm_json_field() {
  sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$1" | head -n 1
}
