# SPDX-License-Identifier: BSD-2-Clause
# shellcheck shell=bash
# tests/guest/lib.sh - boot a Debian guest with systemd and udev (a root from mmdebstrap, Debian's
# kernel) under QEMU with an ivshmem device, and drive it. See tests/guest/README.md.
#
# It builds on tests/vm/lib.sh (sourced here): the kernel cache and its modules, the run
# directory ($VM_RUN, cleaned by vm_cleanup), the KVM probe (vm_accel), vm_kill / vm_alive and
# the /dev/shm objects (vm_shm_name, vm_shm_create). Like that file it only defines functions.
#
#   guest_require_tools                       qemu, busybox, mmdebstrap, mke2fs...; apt as root
#   guest_root_tar [-p PKGS] [--deb F]...     print the cached root tarball, building it once
#   guest_root DIR [-p PKGS] [--deb F]...     unpack that root into DIR, with the harness's shell
#   guest_image DIR IMG                       DIR as an ext4 image (mke2fs -d)
#   guest_boot NAME IMG [--shm S SIZE] [-- QEMU-ARG...]   boot, wait for the channel; print VMDIR
#   guest_run VMDIR TIMEOUT CMD               run CMD (bash) in the guest: its stdout, stderr, rc
#   guest_start / guest_wait                  the same in two steps (several at once)
#   guest_wait_system VMDIR TIMEOUT           until systemd's boot is over (running/degraded)
#   guest_qmp VMDIR JSON...                   QMP commands; guest_hotplug_ivshmem VMDIR ID SHM SIZE
#   guest_shutdown VMDIR                      power off (bounded), else kill
#
# Knobs (besides tests/vm/lib.sh's NSHM_VM_*): NSHM_GUEST_CACHE (default /var/cache/nshm-guest),
# NSHM_GUEST_SUITE (default: this machine's codename), NSHM_GUEST_MIRRORS (apt "deb" lines
# separated by ';', default: this machine's own Debian sources), NSHM_GUEST_BOOT_TIMEOUT (s to
# the channel, default 240), NSHM_GUEST_MEM (MiB, default 768), NSHM_GUEST_SMP (default 1),
# NSHM_GUEST_KEEP_ROOTS (tarballs kept in the cache, default 6), NSHM_GUEST_MAX_LIFE (a hard
# limit on each guest's QEMU, default 1800 s: one boot serves a whole suite, which can take
# 15 min on a machine loaded many times over).

# shellcheck source=tests/vm/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../vm/lib.sh"
GUEST_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# What every root has: systemd as PID 1, udev, kmod (modules), procps (pgrep/ps in tests).
GUEST_BASE_PACKAGES="usr-is-merged systemd systemd-sysv udev kmod procps"
# What the programs load: the default -p list. A caller that wants a root without, say, ISA-L
# passes -p "zlib1g libarchive13".
GUEST_LIB_PACKAGES="zlib1g libisal2 libarchive13"
# Bump when the way a root is built changes, so that cached roots are built again.
GUEST_ROOT_FORMAT=1
GUEST_HOST_PACKAGES=(qemu-system-x86 busybox-static cpio kmod mmdebstrap e2fsprogs python3)

# Units a test guest has no use for, masked so that the boot is shorter under emulation (each
# of the later ones cost 1-5 s of the boot under TCG on a loaded machine: the root is already
# mounted read-write, the users exist, the journal is volatile).
GUEST_MASKED_UNITS="getty@tty1.service serial-getty@ttyS0.service getty.target
  systemd-logind.service systemd-user-sessions.service systemd-update-utmp.service
  systemd-update-utmp-runlevel.service systemd-pstore.service systemd-hwdb-update.service
  systemd-firstboot.service ldconfig.service systemd-journal-catalog-update.service
  e2scrub_all.timer e2scrub_reap.service fstrim.timer dpkg-db-backup.timer
  systemd-tmpfiles-clean.timer remote-fs.target systemd-ask-password-wall.path
  systemd-boot-update.service systemd-random-seed.service sys-kernel-tracing.mount
  sys-kernel-debug.mount sys-kernel-config.mount sys-fs-fuse-connections.mount dev-hugepages.mount
  dev-mqueue.mount systemd-binfmt.service proc-sys-fs-binfmt_misc.automount
  systemd-sysusers.service systemd-sysctl.service systemd-journal-flush.service
  systemd-modules-load.service modprobe@loop.service modprobe@dm_mod.service
  modprobe@drm.service modprobe@efi_pstore.service modprobe@fuse.service modprobe@configfs.service
  systemd-remount-fs.service systemd-tmpfiles-setup-dev.service kmod-static-nodes.service"

guest_note() { vm_note "$@"; }

# ---------------------------------------------------------------------------------------------
# Host tools

guest_require_tools() { vm__require guest guest__missing_tools "${GUEST_HOST_PACKAGES[@]}"; }

guest__missing_tools() {
  local -n _gout=$1
  local cmd
  vm__missing_tools _gout
  for cmd in mmdebstrap mke2fs python3 base64 sha256sum; do
    command -v "$cmd" >/dev/null || _gout+=("$cmd")
  done
  # mmdebstrap's root mode needs root; so does an image whose files root owns.
  [[ $(id -u) == 0 ]] || _gout+=("root")
}

# ---------------------------------------------------------------------------------------------
# The root: a tarball made once by mmdebstrap per set of inputs, kept in the cache.

guest_cache_dir() {
  local dir=${NSHM_GUEST_CACHE:-/var/cache/nshm-guest}
  mkdir -p "$dir" && printf '%s\n' "$dir"
}

guest__suite() {
  [[ -n ${NSHM_GUEST_SUITE:-} ]] && { printf '%s\n' "$NSHM_GUEST_SUITE"; return; }
  (. /etc/os-release && printf '%s\n' "${VERSION_CODENAME:-bookworm}")
}

# The apt "deb" lines of this machine's Debian sources for SUITE (SUITE, SUITE-updates,
# SUITE-security; main), one per line: the guest gets its packages where the host does.
guest__mirrors() {
  local suite=$1
  if [[ -n ${NSHM_GUEST_MIRRORS:-} ]]; then
    tr ';' '\n' <<<"$NSHM_GUEST_MIRRORS" | sed '/^[[:space:]]*$/d'
    return 0
  fi
  apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Identifier: Packages' 2>/dev/null |
    awk -v s="$suite" '($2 == s || $2 == s "-updates" || $2 == s "-security") && $3 == "main" {
      print "deb " $1 " " $2 " main" }' | sort -u
}

# guest__parse_root_args ARGS...: sets _pkgs (extra packages) and _debs (absolute .deb paths).
guest__parse_root_args() {
  _pkgs=$GUEST_LIB_PACKAGES
  _debs=()
  while (($#)); do
    case $1 in
      -p|--packages) _pkgs=$2; shift 2 ;;
      --deb) [[ -f $2 ]] || { vm_die "no such .deb: $2"; return 1; }
        _debs+=("$(realpath "$2")"); shift 2 ;;
      *) vm_die "unknown root option $1"; return 1 ;;
    esac
  done
}

# guest_root_tar [-p "PKG..."] [--deb FILE]...: print the path of a root tarball with systemd,
# udev and the packages (default: GUEST_LIB_PACKAGES) plus the given .deb files (installed by
# apt, which brings their dependencies). Built with mmdebstrap the first time (about a minute
# with a fast mirror), then taken from the cache: its name is a hash of every input.
guest_root_tar() {
  local _pkgs _debs
  guest__parse_root_args "$@" || return 1
  local cache suite mirrors key inputs tar d
  cache=$(guest_cache_dir) || return 1
  suite=$(guest__suite)
  mirrors=$(guest__mirrors "$suite")
  [[ -n $mirrors ]] || { vm_die "no Debian apt source for $suite on this machine (set NSHM_GUEST_MIRRORS)"; return 1; }
  inputs="format=$GUEST_ROOT_FORMAT suite=$suite
packages=$(tr ' ' '\n' <<<"$GUEST_BASE_PACKAGES $_pkgs" | sed '/^$/d' | LC_ALL=C sort -u | tr '\n' ' ')
$mirrors"
  for d in "${_debs[@]}"; do inputs+=$'\n'"deb=$(sha256sum <"$d" | cut -c1-64)"; done
  key=$(sha256sum <<<"$inputs" | cut -c1-16)
  tar=$cache/root-$key.tar
  if [[ ! -f $tar ]]; then
    (
      flock -w 1200 9 || { vm_die "timed out waiting for the lock on $cache"; exit 1; }
      [[ -f $tar ]] && exit 0
      guest__mmdebstrap "$suite" "$tar" "$inputs" "$_pkgs" "$mirrors" "${_debs[@]}"
    ) 9>"$cache/.lock" || return 1
    guest__prune "$cache"
  fi
  touch "$tar"
  printf '%s\n' "$tar"
}

guest__mmdebstrap() {
  local suite=$1 tar=$2 inputs=$3 pkgs=$4 mirrors=$5 t0 include d
  shift 5
  local args=(--variant=essential --mode=root --format=tar --quiet
    --aptopt='APT::Install-Recommends "false"'
    # A test guest needs no documentation: a smaller root is a faster image.
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*')
  include=$(tr ' ' ',' <<<"$GUEST_BASE_PACKAGES $pkgs" | sed 's/,,*/,/g; s/,$//')
  args+=(--include="$include")
  for d in "$@"; do args+=(--include="$d"); done
  # apt hands dpkg in the chroot the .deb files' paths as they are: mmdebstrap's own hook
  # makes them exist in there too.
  (($#)) && args+=(--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount)
  t0=$(vm_now)
  printf 'guest: building a %s root with mmdebstrap (once; cached as %s)\n' "$suite" "$tar" >&2
  local m=()
  mapfile -t m <<<"$mirrors"
  # only_std_fds: mmdebstrap fails with more than a few descriptors open (bats has 3, 4, 10).
  if ! only_std_fds mmdebstrap "${args[@]}" "$suite" "$tar.tmp" "${m[@]}" </dev/null >"$tar.log" 2>&1; then
    tail -n 30 "$tar.log" >&2
    rm -f "$tar.tmp"
    vm_die "mmdebstrap failed (log: $tar.log)"
    return 1
  fi
  printf '%s\n' "$inputs" >"${tar%.tar}.inputs"
  mv "$tar.tmp" "$tar"
  guest_note "guest root built with mmdebstrap in $(vm_since "$t0") s ($(du -m "$tar" | cut -f1) MB)"
}

# Keep the newest NSHM_GUEST_KEEP_ROOTS tarballs (each used one is touched).
guest__prune() {
  local cache=$1 f
  ls -t "$cache"/root-*.tar 2>/dev/null | tail -n +"$((${NSHM_GUEST_KEEP_ROOTS:-6} + 1))" |
    while read -r f; do rm -f "$f" "${f%.tar}.inputs" "$f.log"; done
}

# guest_root DIR [root options]: a fresh copy of the root in DIR (which must not exist yet or be
# empty), made ready for a test boot: the harness's shell service, a machine id, a volatile
# journal, slow units masked. The caller then adds what it tests (make install DESTDIR=DIR).
guest_root() {
  local dir=$1 tar
  shift
  tar=$(guest_root_tar "$@") || return 1
  mkdir -p "$dir" && tar -x -C "$dir" --numeric-owner -f "$tar" || { vm_die "cannot unpack $tar"; return 1; }
  guest__prepare_root "$dir"
}

guest__prepare_root() {
  local r=$1 u
  install -D -m 0755 "$GUEST_LIB_DIR/shell.sh" "$r/usr/local/lib/nshm-guest/shell"
  cat >"$r/etc/systemd/system/nshm-guest-shell.service" <<'EOF'
# The test harness's command channel on ttyS1 (tests/guest/shell.sh). Started early: the host
# can run commands while the boot goes on (guest_wait_system waits for its end).
[Unit]
Description=nshm test harness: commands from the host on ttyS1
DefaultDependencies=no
After=systemd-journald.socket
[Service]
ExecStart=/usr/local/lib/nshm-guest/shell
StandardInput=null
StandardOutput=journal
[Install]
WantedBy=sysinit.target
EOF
  mkdir -p "$r/etc/systemd/system/sysinit.target.wants"
  ln -sf ../nshm-guest-shell.service "$r/etc/systemd/system/sysinit.target.wants/"
  ln -sf /usr/lib/systemd/system/multi-user.target "$r/etc/systemd/system/default.target"
  for u in $GUEST_MASKED_UNITS; do
    rm -f "$r/etc/systemd/system/"*.wants/"$u"
    ln -sf /dev/null "$r/etc/systemd/system/$u"
  done
  mkdir -p "$r/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\n' >"$r/etc/systemd/journald.conf.d/nshm-guest.conf"
  # A machine id of its own (not a first boot: systemd-firstboot and presets stay out of it).
  od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$r/etc/machine-id"
  echo >>"$r/etc/machine-id"
  echo nshm-guest >"$r/etc/hostname"
  : >"$r/etc/fstab"
}

# guest_image DIR IMG: an ext4 image of DIR, with room to spare for the tests' files.
guest_image() {
  local dir=$1 img=$2 mb
  mb=$(du -sm "$dir" | cut -f1)
  rm -f "$img"
  mke2fs -q -F -t ext4 -L nshm-guest -d "$dir" "$img" "$((mb + mb / 4 + 256))M" >/dev/null 2>"$img.err" ||
    { cat "$img.err" >&2; vm_die "mke2fs -d $dir failed"; return 1; }
  rm -f "$img.err"
}

# ---------------------------------------------------------------------------------------------
# The initramfs: busybox, the modules for the disk and its filesystem, init.sh.

# guest_initramfs OUT: built once per run (it depends only on the kernel).
guest_initramfs() {
  local out=$1 kdir root m
  [[ -s $out ]] && return 0
  kdir=$(vm_kernel_dir) || return 1
  root=$(mktemp -d "${VM_RUN:-${TMPDIR:-/tmp}}/ginitramfs.XXXXXX") || return 1
  mkdir -p "$root"/{bin,dev,proc,sys,newroot,etc,lib/modules/guest}
  vm__copy_exec "$root" "$(command -v busybox)" /bin/busybox || return 1
  install -m 0755 "$GUEST_LIB_DIR/init.sh" "$root/init"
  vm_kernel_modules "$kdir" virtio_pci virtio_blk crc32c_generic ext4 >"$root/etc/guest-modules" || return 1
  while read -r m; do cp "$kdir/modules/$m.ko" "$root/lib/modules/guest/"; done <"$root/etc/guest-modules"
  (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out.tmp" ||
    { vm_die "cpio failed"; return 1; }
  mv "$out.tmp" "$out"
  rm -rf "$root"
}

# ---------------------------------------------------------------------------------------------
# Boot

# guest_boot NAME IMG [--shm SHMNAME SIZE] [-- QEMU-ARG...]: boot the image (the disk is
# /dev/vda; an ivshmem-plain device on /dev/shm/SHMNAME if given; QMP on VMDIR/qmp.sock), wait
# until the command channel answers, print VMDIR. Timings go to the TAP stream.
guest_boot() {
  local name=$1 img=$2
  shift 2
  local shm="" size="" extra=()
  while (($#)); do
    case $1 in
      --shm) shm=$2 size=$3; shift 3 ;;
      --) shift; extra=("$@"); break ;;
      *) vm_die "guest_boot: unknown option $1"; return 1 ;;
    esac
  done
  local vmdir=$VM_RUN/vm-$name accel kdir t0
  mkdir -p "$vmdir"
  echo 0 >"$vmdir/counter"
  guest_initramfs "$VM_RUN/guest-initramfs.cpio" || return 1
  accel=$(vm_accel) || return 1
  kdir=$(vm_kernel_dir) || return 1
  rm -f "$vmdir/ctl.in" "$vmdir/ctl.out" "$vmdir/qmp.sock"
  mkfifo "$vmdir/ctl.in" "$vmdir/ctl.out"
  : >"$vmdir/chan.log"
  local args=(
    -accel "$accel" -m "${NSHM_GUEST_MEM:-768}" -smp "${NSHM_GUEST_SMP:-1}"
    -nographic -no-reboot -monitor none -net none -vga none
    -kernel "$(vm_kernel_image "$kdir")" -initrd "$VM_RUN/guest-initramfs.cpio"
    # quiet, and systemd's status lines off: the console is for reading after a failure.
    -append "console=ttyS0 panic=-1 quiet loglevel=3 systemd.show_status=false rd.udev.log_level=3 udev.log_level=3 mitigations=off"
    -drive "file=$img,if=virtio,format=raw,cache=unsafe"
    -pidfile "$vmdir/qemu.pid"
    -serial stdio -serial "pipe:$vmdir/ctl"
    -qmp "unix:$vmdir/qmp.sock,server=on,wait=off"
  )
  # id=iv0: the device's name for QMP.
  vm__qemu_cpu_shm args "$accel" "$shm" "$size" ,id=iv0
  args+=("${extra[@]}")
  printf '%q ' "${NSHM_VM_QEMU:-qemu-system-x86_64}" "${args[@]}" >"$vmdir/cmdline"
  t0=$(vm_now)
  timeout -k 5 "${NSHM_GUEST_MAX_LIFE:-1800}" "${NSHM_VM_QEMU:-qemu-system-x86_64}" "${args[@]}" \
    </dev/null >"$vmdir/console.log" 2>"$vmdir/qemu.err" 3>&- &
  echo $! >"$vmdir/wrapper.pid"
  # What the guest says on ttyS1, appended to chan.log. It ends when QEMU does (the FIFO's
  # last writer goes); guest_kill also ends it.
  timeout -k 5 "${NSHM_GUEST_MAX_LIFE:-1800}" cat "$vmdir/ctl.out" >>"$vmdir/chan.log" 3>&- &
  echo $! >"$vmdir/reader.pid"
  if ! guest__wait_chan "$vmdir" '@@G-READY' "${NSHM_GUEST_BOOT_TIMEOUT:-240}"; then
    vm__dump "$vmdir"
    guest_kill "$vmdir"
    return 1
  fi
  guest_note "guest $name booted ($accel${shm:+, ivshmem $size}): channel up after $(vm_since "$t0") s"
  printf '%s\n' "$vmdir"
}

# guest__wait_chan VMDIR REGEX TIMEOUT: poll the channel log until a line matches.
guest__wait_chan() { vm__wait_marker "$1" "$2" "$3" chan.log; }

guest_kill() {
  local vmdir=$1 pid
  vm_kill "$vmdir"
  pid=$(cat "$vmdir/reader.pid" 2>/dev/null) && vm__is_ours "$pid" "$vmdir" && kill "$pid" 2>/dev/null
  rm -f "$vmdir/reader.pid"
  return 0
}

# guest_cleanup: every guest of the run (and the readers of their channels), then vm_cleanup.
guest_cleanup() {
  [[ -n ${VM_RUN:-} && -d ${VM_RUN:-} ]] || return 0
  local vmdir
  for vmdir in "$VM_RUN"/vm-*/; do
    [[ -d $vmdir ]] && guest_kill "${vmdir%/}"
  done
  vm_cleanup
}

# ---------------------------------------------------------------------------------------------
# Commands

# guest_start VMDIR COMMAND: run COMMAND (bash, any number of lines) in the guest; print its
# job id.
guest_start() {
  local vmdir=$1 cmd=$2 n
  # The counter is shared by bats' processes: take it under a lock.
  n=$(flock "$vmdir/counter" sh -c 'n=$(($(cat "$1") + 1)); echo $n >"$1"; echo $n' sh "$vmdir/counter")
  printf '%s\n' "$cmd" >"$vmdir/j$n.cmd"
  # Opening the FIFO read-write never blocks, even if QEMU is gone.
  printf 'j%s %s\n' "$n" "$(base64 -w0 <<<"$cmd")" 1<>"$vmdir/ctl.in"
  printf 'j%s\n' "$n"
}

# guest_wait VMDIR ID [TIMEOUT]: wait for the job; its stdout to ours, its stderr to ours, its
# status ours (255 when the guest died or the time ran out).
guest_wait() {
  local vmdir=$1 id=$2 limit=${3:-60} line rc
  # The whole line, up to its closing token: the marker arrives on the serial port before the
  # rest of the line, and a line read too early had lost its output (rc=0, out empty).
  if ! guest__wait_chan "$vmdir" "@@G-END $id .* @@G-EOL" "$limit"; then
    printf 'guest: job %s: %s\n' "$id" "$(cat "$vmdir/$id.cmd" 2>/dev/null)" >&2
    return 255
  fi
  line=$(tr -d '\r' <"$vmdir/chan.log" | grep -a "@@G-END $id " | head -n 1)
  rc=$(sed -n 's/.* rc=\([0-9]*\) .*/\1/p' <<<"$line")
  sed -n 's/.* out=\([^ ]*\) .*/\1/p' <<<"$line" | base64 -d
  sed -n 's/.* err=\([^ ]*\) @@G-EOL.*/\1/p' <<<"$line" | base64 -d >&2
  return "${rc:-255}"
}

# guest_run VMDIR TIMEOUT COMMAND
guest_run() {
  local id
  id=$(guest_start "$1" "$3") || return 255
  guest_wait "$1" "$id" "$2"
}

# guest_wait_system VMDIR TIMEOUT: wait until systemd has finished booting; prints its state
# (running, or degraded when a unit failed). 
guest_wait_system() {
  guest_run "$1" "$2" "timeout $(($2 - 2)) systemctl is-system-running --wait"
  local rc=$?
  ((rc == 255)) && return 255
  return 0
}

# guest_write VMDIR PATH < DATA: a (small) file in the guest, through the command line.
guest_write() {
  local data
  data=$(base64 -w0)
  guest_run "$1" 30 "mkdir -p \"\$(dirname '$2')\" && echo $data | base64 -d >'$2'"
}

# guest_qmp VMDIR JSON...: each JSON command through QMP; prints each reply, fails on an error.
guest_qmp() {
  local vmdir=$1
  shift
  python3 - "$vmdir/qmp.sock" "$@" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(30)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()  # the greeting

def cmd(c):
    f.write(json.dumps(c) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:  # not an event
            return r

cmd({"execute": "qmp_capabilities"})
for a in sys.argv[2:]:
    r = cmd(json.loads(a))
    print(json.dumps(r))
    if "error" in r:
        sys.exit(1)
EOF
}

# guest_hotplug_ivshmem VMDIR ID SHMNAME SIZE: a new ivshmem-plain device, as a user would add
# one to a running VM (the guest sees a PCI hot-add through ACPI).
guest_hotplug_ivshmem() {
  local vmdir=$1 id=$2 shm=$3 size=$4 bytes
  bytes=$(numfmt --from=iec "$size")
  guest_qmp "$vmdir" \
    "{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":\"memory-backend-file\",\"id\":\"hm-$id\",\"size\":$bytes,\"mem-path\":\"/dev/shm/$shm\",\"share\":true}}" \
    "{\"execute\":\"device_add\",\"arguments\":{\"driver\":\"ivshmem-plain\",\"memdev\":\"hm-$id\",\"id\":\"$id\"}}" >/dev/null
}

# guest_shutdown VMDIR: power the guest off (bounded), else kill it.
guest_shutdown() {
  local vmdir=$1 i
  if vm_alive "$vmdir"; then
    guest_start "$vmdir" 'systemctl poweroff --force --force' >/dev/null
    for ((i = 0; i < 100; i++)); do
      vm_alive "$vmdir" || break
      sleep 0.1
    done
  fi
  guest_kill "$vmdir"
}
