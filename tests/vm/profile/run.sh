#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Profile nshm-get in a real (TCG) guest: the receiver's per-byte costs measured one by one
# (gbench) and the real transfer under several builds and layouts, all in one boot, interleaved.
#
# Usage: tests/vm/profile/run.sh [-n ROUNDS] [-m MIB] [-o OUTDIR] [-c CPU]
#   -n ROUNDS  rounds of every transfer variant, interleaved (default 3); medians are printed
#   -m MIB     bytes per transfer (default 64), through a 64 MiB region
#   -o OUTDIR  keep raw results there (default: a directory under $TMPDIR, printed)
#   -c CPU     QEMU -cpu model under TCG (default QEMU's own, qemu64; e.g. max)
#   -w         also measure nshm-get built from the work tree as it is (uncommitted changes
#              included), as variant "wt_default"
#   -p PARTS   which parts, comma-separated (default micro,big,small): micro = gbench cpu/bar
#              and guest cp; big = MIB transfers; small = 1 MiB transfers and start-up costs
# The programs are built from the committed HEAD (git archive) in a private directory, once
# with ISA-L and once with zlib (make WITH_ISAL=no), so that a dirty work tree or a concurrent
# `make` in build/ does not change what is measured.
set -euo pipefail

PROF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/vm/lib.sh
source "$PROF_DIR/../lib.sh"
trap vm_cleanup EXIT
trap 'exit 130' INT TERM

ROUNDS=3 MIB=64 OUT='' CPU='' WT=0 PARTS=micro,big,small
while getopts 'n:m:o:c:wp:h' opt; do
  case $opt in
    n) ROUNDS=$OPTARG ;;
    m) MIB=$OPTARG ;;
    o) OUT=$OPTARG ;;
    c) CPU=$OPTARG ;;
    w) WT=1 ;;
    p) PARTS=$OPTARG ;;
    h) sed -n '2,17s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
[[ -n $CPU ]] && export NSHM_VM_TCG_CPU=$CPU
export NSHM_VM_ACCEL=${NSHM_VM_ACCEL:-tcg}

vm_require_tools
vm_run_init
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/nshm-profile.XXXXXX")}
mkdir -p "$OUT"
RAW=$OUT/raw.tsv
: >"$RAW"
echo "raw results: $RAW" >&2

# --- builds --------------------------------------------------------------------------------
W=$VM_RUN/w
mkdir -p "$W/src" "$W/bin"
git -C "$VM_REPO_DIR" archive HEAD | tar -x -C "$W/src"
COMMIT=$(git -C "$VM_REPO_DIR" rev-parse --short HEAD)
make -s -C "$W/src" BUILD="$W/b-isal" "$W/b-isal/nshm-get" "$W/b-isal/nshm-put" >/dev/null
make -s -C "$W/src" BUILD="$W/b-zlib" WITH_ISAL=no "$W/b-zlib/nshm-get" >/dev/null
cp "$W/b-isal/nshm-get" "$W/bin/nshm-get-isal"
cp "$W/b-zlib/nshm-get" "$W/bin/nshm-get-zlib"
# shellcheck disable=SC2046  # pkg-config prints several flags
cc -O2 -Wall -o "$W/bin/gbench" "$PROF_DIR/gbench.c" $(pkg-config --libs zlib libisal)
PUT=$W/b-isal/nshm-put
GETS=("$W/bin/nshm-get-isal" "$W/bin/nshm-get-zlib" "$W/bin/gbench")
if ((WT)); then
  # The work tree's tracked files as they are now (a snapshot, so a concurrent edit cannot
  # change the build half-way).
  mkdir -p "$W/wt"
  (cd "$VM_REPO_DIR" && git ls-files -z | xargs -0 cp --parents -t "$W/wt" 2>/dev/null) || true
  if make -s -C "$W/wt" BUILD="$W/b-wt" "$W/b-wt/nshm-get" >/dev/null 2>"$W/wt.err"; then
    cp "$W/b-wt/nshm-get" "$W/bin/nshm-get-wt"
    GETS+=("$W/bin/nshm-get-wt")
    (cd "$VM_REPO_DIR" && git diff --stat -- lib cmd) >"$OUT/wt.diffstat"
  else
    echo "work tree build failed (see $W/wt.err); no wt variant" >&2
    WT=0
  fi
fi
"$W/bin/nshm-get-isal" --version | head -1 >&2
"$W/bin/nshm-get-zlib" --version | head -1 >&2
EXTRA=()
command -v strace >/dev/null && EXTRA+=("$(command -v strace)")
vm_initramfs "$VM_RUN/guest.cpio" "${GETS[@]}" "${EXTRA[@]}"

SHM=$(vm_shm_name prof)
vm_shm_create "$SHM" 64M
VM=$(vm_boot prof --shm "$SHM" 64M)
BDF=$(sed -n 's/.*ivshmem=\([^ \r]*\).*/\1/p' "$VM/console.log" | head -n 1)
BAR=/sys/bus/pci/devices/$BDF/resource2
echo "guest up: ivshmem $BDF, cpu ${NSHM_VM_TCG_CPU:-qemu64 (default)}" >&2

SRC=$VM_RUN/src.bin SRC1=$VM_RUN/src1.bin
head -c "$((MIB << 20))" /dev/urandom >"$SRC"
head -c "$((1 << 20))" /dev/urandom >"$SRC1"
vm_exec "$VM" 300 "head -c $((MIB << 20)) /dev/urandom >/tmp/src.bin; head -c 1048576 /tmp/src.bin >/tmp/src1.bin" >/dev/null

rec() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RAW"; }   # round name value unit

# Guest command; its output lines "name value unit" are recorded under round R with PREFIX.
guest_figures() {
  local r=$1 prefix=$2 tmo=$3 cmd=$4 line name value unit
  while IFS= read -r line; do
    read -r name value unit _ <<<"$line"
    if [[ -n ${value:-} && $value =~ ^[0-9.]+$ ]]; then
      rec "$r" "$prefix$name" "$value" "$unit"
    elif [[ -n $line ]]; then
      printf '%s%s\n' "${prefix:+$prefix }" "$line" >>"$OUT/info.txt"
    fi
  done < <(vm_exec "$VM" "$tmo" "$cmd" 2>&1)
}

# One transfer: host nshm-put PUTOPTS -> guest nshm-get-BUILD, timed three ways.
xfer() {
  local r=$1 label=$2 build=$3 putopts=$4 genv=${5:-} src=${6:-$SRC} id out t0 t1 rc=0 prc=0 js wall
  vm_exec "$VM" 30 "rm -rf /tmp/d && mkdir /tmp/d" >/dev/null
  t0=$(date +%s%N)
  # shellcheck disable=SC2086
  timeout -k 2 120 "$PUT" -q $putopts "$src" "$SHM" 3>&- &
  local hp=$!
  id=$(vm_start "$VM" "$genv gbench time nshm-get-$build --json -q -f -s pci /tmp/d/f 2>&1")
  local i=0
  until grep -aq "@@NSHM-END $id rc=" "$VM/console.log"; do
    if ((++i >= 12000)) || ! vm_alive "$VM"; then break; fi
    sleep 0.01
  done
  t1=$(date +%s%N)
  wait "$hp" || prc=$?
  out=$(vm_wait "$VM" "$id" 10 2>&1) || rc=$?
  if ((rc != 0 || prc != 0)); then
    echo "xfer $label round $r failed (get $rc, put $prc): $out" >&2
    return 0
  fi
  js=$(vm_json_field "$out" seconds)
  wall=$(sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p' <<<"$out")
  rec "$r" "xfer.$label.json_s" "$js" s
  rec "$r" "xfer.$label.guest_wall_s" "$wall" s
  rec "$r" "xfer.$label.host_s" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')" s
}

# Transfer variants: label build put-options [guest environment]
VARIANTS=(
  "isal_default|isal|"
  "zlib_default|zlib|"
  "isal_4Mx2|isal|--chunk 4M --slots 2"
  "isal_1Mx8|isal|--chunk 1M --slots 8"
  "zlib_1Mx8|zlib|--chunk 1M --slots 8"
  "isal_16Mx2|isal|--chunk 16M --slots 2"
  "zlib_16Mx2|zlib|--chunk 16M --slots 2"
  "isal_256Kx16|isal|--chunk 256K --slots 16"
  "isal_readback|isal||NSHM_VERIFY=readback"
  "zlib_readback|zlib||NSHM_VERIFY=readback"
)
((WT)) && VARIANTS+=("wt_default|wt|")
# 1 MiB files: the fixed costs (start-up, handshake, exit) dominate.
SMALL=("isal|isal" "zlib|zlib")
((WT)) && SMALL+=("wt|wt")

guest_figures 0 "" 60 "gbench wait 200"
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r/$ROUNDS" >&2
  if [[ ,$PARTS, == *,micro,* ]]; then
    guest_figures "$r" "" 300 "gbench cpu 16 5"
    guest_figures "$r" "uc." 600 "gbench bar $BAR $MIB 3"
    guest_figures "$r" "wc." 300 "gbench bar ${BAR}_wc $MIB 3 copy_bar"
    guest_figures "$r" "" 60 "gbench time cp /tmp/src.bin /tmp/cp.out 2>&1 | sed 's/wall_s=/cp_tmpfs_s /'; rm -f /tmp/cp.out"
  fi
  if [[ ,$PARTS, == *,small,* ]]; then
    guest_figures "$r" "" 60 "gbench time cp /tmp/src1.bin /tmp/cp.out 2>&1 | sed 's/wall_s=/small1MiB.cp_tmpfs_s /'; rm -f /tmp/cp.out"
    guest_figures "$r" "" 60 "gbench time busybox true 2>&1 | sed 's/wall_s=/startup_busybox_true_s /'"
    guest_figures "$r" "" 60 "gbench time gbench 2>&1 | sed -n 's/wall_s=/startup_gbench_3libs_s /p'"
    guest_figures "$r" "" 60 "gbench time nshm-get-isal --version 2>&1 >/dev/null | sed 's/wall_s=/startup_nshm_get_isal_s /'"
  fi
  # Rotate the order each round so that drift does not favour one variant.
  n=${#VARIANTS[@]}
  for ((i = 0; i < n; i++)); do
    [[ ,$PARTS, == *,big,* ]] || break
    IFS='|' read -r label build putopts genv <<<"${VARIANTS[(i + r) % n]}"
    xfer "$r" "$label" "$build" "$putopts" "$genv"
  done
  n=${#SMALL[@]}
  for ((i = 0; i < n; i++)); do
    [[ ,$PARTS, == *,small,* ]] || break
    IFS='|' read -r label build <<<"${SMALL[(i + r) % n]}"
    xfer "$r" "small1MiB.$label" "$build" "" "" "$SRC1"
  done
done

if [[ ,$PARTS, == *,small,* ]]; then
  # Where ld.so's time goes, and the last syscalls of a 1 MiB transfer (timed by strace).
  vm_exec "$VM" 60 "LD_DEBUG=statistics nshm-get-isal --version 2>&1 >/dev/null" >"$OUT/ld-statistics.txt" 2>&1 || true
  for build in isal ${WT:+$( ((WT)) && echo wt)}; do
    [[ -n ${EXTRA[*]} ]] || break
    vm_exec "$VM" 30 "rm -rf /tmp/d && mkdir /tmp/d" >/dev/null
    timeout -k 2 120 "$PUT" -q "$SRC1" "$SHM" 3>&- &
    hp=$!
    vm_exec "$VM" 120 "strace -f -tt -T -o /tmp/st.txt nshm-get-$build -q -f -s pci /tmp/d/f; tail -n 40 /tmp/st.txt" >"$OUT/strace-tail-small-$build.txt" 2>&1 || true
    wait "$hp" || true
  done
fi

# strace -c of one transfer per build (slows it down: counts only, no times compared); the
# same steps as the small part above, with counts instead of a trace.
if [[ -n ${EXTRA[*]} && ,$PARTS, == *,big,* ]]; then
  for build in isal zlib; do
    vm_exec "$VM" 30 "rm -rf /tmp/d && mkdir /tmp/d" >/dev/null
    timeout -k 2 120 "$PUT" -q "$SRC" "$SHM" 3>&- &
    hp=$!
    vm_exec "$VM" 300 "strace -f -c -o /tmp/st.txt nshm-get-$build -q -f -s pci /tmp/d/f; cat /tmp/st.txt" >"$OUT/strace-$build.txt" 2>&1 || true
    wait "$hp" || true
  done
fi
vm_shutdown "$VM"

# --- summary -------------------------------------------------------------------------------
{
  echo "nshm profile: commit $COMMIT, $MIB MiB, region 64M, accel tcg, cpu ${NSHM_VM_TCG_CPU:-qemu64}, $ROUNDS rounds, $(date -u +%FT%TZ)"
  sort -u "$OUT/info.txt" 2>/dev/null
  awk -F'\t' -v bytes=$((MIB << 20)) '
    { k = $2; v[k] = v[k] " " $3; u[k] = $4; if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
    END {
      for (i = 1; i <= n; i++) {
        k = order[i]; m = split(substr(v[k], 2), a, " ")
        for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++) if (a[y] + 0 < a[x] + 0) { t = a[x]; a[x] = a[y]; a[y] = t }
        med = a[int((m + 1) / 2)]
        extra = (u[k] == "s" && k ~ /^xfer|cp_tmpfs/ && k !~ /small1MiB/) ? sprintf("  = %.1f MB/s", bytes / med / 1e6) : ""
        printf "%-34s %10s %-5s (runs:%s)%s\n", k, med, u[k], v[k], extra
      }
    }' "$RAW"
} | tee "$OUT/summary.txt"
