#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make vm-demo: boot a guest with an ivshmem device, send a file from the host with nshm-put,
# receive it in the guest with nshm-get, print both checksums and the rate, shut the guest down.
#
# Usage: tests/vm/demo.sh [FILE]   (default: 64 MiB of random data)
# Environment: DEMO_MIB (size of the random file, default 64), DEMO_REGION (default 16M),
# and the NSHM_VM_* knobs described in tests/vm/lib.sh.
set -euo pipefail

# shellcheck source=tests/vm/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap vm_cleanup EXIT
trap 'exit 130' INT TERM

main() {
  local file=${1:-} t0
  t0=$(vm_now)
  echo "== booting a guest (first run: downloads Debian's kernel package into the cache)"
  vm_script_boot "${DEMO_REGION:-16M}" demo
  echo "   guest up; region /dev/shm/$SHM (${DEMO_REGION:-16M}), accel $(vm_accel)"

  if [[ -z $file ]]; then
    file=$VM_RUN/demo.bin
    head -c "$((${DEMO_MIB:-64} << 20))" /dev/urandom >"$file"
  fi
  local name size host_sum
  name=$(basename "$file")
  size=$(stat -L -c %s "$file")
  host_sum=$(sha256sum <"$file" | cut -d' ' -f1)

  echo "== guest: nshm-get -s pci /tmp/in/   (waits for the sender)"
  local id
  id=$(vm_start "$VM" "mkdir -p /tmp/in && nshm-get --json --timeout 60 -s pci /tmp/in/ && sha256sum '/tmp/in/$name'")
  vm_wait_started "$VM" "$id" 10

  echo "== host: nshm-put $file $SHM"
  local put_json put_rc=0
  put_json=$(timeout 300 "$(vm_build_dir)/nshm-put" --json --timeout 60 "$file" "$SHM" 3>&-) || put_rc=$?
  local out rc=0
  out=$(vm_wait "$VM" "$id" 300) || rc=$?
  if ((put_rc != 0 || rc != 0)); then
    echo "demo failed: host nshm-put exit $put_rc, guest nshm-get exit $rc" >&2
    return 1
  fi
  local get_json guest_sum
  get_json=$(grep '^{' <<<"$out" | head -n 1)
  guest_sum=$(grep -v '^{' <<<"$out" | awk '{ print $1; exit }')

  echo
  printf '  file           %s (%s bytes)\n' "$name" "$size"
  printf '  host  sha256   %s\n' "$host_sum"
  printf '  guest sha256   %s\n' "$guest_sum"
  printf '  host  nshm-put %s s, %s MB/s\n' "$(vm_json_field "$put_json" seconds)" "$(vm_json_field "$put_json" mbps)"
  printf '  guest nshm-get %s s, %s MB/s (crc32 %s)\n' "$(vm_json_field "$get_json" seconds)" \
    "$(vm_json_field "$get_json" mbps)" "$(vm_json_field "$get_json" crc32)"
  if [[ $(vm_accel) == tcg ]]; then
    echo "  (the guest runs under software emulation here: guest-side rates are emulation-bound)"
  fi
  echo
  if [[ $host_sum != "$guest_sum" ]]; then
    echo "CHECKSUMS DIFFER" >&2
    return 1
  fi
  echo "== checksums match; shutting the guest down"
  vm_shutdown "$VM"
  echo "   done in $(vm_since "$t0") s"
}

main "$@"
