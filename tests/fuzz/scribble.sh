#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Real transfers between build/nshm-put and build/nshm-get through a /dev/shm
# object while build/fuzz/scribble writes random bytes into random places
# of the region at random times. Round after round, for SECONDS (default
# $NSHM_SCRIBBLE_SECONDS or 30):
#
#   tests/fuzz/scribble.sh [SECONDS]
#
# Each round picks a source (a file, or a slow pipe on standard input), a
# layout, who starts first, and what and when to scribble. It must end with
# both programs exiting by themselves with a status below 128 (a signal, or
# the hard `timeout` of NSHM_SCRIBBLE_HARD seconds, is a failure), a
# message on stderr for every non-zero status, and:
#   - receiver exit 0: the file under its final name equals the source (a
#     scribble on the offer may have changed that name: then the one file
#     in DEST is compared);
#   - receiver exit non-zero: no file under the final name, no temporary;
#   - sender exit 0: the receiver succeeded too.
# A failing round is kept in build/fuzz/scribble-failures/round-N/ (its
# parameters, the scribbles and both programs' output). The last line says
# how many rounds survived; exit 1 if any failed. NSHM_SCRIBBLE_SEED makes
# the choices (not the timing) repeatable.
set -uo pipefail
cd "$(dirname "$0")/../.."

secs=${1:-${NSHM_SCRIBBLE_SECONDS:-30}}
BIN=${NSHM_BIN:-$PWD/build}
PUT=$BIN/nshm-put
GET=$BIN/nshm-get
SCRIBBLE=$PWD/build/fuzz/scribble
HARD=${NSHM_SCRIBBLE_HARD:-30}
FAILDIR=$PWD/build/fuzz/scribble-failures

for p in "$PUT" "$GET"; do
	[ -x "$p" ] || { echo "scribble.sh: $p missing: run make" >&2; exit 2; }
done
if [ ! -x "$SCRIBBLE" ] || [ tests/fuzz/scribble.c -nt "$SCRIBBLE" ]; then
	bash tests/fuzz/build.sh helpers || exit 2
fi

mkdir -p build/fuzz
W=$(mktemp -d "$PWD/build/fuzz/scribble-work.XXXXXX")
REGION=/dev/shm/nshm-scribble-$$
pids=()
# Only in this shell, never in a child: bash runs the EXIT trap in a child
# forked for `cmd &` that is killed before it execs cmd (its signal handlers
# are still this shell's). Under load a round can end before the
# scribbler's child has exec'd; `kill "$spid"` then ran cleanup in that
# child, which removed $W and with it every source file: the later piped
# rounds sent an empty stdin (issue 19). BASHPID is the child's own pid.
cleanup() {
	local p
	[ "$BASHPID" = "$$" ] || return 0
	for p in "${pids[@]:-}"; do
		[ -n "$p" ] && kill -9 "$p" 2>/dev/null
	done
	rm -rf "$W"
	rm -f "$REGION"
}
trap cleanup EXIT

seed=${NSHM_SCRIBBLE_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$seed
echo "scribble: ${secs} s of rounds, seed $seed"

sizes=(0 1 4095 65536 65537 300000 1500000 3000000)
for s in "${sizes[@]}"; do
	head -c "$s" /dev/urandom >"$W/src-$s"
done
chunks=(16K 64K 256K)
targets=(mixed mixed data header fields)

rounds=0 failed=0 verified=0 errors=0 renamed=0
declare -A statuses=()

# fail ROUND-DIR WHY: keep the round and count it.
fail() {
	local d=$1 why=$2 keep
	failed=$((failed + 1))
	keep=$FAILDIR/round-$rounds
	rm -rf "$keep"
	mkdir -p "$FAILDIR"
	cp -r "$d" "$keep"
	cp "$src" "$keep/src"
	echo "$why" >"$keep/WHY"
	[ -f "$final" ] && cmp -l "$src" "$final" 2>&1 | head -20 >"$keep/cmp"
	echo "scribble: round $rounds FAILED: $why (kept in $keep)"
	sed 's/^/    /' "$keep/params" "$keep/get.err" "$keep/put.err" 2>/dev/null | head -20
}

end=$((SECONDS + secs))
while [ "$SECONDS" -lt "$end" ]; do
	rounds=$((rounds + 1))
	d=$W/round
	rm -rf "$d"
	mkdir -p "$d/dst"
	rm -f "$REGION"
	truncate -s 2M "$REGION"

	size=${sizes[RANDOM % ${#sizes[@]}]}
	src=$W/src-$size
	slots=$((1 + RANDOM % 4))
	chunk=${chunks[RANDOM % ${#chunks[@]}]}
	piped=$((RANDOM % 3 == 0))
	get_first=$((RANDOM % 2))
	sseed=$((RANDOM * 32768 + RANDOM))
	count=$((1 + RANDOM % 12))
	gap=$((RANDOM % 1500))
	start=$((RANDOM % 8000))
	target=${targets[RANDOM % ${#targets[@]}]}
	name=$([ "$piped" = 1 ] && echo stdin || basename "$src")
	cat >"$d/params" <<-EOF
		size $size slots $slots chunk $chunk piped $piped get_first $get_first
		scribble random REGION --seed $sseed --count $count --start-us $start --max-gap-us $gap --target $target
	EOF

	common=(-q --timeout 3 --peer-timeout 1)
	start_get() {
		( exec timeout -s KILL "$HARD" "$GET" "${common[@]}" -s "$REGION" "$d/dst" \
			>"$d/get.out" 2>"$d/get.err" ) &
		gpid=$!
	}
	start_put() {
		if [ "$piped" = 1 ]; then
			( set +o pipefail
			  "$SCRIBBLE" cat "$src" --piece 32768 --gap-us 300 |
			  exec timeout -s KILL "$HARD" "$PUT" "${common[@]}" --slots "$slots" \
				--chunk "$chunk" - "$REGION" >"$d/put.out" 2>"$d/put.err" ) &
		else
			( exec timeout -s KILL "$HARD" "$PUT" "${common[@]}" --slots "$slots" \
				--chunk "$chunk" "$src" "$REGION" >"$d/put.out" 2>"$d/put.err" ) &
		fi
		ppid=$!
	}
	if [ "$get_first" = 1 ]; then start_get; start_put; else start_put; start_get; fi
	"$SCRIBBLE" random "$REGION" --seed "$sseed" --count "$count" --start-us "$start" \
		--max-gap-us "$gap" --target "$target" >"$d/scribbles" 2>&1 &
	spid=$!
	pids=("$gpid" "$ppid" "$spid")
	grc=0; wait "$gpid" || grc=$?
	prc=0; wait "$ppid" || prc=$?
	kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
	pids=()
	echo "get $grc put $prc" >>"$d/params"
	statuses["get $grc, put $prc"]=$((${statuses["get $grc, put $prc"]:-0} + 1))

	final=$d/dst/$name
	# A scribble on the offer may rename the file (still one safe name in
	# DEST): then it is that file that must equal the source.
	if [ "$grc" -eq 0 ] && [ ! -e "$final" ]; then
		got=$(find "$d/dst" -mindepth 1 -maxdepth 1 ! -name '.nshm-*')
		if [ "$(printf '%s\n' "$got" | grep -c .)" = 1 ] && [ -f "$got" ]; then
			final=$got
			renamed=$((renamed + 1))
		fi
	fi
	if [ "$grc" -ge 124 ] || [ "$prc" -ge 124 ]; then
		fail "$d" "a program was killed by a signal or hung (get $grc, put $prc)"
	elif [ "$grc" -ne 0 ] && [ ! -s "$d/get.err" ]; then
		fail "$d" "nshm-get exited $grc without a message"
	elif [ "$prc" -ne 0 ] && [ ! -s "$d/put.err" ]; then
		fail "$d" "nshm-put exited $prc without a message"
	elif [ "$grc" -eq 0 ] && [ ! -f "$final" ]; then
		fail "$d" "nshm-get reported success but left no single file in DEST"
	elif [ "$grc" -eq 0 ] && ! cmp -s "$src" "$final"; then
		fail "$d" "nshm-get reported success but $(basename "$final") differs from the source"
	elif [ "$grc" -ne 0 ] && [ -n "$(find "$d/dst" -mindepth 1 ! -name '.nshm-*' -print -quit)" ]; then
		fail "$d" "nshm-get failed ($grc) but left a file under a final name"
	elif [ -n "$(find "$d/dst" -name '.nshm-*' -print -quit)" ]; then
		fail "$d" "a temporary file was left behind"
	elif [ "$prc" -eq 0 ] && [ "$grc" -ne 0 ]; then
		fail "$d" "nshm-put reported success but nshm-get failed ($grc)"
	elif [ "$grc" -eq 0 ]; then
		verified=$((verified + 1))
	else
		errors=$((errors + 1))
	fi
done

echo "scribble: outcomes (exit statuses):"
for k in "${!statuses[@]}"; do
	printf '    %-20s %d\n' "$k" "${statuses[$k]}"
done | sort
survived=$((rounds - failed))
echo "scribble: $survived of $rounds rounds survived ($verified verified transfers ($renamed renamed by a scribble on the offer), $errors clean errors, $failed failed)"
[ "$failed" -eq 0 ]
