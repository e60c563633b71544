#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# shellcheck disable=SC1091,SC2016,SC2154
# The README's libvirt doorbell recipe under a real libvirtd (issue 19, part 3): nshm-server
# started as the README says (--group libvirt-qemu), a transient TCG domain whose <shmem> is
# the README's block (its name changed to this run's), QEMU running as libvirt-qemu; the guest
# loads nshm.ko (MSI-X) and a transfer goes each way with interrupts on both sides.
#
# libvirtd and virtlogd are started here by hand (no systemd as PID 1) and stopped at the end,
# unless one already answers on qemu:///system (then it is used and left alone). The guest's
# serial ports are the harness's (tests/vm/lib.sh): ttyS0 a file, ttyS1 a pipe pair.
#
# Skips: only when libvirt, QEMU, the kernel or its headers cannot be installed; never when
# CI=true.

bats_require_minimum_version 1.5.0

LV_URI=qemu:///system

setup_file() {
  source "$BATS_TEST_DIRNAME/lib.sh"
  source "$BATS_TEST_DIRNAME/case.bash"
  export KO="" SHM VM DOM
  vm_suite_init
  # libvirt's QEMU (libvirt-qemu) reads the kernel, the initramfs and the serial pipes here.
  chmod 0755 "$VM_RUN"
  if [[ -n $VM_SKIP ]]; then
    :
  elif ! lv_install 2>"$VM_RUN/lv.err"; then
    VM_SKIP="libvirt cannot be installed: $(tr '\n' ' ' <"$VM_RUN/lv.err")"
  elif ! KO=$(vm_kmod_build 2>"$VM_RUN/kmod.err"); then
    VM_SKIP="nshm.ko cannot be built: $(tail -n 5 "$VM_RUN/kmod.err" | tr '\n' ' ')"
  elif ! lv_daemons 2>"$VM_RUN/daemons.err"; then
    VM_SKIP="libvirtd does not start: $(tail -n 5 "$VM_RUN/daemons.err" | tr '\n' ' ')"
  fi
  [[ -z $VM_SKIP ]] || { vm_suite_banner "LIBVIRT TESTS"; return 0; }
  local b vmdir=$VM_RUN/vm-lv
  b=$(vm_build_dir)
  # In the VM's directory: QEMU's command line names it (vm_alive checks that).
  mkdir -p "$vmdir/jobs"
  chmod 0755 "$vmdir"
  vm_initramfs "$vmdir/guest.cpio" "$b/nshm-get" "$b/nshm-put" "$b/nshm-stat" "$KO=/lib/nshm.ko"
  cp "$(vm_kernel_image "$(vm_kernel_dir)")" "$vmdir/vmlinuz"
  chmod 0644 "$vmdir/guest.cpio" "$vmdir/vmlinuz"
  SHM=$(vm_shm_name lv)
  DOM=nshm-server-test-$(basename "$VM_RUN" | cut -d. -f2)
  lv_server || return 0
  VM=$(lv_boot) || VM=
}

teardown_file() {
  source "$BATS_TEST_DIRNAME/lib.sh"
  source "$BATS_TEST_DIRNAME/case.bash"
  [[ -n ${DOM:-} ]] && virsh -c "$LV_URI" destroy "$DOM" >/dev/null 2>&1
  vm_server_stop
  lv_daemons_stop
  vm_suite_end
  true
}

# lv_install: libvirtd, virsh and libvirt's QEMU driver (tests/deps.sh lists them too).
lv_install() {
  local drv=/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so
  command -v libvirtd >/dev/null && command -v virsh >/dev/null && [[ -f $drv ]] && return 0
  [[ $(id -u) == 0 ]] || { echo "as root: apt-get install libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu"; return 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu >"$VM_RUN/lv-apt.log" 2>&1 ||
    { tail -n 5 "$VM_RUN/lv-apt.log"; return 1; }
}

lv_answers() { timeout 10 virsh -c "$LV_URI" version >/dev/null 2>&1; }

# lv_daemons: use a libvirtd that answers, else start virtlogd and libvirtd (their pid files in
# VM_RUN say they are ours).
lv_daemons() {
  lv_answers && return 0
  virtlogd -p "$VM_RUN/virtlogd.pid" </dev/null >"$VM_RUN/virtlogd.log" 2>&1 3>&- &
  libvirtd -p "$VM_RUN/libvirtd.pid" </dev/null >"$VM_RUN/libvirtd.log" 2>&1 3>&- &
  local i
  for ((i = 0; i < 100; i++)); do
    lv_answers && return 0
    sleep 0.2
  done
  tail -n 5 "$VM_RUN/libvirtd.log"
  return 1
}

# Only the daemons this run started, checked by name before the signal.
lv_daemons_stop() {
  [[ -n ${VM_RUN:-} ]] || return 0
  local d pid i
  for d in libvirtd virtlogd; do
    pid=$(cat "$VM_RUN/$d.pid" 2>/dev/null) || continue
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$d" ]] || continue
    kill -TERM "$pid"
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
  done
  return 0
}

# The README's server line and <shmem> block, with vm1 replaced by this run's name.
readme_server_args() {
  sed -n 's/^    host# nshm-server \(--group libvirt-qemu\) vm1$/\1/p' "$VM_REPO_DIR/README.md"
}
readme_shmem() {
  awk '/^### libvirt with doorbells/ { s = 1 } s && /^    <shmem name=.vm1.>$/ { p = 1 }
       p { print substr($0, 5) } p && /<\/shmem>/ { exit }' "$VM_REPO_DIR/README.md" |
    sed "s/vm1/$SHM/g"
}

# nshm-server as the README starts it (4 MiB: small is quick to clear).
lv_server() {
  local args
  args=$(readme_server_args)
  [[ $args == "--group libvirt-qemu" ]] || { echo "README: no 'host# nshm-server --group libvirt-qemu vm1'" >"$VM_RUN/server.log"; return 1; }
  # shellcheck disable=SC2086  # the README's words
  vm_server_start "$SHM" 4M $args 2>/dev/null
}

# lv_boot: the transient domain; prints its VM directory (the harness's handle). QEMU's pid
# goes where vm_alive and vm_kill look for it.
lv_boot() {
  local vmdir=$VM_RUN/vm-lv shmem
  echo 0 >"$vmdir/jobs/counter"
  mkfifo "$vmdir/ctl.in" "$vmdir/ctl.out"
  : >"$vmdir/console.log"
  shmem=$(readme_shmem)
  [[ $shmem == *ivshmem-doorbell* ]] || { echo "README: no <shmem> block for doorbells" >&2; return 1; }
  cat >"$vmdir/domain.xml" <<EOF
<domain type='qemu'>
  <name>$DOM</name>
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$vmdir/vmlinuz</kernel>
    <initrd>$vmdir/guest.cpio</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet loglevel=1 mitigations=off nshm.mode=serve</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='file'><source path='$vmdir/console.log'/><target port='0'/></serial>
    <serial type='pipe'><source path='$vmdir/ctl'/><target port='1'/></serial>
$shmem
    <memballoon model='none'/>
  </devices>
</domain>
EOF
  local t0 pidfile=/run/libvirt/qemu/$DOM.pid i
  t0=$(vm_now)
  timeout 180 virsh -c "$LV_URI" create "$vmdir/domain.xml" >"$vmdir/virsh.out" 2>&1 ||
    { cat "$vmdir/virsh.out" >&2; return 1; }
  for ((i = 0; i < 50; i++)); do
    [[ -s $pidfile ]] && break
    sleep 0.1
  done
  tr -d '\n' <"$pidfile" >"$vmdir/qemu.pid"
  cp "$vmdir/qemu.pid" "$vmdir/wrapper.pid"
  if ! vm__wait_marker "$vmdir" '@@NSHM-READY' "${NSHM_VM_BOOT_TIMEOUT:-180}"; then
    vm__dump "$vmdir"
    return 1
  fi
  vm_note "boot $DOM under libvirtd (tcg, ivshmem-doorbell): $(vm_since "$t0") s to /init"
  printf '%s\n' "$vmdir"
}

setup() {
  source "$BATS_TEST_DIRNAME/lib.sh"
  source "$BATS_TEST_DIRNAME/case.bash"
  vm_case_begin "libvirt tests cannot run: $VM_SKIP" || return 1
  [[ -n ${VM:-} ]] || { cat "$VM_RUN/server.log" "$VM_RUN/vm-lv/virsh.out" >&2; echo "the domain did not boot" >&2; return 1; }
  B=$(vm_build_dir)
}

teardown() {
  vm_case_end "${VM:-}"
}

sha() { sha256sum <"$1" | cut -d' ' -f1; }

# The guest's MSI-X interrupts so far (nshm0's lines in /proc/interrupts).
guest_irqs() {
  run --separate-stderr vm_exec "$VM" 10 'grep nshm0 /proc/interrupts | awk "{ for (i = 2; i <= NF; i++) if (\$i ~ /^[0-9]+$/) n += \$i } END { print n + 0 }"'
  printf '%s\n' "$output"
}

@test "libvirt: the README's doorbell recipe: QEMU as libvirt-qemu joins nshm-server, the guest takes MSI-X" {
  local qemu
  qemu=$(cat "$VM/qemu.pid")
  # QEMU runs as libvirt's user, not root, and joined the server through the group's socket.
  [ "$(stat -c %U "/proc/$qemu")" = libvirt-qemu ]
  grep -q "joined (pid $qemu, uid $(id -u libvirt-qemu))" "$VM_RUN/server.log"
  [ "$(stat -c '%G %a' "/run/nshm/$SHM.sock")" = "libvirt-qemu 660" ]
  [ "$(stat -c '%G %a' "/dev/shm/$SHM")" = "libvirt-qemu 660" ]
  run --separate-stderr vm_exec "$VM" 30 'insmod /lib/nshm.ko && nshm-stat pci'
  echo "guest: rc=$status out=$output err=$stderr"
  [ "$status" -eq 0 ]
  [[ $output == *"doorbell  MSI-X (/dev/nshm0)"* ]]
}

@test "libvirt: host->guest and guest->host, 3 MB each, with interrupts both ways" {
  local before after src=$T/h.bin sum id gsum get_rc=0
  vm_exec "$VM" 30 '[ -e /dev/nshm0 ] || insmod /lib/nshm.ko' >/dev/null
  # host -> guest: the guest waits on MSI-X, the host's nshm-put rings its eventfd.
  head -c 3000000 /dev/urandom >"$src"
  sum=$(sha "$src")
  before=$(guest_irqs)
  id=$(vm_start "$VM" "rm -rf /tmp/c && mkdir /tmp/c && nshm-get -q --timeout 60 -s pci /tmp/c/ && echo '$sum  /tmp/c/h.bin' | sha256sum -c")
  vm_wait_started "$VM" "$id" 10
  until_ready() { "$B/nshm-stat" "$SHM" | grep -q 'receiver  ready, alive.*doorbell id'; }
  for ((i = 0; i < 200; i++)); do until_ready && break; sleep 0.1; done
  run "$B/nshm-stat" "$SHM"
  echo "host nshm-stat: $output"
  [[ $output == *"doorbell  eventfd (nshm-server)"* ]]
  run "$B/nshm-put" -q --timeout 60 "$src" "$SHM"
  echo "host nshm-put: rc=$status $output"
  [ "$status" -eq 0 ]
  run --separate-stderr vm_wait "$VM" "$id" 120
  echo "guest nshm-get: rc=$status out=$output err=$stderr"
  [ "$status" -eq 0 ]
  [[ $output == *"/tmp/c/h.bin: OK"* ]]
  after=$(guest_irqs)
  vm_note "  guest MSI-X interrupts during host->guest: $((after - before))"
  [ "$after" -gt "$before" ]
  # guest -> host: the host's nshm-get sleeps on its eventfd; the guest rings through BAR0.
  run --separate-stderr vm_exec "$VM" 60 'head -c 3000000 /dev/urandom >/tmp/c/g.bin && sha256sum /tmp/c/g.bin'
  [ "$status" -eq 0 ]
  gsum=${output%% *}
  mkdir "$T/dest"
  bg get "$B/nshm-get" -q --timeout 60 --source "$SHM" "$T/dest/"
  for ((i = 0; i < 200; i++)); do until_ready && break; sleep 0.1; done
  id=$(vm_start "$VM" 'nshm-put -q --timeout 60 /tmp/c/g.bin pci')
  run --separate-stderr vm_wait "$VM" "$id" 120
  echo "guest nshm-put: rc=$status out=$output err=$stderr"
  [ "$status" -eq 0 ]
  bg_wait get 60 || get_rc=$?
  [ "$get_rc" -eq 0 ]
  [ "$(sha "$T/dest/g.bin")" = "$gsum" ]
  before=$after
  after=$(guest_irqs)
  vm_note "  guest MSI-X interrupts during guest->host: $((after - before))"
  [ "$after" -gt "$before" ]
}
