# shellcheck shell=bash
# SPDX-License-Identifier: BSD-2-Clause
# What every real-guest suite (tests/vm/*.bats, tests/guest/guest-units.bats)
# does around its guests and cases: find out in setup_file whether a guest can
# run at all (vm_suite_init), start and stop nshm-server (vm_server_*), skip a
# case when no guest can run (fail under CI=true), give it a fresh $T, run
# host programs in the background bounded, clean both sides after it, and
# say what the file cost (vm_suite_end). Sourced after tests/vm/lib.sh, in
# setup_file, setup and teardown_file alike.

# vm_suite_init: the start of a suite's setup_file: VM_T0 (for vm_suite_end),
# the run directory, and VM_SKIP (exported, empty when all is there) saying
# why no guest can run: QEMU or its helpers cannot be installed, or the
# guest kernel cannot be fetched.
vm_suite_init() {
  export VM_T0 VM_SKIP=""
  VM_T0=$(vm_now)
  vm_run_init
  if ! vm_require_tools 2>"$VM_RUN/tools.err"; then
    VM_SKIP="QEMU or its helpers cannot be installed: $(tr '\n' ' ' <"$VM_RUN/tools.err")"
  elif ! vm_kernel_dir >/dev/null 2>"$VM_RUN/kernel.err"; then
    VM_SKIP="the guest kernel cannot be fetched: $(tr '\n' ' ' <"$VM_RUN/kernel.err")"
  fi
}

# vm_suite_banner WHAT: a skip nobody can miss in the TAP stream.
vm_suite_banner() {
  local line='################################################################################'
  printf '# %s\n# %s SKIPPED: %s\n# %s\n' "$line" "$1" "$VM_SKIP" "$line" >&3
}

# vm_suite_initramfs OUT: the harness's initramfs with nshm-get and nshm-put.
# Without them (not built), VM_NOPROGS (exported) says why and the initramfs
# has none: what needs no program can still run.
vm_suite_initramfs() {
  local progs=()
  export VM_NOPROGS=""
  if ! mapfile -t progs < <(vm_programs 2>"$VM_RUN/progs.err") || ((${#progs[@]} != 2)); then
    VM_NOPROGS=$(cat "$VM_RUN/progs.err")
    progs=()
  fi
  vm_initramfs "$1" "${progs[@]}"
}

# vm_suite_end [VMDIR]: the end of teardown_file: the guest shut down, the
# file's time noted, the run's guests, objects and directory removed.
vm_suite_end() {
  [[ -n ${1:-} ]] && vm_shutdown "$1"
  [[ -n ${VM_T0:-} ]] && vm_note "$(basename "$BATS_TEST_FILENAME") total: $(vm_since "$VM_T0") s"
  vm_cleanup
}

# vm_server_start SHM SIZE [ARG...]: nshm-server for SHM (SIZE, and ARG...)
# in the background, its socket in /run/nshm (where the host programs look:
# fixed, no variable moves it), its log and pid in $VM_RUN/server.{log,pid};
# returns once it says it is serving (its socket and memory are then set up
# for QEMU, group and mode included). fd 3 is closed: bats would wait for it.
vm_server_start() {
  local shm=$1 size=$2 srv i
  shift 2
  srv=$(vm_build_dir)/nshm-server
  [[ -x $srv ]] || { echo "$srv is missing: run make" | tee "$VM_RUN/server.log" >&2; return 1; }
  mkdir -p /run/nshm
  printf '%s\n' "$shm" >>"$VM_RUN/shm.list"
  printf '%s\n' "$shm" >"$VM_RUN/server.shm"
  rm -f "/dev/shm/$shm"
  "$srv" --size "$size" "$@" "$shm" </dev/null >"$VM_RUN/server.log" 2>&1 3>&- &
  echo $! >"$VM_RUN/server.pid"
  for ((i = 0; i < 200; i++)); do
    grep -q '^serving ' "$VM_RUN/server.log" && return 0
    kill -0 "$(cat "$VM_RUN/server.pid")" 2>/dev/null || break
    sleep 0.05
  done
  echo "nshm-server is not serving: $(cat "$VM_RUN/server.log")" >&2
  return 1
}

# vm_server_alive: the server vm_server_start started is running (its pid is
# checked by its command line: not a recycled one).
vm_server_alive() {
  local pid
  pid=$(cat "$VM_RUN/server.pid" 2>/dev/null) || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$(cat "$VM_RUN/server.shm")"
}

# vm_server_stop: TERM, then KILL after 5 s. Started by another of bats'
# processes (setup_file, another case): not our child, so no `wait`. Its lock
# file stays by design (nshm-server(8)); this run's name is its own: removed.
vm_server_stop() {
  [[ -n ${VM_RUN:-} && -s $VM_RUN/server.pid ]] || return 0
  local pid i
  pid=$(cat "$VM_RUN/server.pid")
  if vm_server_alive; then
    # Each may find it gone already: no failure (bats would count one).
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "/run/nshm/$(cat "$VM_RUN/server.shm").sock.lock" "$VM_RUN/server.pid"
  return 0
}

# The ID nshm-server gave the client with pid PID (its latest), from its log.
vm_server_client_id() {
  sed -n "s/^client \([0-9]*\) joined (pid $1,.*/\1/p" "$VM_RUN/server.log" | tail -n 1
}

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
