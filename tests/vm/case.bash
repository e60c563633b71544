# shellcheck shell=bash
# SPDX-License-Identifier: BSD-2-Clause
# What every real-guest suite (vm.bats, vm-kmod.bats, vm-doorbell.bats) does
# around a case: skip it when no guest can run (fail under CI=true), give it
# a fresh $T, run host programs in the background bounded, and clean both
# sides after it. Sourced from setup() after tests/vm/lib.sh.

# vm_case_begin WHY-PREFIX: 1 under CI when the VM cannot run, a skip
# elsewhere; else $T and the case's start time.
vm_case_begin() {
  if [[ -n $VM_SKIP ]]; then
    if [[ ${CI:-} == true ]]; then
      echo "CI=true, so this is a failure, not a skip: $VM_SKIP" >&2
      return 1
    fi
    skip "$1"
  fi
  T=$(mktemp -d "$VM_RUN/case.XXXXXX")
  CASE_T0=$(vm_now)
}

# vm_case_end [VMDIR]: host programs this case left running are killed, and
# the guest's too (they must not disturb the next case); timing noted.
vm_case_end() {
  [[ -n ${T:-} ]] || return 0
  local f vm=${1:-}
  for f in "$T"/*.pid; do
    [[ -f $f ]] && kill -KILL "$(cat "$f")" 2>/dev/null
  done
  if [[ -n $vm ]] && vm_alive "$vm"; then
    vm_exec "$vm" 10 'killall -9 nshm-get nshm-put nshm-stat 2>/dev/null; rm -rf /tmp/c; true' || true
  fi
  vm_note "case \"$BATS_TEST_DESCRIPTION\": $(vm_since "$CASE_T0") s"
  rm -rf "$T"
}

# bg NAME CMD...: a host command in the background, output in $T/NAME.{out,err}.
# fd 3 is closed: bats would wait for it.
bg() {
  local name=$1
  shift
  "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err" 3>&- &
  echo $! >"$T/$name.pid"
}

# bg_wait NAME LIMIT: wait (bounded) for a bg command; its status becomes ours, 255 on timeout.
bg_wait() {
  local name=$1 limit=$2 pid i
  pid=$(cat "$T/$name.pid")
  for ((i = 0; i < limit * 20; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null
    echo "host $name still running after $limit s: killed" >&2
    wait "$pid" 2>/dev/null
    return 255
  fi
  local rc=0
  wait "$pid" || rc=$?
  rm -f "$T/$name.pid"
  return "$rc"
}
