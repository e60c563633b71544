#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# shellcheck disable=SC1091,SC2016,SC2154
# (lib.sh is sourced by path; guest commands are single-quoted on purpose, they expand in the
# guest; bats sets $stderr.)
# Real-guest tests: nshm-put / nshm-get between this host and a QEMU guest through an ivshmem
# device. One guest boot with a 4 MiB region serves most cases; the no-device case boots its own.
# The harness is in tests/vm/lib.sh. Timings go to the TAP stream as "# ..." comments.
#
# Skips: only when QEMU (or the guest kernel) cannot be installed, and never when CI=true.

bats_require_minimum_version 1.5.0

setup_file() {
  # shellcheck source=tests/vm/lib.sh
  source "$BATS_TEST_DIRNAME/lib.sh"
  source "$BATS_TEST_DIRNAME/case.bash"
  # Why we could not run, if that happens; each test then skips (or fails under CI).
  vm_suite_init
  [[ -z $VM_SKIP ]] || { vm_suite_banner "VM TESTS"; return 0; }
  # Without the programs the harness smoke test still runs; the program tests fail with why.
  vm_suite_initramfs "$VM_RUN/guest.cpio"
  export SHM VM
  SHM=$(vm_shm_name main)
  vm_shm_create "$SHM" 4M
  VM=$(vm_boot main --shm "$SHM" 4M)
}

teardown_file() {
  source "$BATS_TEST_DIRNAME/lib.sh"
  source "$BATS_TEST_DIRNAME/case.bash"
  vm_suite_end "${VM:-}"
}

setup() {
  source "$BATS_TEST_DIRNAME/lib.sh"
  source "$BATS_TEST_DIRNAME/case.bash"
  vm_case_begin "VM tests cannot run (see the banner above)" || return 1
}

teardown() {
  vm_case_end "${VM:-}"
}

need_programs() {
  if [[ -n $VM_NOPROGS ]]; then
    echo "$VM_NOPROGS" >&2
    return 1
  fi
  NSHM_GET=$(vm_build_dir)/nshm-get
  NSHM_PUT=$(vm_build_dir)/nshm-put
}



# random_file PATH SIZE: SIZE bytes of random data (head -c accepts 32M, 5M etc.).
random_file() { head -c "$2" /dev/urandom >"$1"; }

sha() { sha256sum <"$1" | cut -d' ' -f1; }

# rate FILE: "S s, R MB/s" from a program's --json summary in FILE.
rate() {
  local j
  j=$(grep -m1 '^{' "$1" 2>/dev/null) || { echo "no summary"; return 0; }
  echo "$(vm_json_field "$j" seconds) s, $(vm_json_field "$j" mbps) MB/s"
}

# The guest's part of a host->guest transfer: receive into /tmp/c (a fresh directory), check
# the checksum there, show what the directory holds (only the file: no leftovers), clean up.
guest_receive_cmd() {
  local name=$1 sum=$2 opts=${3:-}
  printf '%s' "rm -rf /tmp/c && mkdir /tmp/c && nshm-get --timeout 60 $opts -s pci /tmp/c/" \
    " && echo '$sum  /tmp/c/$name' | sha256sum -c && ls -A /tmp/c && rm -rf /tmp/c"
}

# send_to_guest FILE ORDER: host nshm-put FILE, guest nshm-get; ORDER is guest-first or
# host-first (which program starts, and is waiting, before the other one starts).
send_to_guest() {
  local src=$1 order=$2 name sum id
  name=$(basename "$src")
  sum=$(sha "$src")
  if [[ $order == guest-first ]]; then
    id=$(vm_start "$VM" "$(guest_receive_cmd "$name" "$sum")")
    vm_wait_started "$VM" "$id" 10
    sleep 1 # so that nshm-get in the guest is surely waiting
    vm_job_running "$VM" "$id" # ... and has not given up
    bg put "$NSHM_PUT" --json --timeout 60 "$src" "$SHM"
  else
    bg put "$NSHM_PUT" --json --timeout 60 "$src" "$SHM"
    sleep 1
    kill -0 "$(cat "$T/put.pid")" # still waiting for its peer, not failed
    id=$(vm_start "$VM" "$(guest_receive_cmd "$name" "$sum")")
  fi
  local put_rc=0
  bg_wait put 120 || put_rc=$?
  run --separate-stderr vm_wait "$VM" "$id" 120
  vm_note "  $(stat -c %s "$src") bytes host->guest ($order): host nshm-put $(rate "$T/put.out"), guest job $(vm_job_secs "$VM" "$id") s (with its wait and sha256sum)"
  echo "host nshm-put: rc=$put_rc $(cat "$T/put.err")"
  echo "guest: rc=$status out=$output err=$stderr"
  [ "$put_rc" -eq 0 ]
  [ "$status" -eq 0 ]
  [[ $output == *"/tmp/c/$name: OK"* ]]
  [ "${lines[-1]}" = "$name" ] # nothing else left in the directory
}

# receive_from_guest BYTES ORDER: guest nshm-put of BYTES random bytes, host nshm-get.
receive_from_guest() {
  local size=$1 order=$2 gsum id
  run --separate-stderr vm_exec "$VM" 60 "rm -rf /tmp/c && mkdir /tmp/c && head -c $size /dev/urandom >/tmp/c/g.bin && sha256sum /tmp/c/g.bin"
  echo "guest: rc=$status out=$output err=$stderr"
  [ "$status" -eq 0 ]
  gsum=${output%% *}
  mkdir "$T/dest"
  if [[ $order == guest-first ]]; then
    id=$(vm_start "$VM" 'nshm-put --timeout 60 /tmp/c/g.bin pci')
    vm_wait_started "$VM" "$id" 10
    sleep 1
    vm_job_running "$VM" "$id"
    bg get "$NSHM_GET" --json --timeout 60 --source "$SHM" "$T/dest/"
  else
    bg get "$NSHM_GET" --json --timeout 60 --source "$SHM" "$T/dest/"
    sleep 1
    kill -0 "$(cat "$T/get.pid")"
    id=$(vm_start "$VM" 'nshm-put --timeout 60 /tmp/c/g.bin pci')
  fi
  local get_rc=0
  bg_wait get 120 || get_rc=$?
  run --separate-stderr vm_wait "$VM" "$id" 120
  vm_note "  $size bytes guest->host ($order): host nshm-get $(rate "$T/get.out"), guest job $(vm_job_secs "$VM" "$id") s"
  echo "host nshm-get: rc=$get_rc $(cat "$T/get.err")"
  echo "guest nshm-put: rc=$status out=$output err=$stderr"
  [ "$get_rc" -eq 0 ]
  [ "$status" -eq 0 ]
  [ "$(ls -A "$T/dest")" = g.bin ]
  [ "$(sha "$T/dest/g.bin")" = "$gsum" ]
}

@test "harness: the guest sees the host's /dev/shm object through BAR2 (busybox devmem)" {
  # Independent of the programs: checks the device, the command channel and the mapping.
  printf 'nshm' | dd of="/dev/shm/$SHM" bs=1 seek=4096 conv=notrunc status=none
  run --separate-stderr vm_exec "$VM" 20 'd=$(grep -l 0x1110 /sys/bus/pci/devices/*/device); d=${d%/device}; grep -q 0x1af4 $d/vendor || exit 9; bar=$(awk "NR==3 {print \$1}" $d/resource); devmem $((bar + 4096)) 32; devmem $((bar + 8192)) 32 0x21216f6b'
  echo "rc=$status out=$output err=$stderr"
  [ "$status" -eq 0 ]
  [ "$output" = 0x6D68736E ] # "nshm", little-endian
  [ "$(dd if="/dev/shm/$SHM" bs=1 skip=8192 count=4 status=none)" = 'ko!!' ]
  dd if=/dev/zero of="/dev/shm/$SHM" bs=4096 count=3 conv=notrunc status=none
}

@test "host->guest: 32 MiB of random data through a 4 MiB region, SHA-256 checked in the guest" {
  need_programs
  random_file "$T/data32.bin" 32M
  send_to_guest "$T/data32.bin" guest-first
}

@test "guest->host: nshm-put FILE pci in the guest, nshm-get --source NAME on the host" {
  need_programs
  receive_from_guest $((32 << 20)) guest-first
}

@test "order: the guest's nshm-get waits before the host's nshm-put starts" {
  need_programs
  random_file "$T/odd.bin" $((5 * 1024 * 1024 + 4321))
  send_to_guest "$T/odd.bin" guest-first
}

@test "order: the host's nshm-put waits before the guest's nshm-get starts" {
  need_programs
  random_file "$T/odd.bin" $((5 * 1024 * 1024 + 4321))
  send_to_guest "$T/odd.bin" host-first
}

@test "order: the host's nshm-get waits before the guest's nshm-put starts" {
  need_programs
  receive_from_guest $((7 << 20)) host-first
}

@test "kill -9 of the host's nshm-put mid-transfer: the guest fails cleanly, the next transfer works" {
  need_programs
  # The sender reads standard input from a FIFO that delivers 8 MiB and then stalls, so the
  # transfer is certainly under way (and cannot finish) when the sender is killed.
  local id
  id=$(vm_start "$VM" 'rm -rf /tmp/c && mkdir /tmp/c && nshm-get --timeout 60 --peer-timeout 5 -s pci /tmp/c/; rc=$?; ls -A /tmp/c; exit $rc')
  vm_wait_started "$VM" "$id" 10
  mkfifo "$T/feed"
  # (Not through bg: that gives the program /dev/null as its standard input.)
  "$NSHM_PUT" --timeout 60 --name big.bin - "$SHM" <"$T/feed" >"$T/put.out" 2>"$T/put.err" 3>&- &
  echo $! >"$T/put.pid"
  { head -c 8M /dev/urandom; exec sleep 60; } >"$T/feed" 3>&- &
  echo $! >"$T/feed.pid"
  sleep 2 # the guest has had time to take what was sent, and is not yet at its peer timeout
  vm_job_running "$VM" "$id"
  # Mid-transfer for certain: data has landed in the guest (in a temporary file).
  run --separate-stderr vm_exec "$VM" 10 'find /tmp/c -type f -size +1k | wc -l'
  echo "partial files in the guest: $output $stderr"
  [ "$status" -eq 0 ] && [ "$output" -ge 1 ]
  kill -0 "$(cat "$T/put.pid")" # still sending, not failed on its own
  kill -KILL "$(cat "$T/put.pid")"
  local t_kill
  t_kill=$(vm_now)
  run --separate-stderr vm_wait "$VM" "$id" 60
  vm_note "  guest nshm-get failed $(vm_since "$t_kill") s after the kill (--peer-timeout 5): $stderr"
  echo "guest: rc=$status out=$output err=$stderr"
  [ "$status" -ne 0 ]
  [ "$status" -ne 255 ]                # 255: the harness gave up, not nshm-get
  [[ $stderr == nshm-get:* ]]          # one clear line from the program
  [ "$(printf '%s\n' "$stderr" | grep -c .)" -eq 1 ]
  [ -z "$output" ]                     # no file, not even a temporary one
  kill -KILL "$(cat "$T/feed.pid")" 2>/dev/null || true
  # A second transfer in the same boot, through the region the killed sender left behind.
  random_file "$T/after.bin" 4M
  send_to_guest "$T/after.bin" guest-first
}

@test "host alone: a resident receiver in the guest takes a push to a SUBDIR and answers a pull" {
  need_programs
  local sum id out
  random_file "$T/push.bin" 3M
  sum=$(sha "$T/push.bin")
  # Started once, as the guest's service manager would (this guest has none).
  id=$(vm_start "$VM" 'mkdir -p /tmp/c/in /tmp/c/root/logs && echo guest-log >/tmp/c/root/logs/syslog && exec nshm-get --serve --allow-pull /tmp/c/root --peer-timeout 10 /tmp/c/in')
  vm_wait_started "$VM" "$id"
  "$NSHM_PUT" --timeout 60 "$T/push.bin" "$SHM:sub/dir" 3>&-
  out=$(vm_exec "$VM" 30 'sha256sum /tmp/c/in/sub/dir/push.bin; ls -A /tmp/c/in/sub/dir')
  [[ $out == "$sum "* ]]
  [[ $(wc -l <<<"$out") -eq 2 ]]
  # A second push into DIR itself: the resident is still there.
  "$NSHM_PUT" --timeout 60 "$T/push.bin" "$SHM" 3>&-
  vm_exec "$VM" 30 'test -f /tmp/c/in/push.bin'
  # And the host pulls a file from under ROOT.
  "$NSHM_GET" --timeout 60 --source "$SHM" --pull /logs/syslog "$T/" 3>&-
  [ "$(cat "$T/syslog")" = guest-log ]
  run "$NSHM_GET" --timeout 60 --source "$SHM" --pull /../etc/passwd "$T/" 3>&-
  [ "$status" -ne 0 ]
  [ ! -e "$T/passwd" ]
}

@test "no ivshmem device in the guest: nshm-get and nshm-put say so" {
  need_programs
  local vm2
  vm2=$(vm_boot nodev)
  run --separate-stderr vm_exec "$vm2" 30 'nshm-get --timeout 5 -s pci /tmp/x'
  echo "guest nshm-get: rc=$status out=$output err=$stderr"
  vm_note "  nshm-get without a device (rc=$status, $(vm_job_secs "$vm2" j1) s): $stderr"
  local get_status=$status get_err=$stderr
  run --separate-stderr vm_exec "$vm2" 30 'echo x >/tmp/f; nshm-put --timeout 5 /tmp/f pci'
  echo "guest nshm-put: rc=$status out=$output err=$stderr"
  vm_shutdown "$vm2"
  [ "$get_status" -ne 0 ] && [ "$get_status" -ne 255 ]
  [[ $get_err == nshm-get:* ]]
  grep -Eqi 'ivshmem|1af4' <<<"$get_err"
  [ "$status" -ne 0 ] && [ "$status" -ne 255 ]
  [[ $stderr == nshm-put:* ]]
  grep -Eqi 'ivshmem|1af4' <<<"$stderr"
}

# tree_listing: type, size, link target and checksum of everything under ".", one line each,
# in byte order; the same script runs on the host and in the guest (busybox).
tree_listing_cmd='find . | LC_ALL=C sort | while IFS= read -r f; do if [ -L "$f" ]; then echo "l $f -> $(readlink "$f")"; elif [ -d "$f" ]; then echo "d $f"; else echo "f $f $(stat -c %s "$f") $(sha256sum <"$f" | cut -c1-64)"; fi; done'

@test "host->guest: a directory tree" {
  need_programs
  mkdir -p "$T/src/tree/sub/deeper" "$T/src/tree/empty dir"
  head -c 3M /dev/urandom >"$T/src/tree/sub/deeper/big.bin"
  : >"$T/src/tree/empty file"
  echo hello >"$T/src/tree/with space.txt"
  echo utf8 >"$T/src/tree/caf$(printf '\303\251').txt"
  for i in $(seq 1 50); do echo "$i" >"$T/src/tree/sub/small$i"; done
  ln -s sub/deeper/big.bin "$T/src/tree/link"
  ln "$T/src/tree/with space.txt" "$T/src/tree/sub/hard"
  local want id
  want=$(cd "$T/src" && sh -c "$tree_listing_cmd")
  id=$(vm_start "$VM" "rm -rf /tmp/c && mkdir /tmp/c && nshm-get -q --timeout 60 -s pci /tmp/c && cd /tmp/c && $tree_listing_cmd && rm -rf /tmp/c")
  vm_wait_started "$VM" "$id" 10
  bg put "$NSHM_PUT" --json --timeout 60 "$T/src/tree" "$SHM"
  local put_rc=0
  bg_wait put 120 || put_rc=$?
  run --separate-stderr vm_wait "$VM" "$id" 120
  vm_note "  tree of $(find "$T/src/tree" | wc -l) entries host->guest: host nshm-put $(rate "$T/put.out"), guest job $(vm_job_secs "$VM" "$id") s"
  echo "host nshm-put: rc=$put_rc $(cat "$T/put.err")"
  echo "guest: rc=$status err=$stderr"
  [ "$put_rc" -eq 0 ]
  [ "$status" -eq 0 ]
  diff <(printf '%s\n' "$want") <(printf '%s\n' "$output")
}

@test "a guest killed while its nshm-put holds the region: the host's nshm-put takes over in < 3 s" {
  need_programs
  local shm vm2 id i t0 took
  shm=$(vm_shm_name crash)
  vm_shm_create "$shm" 4M
  vm2=$(vm_boot crash --shm "$shm" 4M)
  id=$(vm_start "$vm2" 'echo x >/tmp/f && nshm-put --timeout 60 /tmp/f pci')
  # Its claim is in the region: the sender's line has a holder on the other side.
  for ((i = 0; i < 200; i++)); do
    "$(vm_build_dir)/nshm-stat" "$shm" 2>/dev/null | grep -q '^sender .*(other side)' && break
    sleep 0.05
  done
  "$(vm_build_dir)/nshm-stat" "$shm" | grep '^sender .*(other side)'
  vm_kill "$vm2"       # QEMU killed outright (TERM, then KILL): no chance to let go
  mkdir "$T/dest"
  echo from-host >"$T/src"
  bg get "$NSHM_GET" --timeout 20 --source "$shm" "$T/dest/"
  t0=$(vm_now)
  run "$NSHM_PUT" --timeout 20 "$T/src" "$shm"
  took=$(vm_since "$t0")
  vm_note "  host nshm-put took over a killed guest's claim and sent in $took s"
  echo "put: rc=$status $output"
  [ "$status" -eq 0 ]
  bg_wait get 20
  [ "$(cat "$T/dest/src")" = from-host ]
  awk -v s="$took" 'BEGIN { exit !(s < 3) }'
  rm -f "/dev/shm/$shm"
}
