#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# shellcheck disable=SC1091,SC2016,SC2154
# (lib.sh is sourced by path; guest commands are single-quoted on purpose, they expand in the
# guest; bats sets $output.)
# The systemd unit and udev rules as a user meets them: `make install PREFIX=/usr` into a Debian
# guest with systemd and udev (tests/guest/lib.sh), one boot for every case. udev starts the
# receiver for the device; a push lands; each wrong setup ends in a failed unit that says what
# to change within 30 s and is not restarted; installing into a running guest starts receivers.
#
# Skips: only when QEMU or mmdebstrap (or the guest's root or kernel) cannot be had, and never
# when CI=true.

bats_require_minimum_version 1.5.0

setup_file() {
  source "$BATS_TEST_DIRNAME/lib.sh"
  export VM_T0
  VM_T0=$(vm_now)
  vm_run_init
  export VM_SKIP="" VM SHM SHM2 ADDR
  if ! guest_require_tools 2>"$VM_RUN/tools.err"; then
    VM_SKIP="QEMU or mmdebstrap cannot be installed: $(tr '\n' ' ' <"$VM_RUN/tools.err")"
  elif ! vm_kernel_dir >/dev/null 2>"$VM_RUN/kernel.err"; then
    VM_SKIP="the guest kernel cannot be fetched: $(tr '\n' ' ' <"$VM_RUN/kernel.err")"
  elif ! guest_root "$VM_RUN/root" 2>"$VM_RUN/root.err"; then
    VM_SKIP="the guest's root cannot be built: $(tail -n 5 "$VM_RUN/root.err" | tr '\n' ' ')"
  fi
  if [[ -n $VM_SKIP ]]; then
    printf '# %s\n# GUEST UNIT TESTS SKIPPED: %s\n# %s\n' "$(printf '#%.0s' {1..78})" "$VM_SKIP" \
      "$(printf '#%.0s' {1..78})" >&3
    return 0
  fi
  local root=$VM_RUN/root
  # As a user would: the Makefile's install, into the guest's root.
  make -s -C "$VM_REPO_DIR" install PREFIX=/usr DESTDIR="$root" >"$VM_RUN/install.log" 2>&1 ||
    { cat "$VM_RUN/install.log" >&2; return 1; }
  # What make install runs after installing into a running system (DESTDIR empty): the guest
  # has no make, so it gets the recipe's text to run.
  make -s -n --no-print-directory -C "$VM_REPO_DIR" install-activate DESTDIR= >"$root/root/install-activate.sh"
  cp "$BATS_TEST_DIRNAME/units-t.sh" "$root/root/t.sh"
  guest_image "$root" "$VM_RUN/disk.img" || return 1
  rm -rf "$root"
  SHM=$(vm_shm_name units)
  SHM2=$(vm_shm_name units2)
  vm_shm_create "$SHM" 4M
  VM=$(guest_boot units "$VM_RUN/disk.img" --shm "$SHM" 4M) || return 1
  local state
  state=$(guest_wait_system "$VM" 400) || return 1
  vm_note "systemd: $state after $(vm_since "$VM_T0") s (from the start of the file)"
  ADDR=$(guest_run "$VM" 120 '. /root/t.sh; ivshmem_addrs | head -n 1')
  [[ -n $ADDR ]]
}

teardown_file() {
  source "$BATS_TEST_DIRNAME/lib.sh"
  [[ -n ${VM:-} ]] && guest_shutdown "$VM"
  [[ -n ${VM_T0:-} ]] && vm_note "guest-units.bats total: $(vm_since "$VM_T0") s"
  guest_cleanup
}

setup() {
  source "$BATS_TEST_DIRNAME/lib.sh"
  source "$BATS_TEST_DIRNAME/../vm/case.bash"
  vm_case_begin "guest tests cannot run (see the banner above)" || return 1
  NSHM_PUT=$(vm_build_dir)/nshm-put
  UNIT="nshm-receiver@pci:$ADDR.service"
}

teardown() {
  [[ -n ${T:-} ]] || return 0
  # Not vm_case_end's guest cleanup: the guest's receivers are what is tested.
  local f
  for f in "$T"/*.pid; do [[ -f $f ]] && kill -KILL "$(cat "$f")" 2>/dev/null; done
  vm_note "case \"$BATS_TEST_DESCRIPTION\": $(vm_since "$CASE_T0") s"
  rm -rf "$T"
}

# g TIMEOUT COMMAND: run in the guest with tests/guest/units-t.sh's functions and u=$UNIT,
# addr=$ADDR, under bats' run (status, output, lines; stderr apart).
g() {
  run --separate-stderr guest_run "$VM" "$1" ". /root/t.sh; u='$UNIT' addr='$ADDR'; $2"
}
# For a failed check: what the guest said.
said() { printf 'guest said (status %s):\n%s\n--- stderr\n%s\n' "$status" "$output" "$stderr" >&2; }
# is_state LINE "STATE RESULT STATUS NRESTARTS": a settle line says that, reached within 30 s.
is_state() {
  local secs=${1##* after }
  secs=${secs% s}
  [[ ${1% after *} == "$2" ]] && awk -v s="$secs" 'BEGIN { exit !(s <= 30) }'
}

@test "udev starts nshm-receiver@pci:ADDR for the ivshmem device at boot, from /usr" {
  g 180 'settle "$u" serving; st "$u"; readlink "/proc/$MainPID/exe"'
  is_state "${lines[0]}" "active success 0 0" && [[ ${lines[1]} == /usr/bin/nshm-get ]] || { said; false; }
}

@test "a file and a tree pushed from the host land in /var/lib/nshm/incoming, verified" {
  head -c 300000 /dev/urandom >"$T/one.bin"
  mkdir -p "$T/tree/sub"
  echo alpha >"$T/tree/a.txt"
  head -c 70000 /dev/urandom >"$T/tree/sub/b.bin"
  run timeout 60 "$NSHM_PUT" -q "$T/one.bin" "$SHM"
  [[ $status == 0 ]] || { echo "$output" >&2; false; }
  run timeout 60 "$NSHM_PUT" -q "$T/tree" "$SHM:trees"
  [[ $status == 0 ]] || { echo "$output" >&2; false; }
  g 180 'cd /var/lib/nshm/incoming && sha256sum one.bin trees/tree/a.txt trees/tree/sub/b.bin'
  local want
  want=$(cd "$T" && sha256sum one.bin tree/a.txt tree/sub/b.bin | sed 's|  tree/|  trees/tree/|')
  [[ $status == 0 && $output == "$want" ]] || { said; echo "host: $want" >&2; false; }
}

@test "PREFIX=/usr: the unit and the rules name /usr paths that exist, nothing under /usr/local" {
  g 180 'grep -h "^ExecStart=\|RUN+=" /usr/lib/systemd/system/nshm-receiver@.service /usr/lib/udev/rules.d/*nshm*.rules
    test -x /usr/sbin/nshm-mtrr-restore && test -x /usr/bin/nshm-get && ! ls /usr/local/sbin /usr/local/bin | grep nshm'
  [[ $status == 0 ]] || { said; false; }
  [[ $output == *"ExecStart=/usr/bin/nshm-get "* ]]
  [[ $output == *'RUN+="/usr/sbin/nshm-mtrr-restore"'* ]]
  [[ $output != *local* ]]
}

@test "a second receiver on the busy device (nshm-receiver@pci) fails at once, says why, is not restarted" {
  g 270 'mark; systemctl start --no-block nshm-receiver@pci.service
    settle nshm-receiver@pci.service failed; later nshm-receiver@pci.service
    settle "$u" serving; since nshm-receiver@pci.service; systemctl reset-failed nshm-receiver@pci.service'
  is_state "${lines[0]}" "failed exit-code 3 0" || { said; false; }
  [[ ${lines[1]} == "later: failed 0" ]] || { said; false; }
  # udev's instance still serves.
  is_state "${lines[2]}" "active success 0 0" || { said; false; }
  [[ $output == *"is busy: another receiver"* ]] || { said; false; }
  [[ $output == *"not restarted"*"disable this one (systemctl disable --now nshm-receiver@pci.service)"* ]] || { said; false; }
}

@test "an NSHM_INCOMING that does not exist: the unit fails within 30 s with what to change; fixed, it runs" {
  g 270 'mark; echo NSHM_INCOMING=/srv/nowhere >/etc/default/nshm-receiver; systemctl restart --no-block "$u"
    settle "$u" failed; later "$u"; since "$u"
    rm /etc/default/nshm-receiver; systemctl restart --no-block "$u"; settle "$u" serving'
  is_state "${lines[0]}" "failed exit-code 2 0" || { said; false; }
  [[ ${lines[1]} == "later: failed 0" ]] || { said; false; }
  [[ $output == *"/srv/nowhere: not a directory"* ]] || { said; false; }
  [[ $output == *"not restarted: fix NSHM_INCOMING"*"/etc/default/nshm-receiver, then: systemctl restart $UNIT"* ]] || { said; false; }
  # What the line says to do, done.
  is_state "${lines[-1]}" "active success 0 0" || { said; false; }
}

@test "without libisal2 (dpkg -r) the unit fails at once with status 127 and says what to install" {
  # The package really goes; its files are kept aside and put back afterwards.
  g 360 'tar -cf /root/isal.tar $(dpkg -L libisal2 | while read -r f; do [ -f "$f" ] && echo "$f"; done) 2>/dev/null
    dpkg -r libisal2 >/dev/null 2>&1 && ! ldconfig -p | grep -q libisal || echo "libisal2 is still there"
    mark; systemctl restart --no-block "$u"; settle "$u" failed; later "$u"; since "$u"
    tar -xf /root/isal.tar -C / && ldconfig; systemctl restart --no-block "$u"; settle "$u" serving'
  is_state "${lines[0]}" "failed exit-code 127 0" || { said; false; }
  [[ ${lines[1]} == "later: failed 0" ]] || { said; false; }
  [[ $output == *"libisal.so.2: cannot open shared object file"* ]] || { said; false; }
  [[ $output == *"not restarted: nshm-get cannot start, a library it needs is missing"*"apt-get install zlib1g libisal2"* ]] || { said; false; }
  is_state "${lines[-1]}" "active success 0 0" || { said; false; }
}

@test "a killed receiver is restarted and takes its dead claim over; one that keeps dying hits the start limit" {
  # Each round: wait for the new main process, then kill -9 it. In the first two rounds it
  # must serve first (nshm-stat shows it as the live receiver: a restarted one that took its
  # dead predecessor's claim for "busy" would fail with 3); later ones only need to run.
  # Starts count from the reset-failed (the earlier cases' do not).
  g 450 'systemctl reset-failed "$u"; mark; old=0; for n in 1 2 3 4 5 6 7 8; do
      if [ $n -le 2 ]; then settle "$u" serving >/dev/null
      else for i in $(seq 300); do st "$u"; [ "$ActiveState" = failed ] && break
        [ "$SubState" = running ] && [ "$MainPID" != 0 ] && [ "$MainPID" != "$old" ] && break; sleep 0.1; done
      fi
      [ "$ActiveState" = failed ] && break
      echo "served by $MainPID"; old=$MainPID; systemctl kill -s KILL "$u"
      for i in $(seq 100); do st "$u"; [ "$SubState" != running ] && break; sleep 0.05; done
    done; st "$u"; echo "$ActiveState $Result $NRestarts"; since "$u" | grep -c "Start request repeated too quickly"
    systemctl reset-failed "$u"; systemctl start --no-block "$u"; settle "$u" serving'
  [[ $status == 0 ]] || { said; false; }
  # The first process and 5 restarts (StartLimitBurst=5), then the limit.
  [[ ${#lines[@]} == 9 && ${lines[5]} == "served by "* && ${lines[6]} == "failed signal 6" ]] || { said; false; }
  [[ ${lines[7]} == 1 ]] || { said; false; }
  is_state "${lines[8]}" "active success 0 0" || { said; false; }
}

@test "installing into a running guest (make install's udevadm trigger) starts the receiver of a device already there" {
  # Not installed: the unit and the rules go; a device hot-plugged now gets no receiver.
  g 180 'systemctl stop "$u" && mkdir -p /root/stash &&
    mv /usr/lib/systemd/system/nshm-receiver@.service /usr/lib/udev/rules.d/70-nshm.rules /root/stash/ &&
    systemctl daemon-reload && udevadm control --reload'
  [[ $status == 0 ]] || { said; false; }
  # The new device's region, made now (as a user would just before adding the device).
  vm_shm_create "$SHM2" 4M
  guest_hotplug_ivshmem "$VM" iv1 "$SHM2" 4M
  g 360 'for i in $(seq 150); do [ "$(ivshmem_addrs | wc -l)" = 2 ] && break; sleep 0.2; done
    addr2=$(ivshmem_addrs | grep -vx "$addr"); echo "second: $addr2"; udevadm settle -t 20
    echo "receivers before: $(systemctl list-units --plain --no-legend --state=active "nshm-receiver@*" | wc -l)"
    mv /root/stash/nshm-receiver@.service /usr/lib/systemd/system/ && mv /root/stash/70-nshm.rules /usr/lib/udev/rules.d/ &&
    bash /root/install-activate.sh && udevadm settle -t 20 && settle "nshm-receiver@pci:$addr2.service" serving'
  [[ $status == 0 && ${lines[0]} == "second: 0000:"* && ${lines[1]} == "receivers before: 0" ]] || { said; false; }
  [[ ${lines[2]} == "starting receivers for the ivshmem devices present (udevadm trigger)" ]] || { said; false; }
  is_state "${lines[3]}" "active success 0 0" || { said; false; }
  # It serves: a push through the hot-plugged device's region lands.
  echo "through the second device" >"$T/second.txt"
  run timeout 60 "$NSHM_PUT" -q "$T/second.txt" "$SHM2:hot"
  [[ $status == 0 ]] || { echo "$output" >&2; ls -l /dev/shm >&2; false; }
  # The first device's receiver was stopped by hand: systemd does not start a device's wants
  # again on a new event for it, so it is started by hand too.
  g 180 'cat /var/lib/nshm/incoming/hot/second.txt; systemctl start --no-block "$u"; settle "$u" serving'
  [[ ${lines[0]} == "through the second device" ]] && is_state "${lines[1]}" "active success 0 0" || { said; false; }
}
