# SPDX-License-Identifier: BSD-2-Clause
# bench/fanout.sh -- sourced by bench/run: one file into 1, 2 and 4 regions
# at once (issue 23: nshm-put -T ... -T ..., the source read once), beside
# the ways there are without it. Every copy has its own receiver, started
# per transfer as in the nshm row, and every copy is verified.
#
#   nshm-fanout    nshm-put -T r1 ... -T rN FILE (one process, one read)
#   nshm-parallel  N nshm-put FILE rI at once (each reads the source)
#   cp-parallel    N cp FILE dI at once (the machine's ceiling for N copies
#                  written to tmpfs)
#
# Recorded under the setting "fanout": a table of its own, a column per
# region count. NSHM_BENCH_FANOUT_SIZE sets the file (default 1G; 1M with
# --smoke), NSHM_BENCH_FANOUT_REGIONS the counts (default 1,2,4).

FANOUT_METHODS=(nshm-fanout nshm-parallel cp-parallel)
FANOUT_N=0

fanout_regions() { # the objects of regions 1..4, fresh
	local i
	for ((i = 1; i <= 4; i++)); do
		rm -f "/dev/shm/$NSHM_OBJ-f$i"
		truncate -s "$NSHM_OBJECT_SIZE" "/dev/shm/$NSHM_OBJ-f$i"
	done
}

# Receivers 1..N into DST.1/ ... DST.N/, their pids in FANOUT_GETS; the
# copies listed in DST.copies for measure to verify (DST itself is copy 1).
fanout_receivers() {
	local src=$1 dst=$2 i
	FANOUT_GETS=()
	: >"$dst.copies"
	for ((i = 1; i <= FANOUT_N; i++)); do
		mkdir -p "$dst.$i"
		timeout -k 2 "$TMO" "$NSHM_GET" -q -f --source "$NSHM_OBJ-f$i" "$dst.$i" &
		FANOUT_GETS+=($!)
		echo "$dst.$i/$(basename "$src")" >>"$dst.copies"
	done
}

# Wait for the receivers (stopped soon when the sender failed); copy 1 is
# renamed to DST.
fanout_reap() {
	local prc=$1 dst=$2 src=$3 p grc=0
	if ((prc != 0)); then
		for p in "${FANOUT_GETS[@]}"; do stop_after "$p" 1; done
	fi
	for p in "${FANOUT_GETS[@]}"; do wait "$p" || grc=$?; done
	((prc == 0 && grc == 0)) || { echo "nshm-put exit $prc, an nshm-get exit $grc"; return 1; }
	mv "$dst.1/$(basename "$src")" "$dst"
	sed -i 1d "$dst.copies"
}

xfer_nshm-fanout() {
	local kind=$1 src=$2 dst=$3 i prc=0 targets=()
	[[ $kind == file ]] || return 1
	for ((i = 1; i <= FANOUT_N; i++)); do targets+=(-T "$NSHM_OBJ-f$i"); done
	fanout_receivers "$src" "$dst"
	timeout -k 2 "$TMO" "$NSHM_PUT" -q "${targets[@]}" "$src" || prc=$?
	fanout_reap "$prc" "$dst" "$src"
}

xfer_nshm-parallel() {
	local kind=$1 src=$2 dst=$3 i prc=0 puts=() p
	[[ $kind == file ]] || return 1
	fanout_receivers "$src" "$dst"
	for ((i = 1; i <= FANOUT_N; i++)); do
		timeout -k 2 "$TMO" "$NSHM_PUT" -q "$src" "$NSHM_OBJ-f$i" &
		puts+=($!)
	done
	for p in "${puts[@]}"; do wait "$p" || prc=$?; done
	fanout_reap "$prc" "$dst" "$src"
}

xfer_cp-parallel() {
	local kind=$1 src=$2 dst=$3 i rc=0 cps=() p
	[[ $kind == file ]] || return 1
	: >"$dst.copies"
	timeout -k 2 "$TMO" cp "$src" "$dst" &
	cps+=($!)
	for ((i = 2; i <= FANOUT_N; i++)); do
		timeout -k 2 "$TMO" cp "$src" "$dst.$i" &
		cps+=($!)
		echo "$dst.$i" >>"$dst.copies"
	done
	for p in "${cps[@]}"; do wait "$p" || rc=$?; done
	return "$rc"
}

setting_fanout() {
	local size bytes src n case expected m run first=0 counts
	SETTING_NOW=fanout
	size=${NSHM_BENCH_FANOUT_SIZE:-1G}
	((SMOKE)) && size=1M first=1
	bytes=$(to_bytes "$size")
	IFS=, read -r -a counts <<<"${NSHM_BENCH_FANOUT_REGIONS:-1,2,4}"
	src=$WORK/src/fanout.bin
	mkdir -p "$WORK/src"
	"$BIN/mkdata" "$bytes" 13 >"$src"
	expected=$(sum_file "$src")
	fanout_regions
	TMO=$(timeout_for $((bytes * 4)))
	for n in "${counts[@]}"; do
		case="$(human "$bytes") → $n"
		log "fanout: $case regions x $RUNS runs"
		FANOUT_N=$n
		for ((run = first; run <= RUNS; run++)); do
			for m in "${FANOUT_METHODS[@]}"; do
				measure "$m" "$case" file "$src" "$bytes" 1 "$run" "$expected"
			done
		done
	done
	rm -f "$src" /dev/shm/"$NSHM_OBJ"-f[1-4]
}

fanout_how() { # setting TAB method TAB how
	local obj
	obj=$(human "$(to_bytes "$NSHM_OBJECT_SIZE")")
	printf 'fanout\tnshm-fanout\tnshm-put -T r1 … -T rN FILE: the source read once, one thread per region (%s objects), a receiver each\n' "$obj"
	printf 'fanout\tnshm-parallel\tN nshm-put FILE rI at once, each reading the source, a receiver each\n'
	printf 'fanout\tcp-parallel\tN cp tmpfs → tmpfs at once (ceiling for N copies on this machine)\n'
}
