#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Time nshm-get (receiver in the guest) and nshm-put (sender in the guest) with each way of
# mapping BAR2: --map uc (sysfs resource2) and --map wc (resource2_wc), all in one boot, and
# print the figures. The programs' own --json timings are used (transfer only, no start-up).
#
# Usage: tests/vm/measure-map.sh [-m MIB] [-r REGION] [-n RUNS]
#   -m MIB     bytes per transfer, in MiB (default 64)
#   -r REGION  size of the ivshmem region (default 16M)
#   -n RUNS    runs per combination, alternating uc and wc (default 3); the median is shown
# Under software emulation (TCG) caching is not modelled, so uc and wc should look alike here;
# the figures mean something on a KVM host.
set -euo pipefail

# shellcheck source=tests/vm/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap vm_cleanup EXIT
trap 'exit 130' INT TERM

MIB=64 REGION=16M RUNS=3

usage() { sed -n '2,12s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }

# guest_receives MAP: host nshm-put -> guest nshm-get --map MAP; prints the guest's seconds.
guest_receives() {
  local map=$1 id out put_rc=0 rc=0
  id=$(vm_start "$VM" "rm -rf /tmp/m && mkdir /tmp/m && nshm-get --json -q --timeout 60 --map $map -s pci /tmp/m/; rc=\$?; rm -rf /tmp/m; exit \$rc")
  vm_wait_started "$VM" "$id" 10
  sleep 0.5
  timeout 300 "$NSHM_PUT" -q --timeout 60 "$SRC" "$SHM" 3>&- >/dev/null || put_rc=$?
  out=$(vm_wait "$VM" "$id" 300) || rc=$?
  ((put_rc == 0 && rc == 0)) || { vm_die "receive --map $map failed (put $put_rc, get $rc)"; return 1; }
  vm_json_field "$out" seconds
}

# guest_sends MAP: guest nshm-put --map MAP -> host nshm-get; prints the guest's seconds.
guest_sends() {
  local map=$1 id out get_rc=0 rc=0
  id=$(vm_start "$VM" "nshm-put --json -q --timeout 60 --map $map /tmp/src.bin pci")
  vm_wait_started "$VM" "$id" 10
  sleep 0.5
  rm -rf "$DEST" && mkdir "$DEST"
  timeout 300 "$NSHM_GET" -q --timeout 60 --source "$SHM" "$DEST/" 3>&- >/dev/null || get_rc=$?
  out=$(vm_wait "$VM" "$id" 300) || rc=$?
  rm -rf "$DEST"
  ((get_rc == 0 && rc == 0)) || { vm_die "send --map $map failed (get $get_rc, put $rc)"; return 1; }
  vm_json_field "$out" seconds
}

main() {
  while getopts 'm:r:n:h' opt; do
    case $opt in
      m) MIB=$OPTARG ;;
      r) REGION=$OPTARG ;;
      n) RUNS=$OPTARG ;;
      h) usage 0 ;;
      *) usage 2 ;;
    esac
  done
  vm_script_boot "$REGION" map
  NSHM_GET=$(vm_build_dir)/nshm-get
  NSHM_PUT=$(vm_build_dir)/nshm-put
  SRC=$VM_RUN/src.bin
  DEST=$VM_RUN/dest
  head -c "$((MIB << 20))" /dev/urandom >"$SRC"
  vm_exec "$VM" 120 "head -c $((MIB << 20)) /dev/urandom >/tmp/src.bin" >/dev/null

  local -A t=()
  local run map dir
  for ((run = 1; run <= RUNS; run++)); do
    # Alternate the order so that a slow start or drift does not favour one mapping.
    local maps=(uc wc)
    ((run % 2 == 0)) && maps=(wc uc)
    for map in "${maps[@]}"; do
      t[recv.$map]+=" $(guest_receives "$map")"
      t[send.$map]+=" $(guest_sends "$map")"
    done
  done

  local bytes=$((MIB << 20)) m
  echo
  echo "BAR2 mapping, $MIB MiB per transfer, region $REGION, accel $(vm_accel), $RUNS runs (seconds from --json)"
  printf '%-34s %-4s %-26s %9s %9s\n' "guest side" map "runs (s)" "median s" "MB/s"
  for dir in recv send; do
    for map in uc wc; do
      # shellcheck disable=SC2086  # the runs are a space-separated list
      m=$(median ${t[$dir.$map]})
      printf '%-34s %-4s %-26s %9s %9.1f\n' \
        "$([[ $dir == recv ]] && echo 'nshm-get (host nshm-put sends)' || echo 'nshm-put (host nshm-get receives)')" \
        "$map" "${t[$dir.$map]# }" "$m" "$(awk -v b="$bytes" -v s="$m" 'BEGIN { print (s > 0) ? b / s / 1e6 : 0 }')"
    done
  done
  if [[ $(vm_accel) == tcg ]]; then
    echo "(software emulation: caching is not modelled, so uc vs wc is only meaningful under KVM)"
  fi
  vm_shutdown "$VM"
}

main "$@"
