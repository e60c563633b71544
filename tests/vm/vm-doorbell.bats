#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# shellcheck disable=SC1091,SC2016,SC2154
# A real QEMU ivshmem-doorbell device served by nshm-server, with a guest that has no module:
# the guest polls (sysfs resource2), the host side joins the server and sleeps on eventfds.
# Transfers both ways, and a server that loses its QEMU (killed) and gets it back (booted
# again). The module's side (MSI-X) is tests/vm/vm-kmod.bats's. Harness: tests/vm/lib.sh.
#
# Skips: only when QEMU (or the guest kernel) cannot be installed, and never when CI=true.

bats_require_minimum_version 1.5.0

setup_file() {
  source "$BATS_TEST_DIRNAME/lib.sh"
  source "$BATS_TEST_DIRNAME/case.bash"
  vm_suite_init
  [[ -z $VM_SKIP ]] || return 0
  vm_suite_initramfs "$VM_RUN/guest.cpio"
  # /run/nshm: where nshm-server and the host programs look (fixed; no variable moves it).
  export SHM VM SOCK NSHM_RUN_DIR=/run/nshm
  SHM=$(vm_shm_name bell)
  SOCK=$NSHM_RUN_DIR/$SHM.sock
  vm_server_start "$SHM" 4M 2>/dev/null || return 0
  VM=$(vm_boot bell --doorbell "$SOCK") || VM=
}

teardown_file() {
  source "$BATS_TEST_DIRNAME/lib.sh"
  source "$BATS_TEST_DIRNAME/case.bash"
  [[ -n ${VM:-} ]] && vm_shutdown "$VM"
  vm_server_stop
  vm_suite_end
}

setup() {
  source "$BATS_TEST_DIRNAME/lib.sh"
  source "$BATS_TEST_DIRNAME/case.bash"
  vm_case_begin "VM tests cannot run: $VM_SKIP" || return 1
  [[ -n $VM_NOPROGS ]] && { echo "$VM_NOPROGS" >&2; return 1; }
  [[ -n ${VM:-} ]] || { cat "$VM_RUN/server.log" >&2; echo "the guest did not boot" >&2; return 1; }
  B=$(vm_build_dir)
}

teardown() {
  vm_case_end "${VM:-}"
}



sha() { sha256sum <"$1" | cut -d' ' -f1; }

# host_to_guest FILE: the guest waits (nshm-get -s pci, polling), the host sends.
host_to_guest() {
  local src=$1 name sum id
  name=$(basename "$src")
  sum=$(sha "$src")
  id=$(vm_start "$VM" "rm -rf /tmp/c && mkdir /tmp/c && nshm-get -q --timeout 60 -s pci /tmp/c/ && echo '$sum  /tmp/c/$name' | sha256sum -c && rm -rf /tmp/c")
  vm_wait_started "$VM" "$id" 10
  run "$B/nshm-put" -q --timeout 60 "$src" "$SHM"
  echo "nshm-put: $output"
  [ "$status" -eq 0 ]
  vm_wait "$VM" "$id" 60
}

@test "doorbell: QEMU joined nshm-server; the guest sees the device and its IVPosition" {
  local qemu
  qemu=$(cat "$VM/qemu.pid")
  [ -n "$(vm_server_client_id "$qemu")" ]
  # The one ivshmem device in the guest, with BAR0 (registers), BAR1 (MSI-X) and BAR2.
  run vm_exec "$VM" 20 'for d in /sys/bus/pci/devices/*; do [ "$(cat $d/device)" = 0x1110 ] && ls $d; done'
  [ "$status" -eq 0 ]
  [[ $output == *resource0* && $output == *resource1* && $output == *resource2* ]]
  # IVPosition (BAR0 offset 8) is the ID nshm-server gave this QEMU.
  run --separate-stderr vm_exec "$VM" 20 'd=$(grep -l 0x1110 /sys/bus/pci/devices/*/device); d=${d%/device}; bar=$(awk "NR==1 {print \$1}" $d/resource); devmem $((bar + 8)) 32'
  echo "IVPosition: $output (server: client $(vm_server_client_id "$qemu"))"
  [ "$status" -eq 0 ]
  [ "$((output))" -eq "$(vm_server_client_id "$qemu")" ]
  vm_server_alive
}

@test "doorbell: host->guest, 5 MiB: the host rings eventfds, the guest (no module) polls" {
  head -c 5M /dev/urandom >"$T/five"
  host_to_guest "$T/five"
  # The host side was a peer of the server (joined and left); the guest's line says it has no
  # doorbell, so the host never needed one to reach it.
  [ "$(grep -c ' joined (pid ' "$VM_RUN/server.log")" -ge 2 ]
  run "$B/nshm-stat" "$SHM"
  [[ $output == *"doorbell  eventfd (nshm-server)"* ]]
  [[ $output == *"receiver  "*"no doorbell"* ]]
}

@test "doorbell: guest->host, 5 MiB: the host waits on its eventfd for a guest that polls" {
  local id gsum
  run --separate-stderr vm_exec "$VM" 60 'rm -rf /tmp/c && mkdir /tmp/c && head -c 5242880 /dev/urandom >/tmp/c/g.bin && sha256sum /tmp/c/g.bin'
  [ "$status" -eq 0 ]
  gsum=${output%% *}
  bg get "$B/nshm-get" -q --timeout 60 -s "$SHM" "$T/out"
  sleep 1
  run "$B/nshm-stat" "$SHM"
  [[ $output == *"receiver  ready, alive"*"doorbell id "* ]]
  id=$(vm_start "$VM" 'nshm-put -q --timeout 60 /tmp/c/g.bin pci')
  run vm_wait "$VM" "$id" 60
  echo "guest nshm-put: rc=$status $output"
  [ "$status" -eq 0 ]
  bg_wait get 60
  [ "$(sha "$T/out")" = "$gsum" ]
}

@test "doorbell: a host resident asleep until rung is woken by a guest without the module (BAR0's Doorbell)" {
  local id
  mkdir -p "$T/in"
  bg res "$B/nshm-get" -q --serve -s "$SHM" "$T/in"
  # Idle 2 s: it sleeps on its eventfd with no timeout and beats only when rung.
  for ((i = 0; i < 100; i++)); do
    "$B/nshm-stat" --json "$SHM" | grep -q '"receiver":{[^}]*"asleep":true' && break
    sleep 0.1
  done
  "$B/nshm-stat" --json "$SHM" | grep -q '"receiver":{[^}]*"asleep":true'
  # Without a way to ring it the guest's nshm-put would fail at once ("sleeps until rung").
  run --separate-stderr vm_exec "$VM" 60 'echo woken >/tmp/w.txt && nshm-put -q --timeout 30 /tmp/w.txt pci'
  echo "guest: rc=$status $output $stderr"
  [ "$status" -eq 0 ]
  [ "$(cat "$T/in/w.txt")" = woken ]
}

@test "doorbell: the server loses QEMU (killed) and gets it back (booted again): fresh ID, transfers" {
  local old new qemu
  old=$(vm_server_client_id "$(cat "$VM/qemu.pid")")
  [ -n "$old" ]
  vm_kill "$VM"
  for ((i = 0; i < 100; i++)); do
    grep -q "^client $old left" "$VM_RUN/server.log" && break
    sleep 0.1
  done
  grep -q "^client $old left" "$VM_RUN/server.log"
  vm_server_alive
  VM=$(vm_boot bell --doorbell "$SOCK")
  qemu=$(cat "$VM/qemu.pid")
  new=$(vm_server_client_id "$qemu")
  [ -n "$new" ] && [ "$new" -gt "$old" ]
  head -c 3M /dev/urandom >"$T/again"
  host_to_guest "$T/again"
  vm_server_alive
}
