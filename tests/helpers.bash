# SPDX-License-Identifier: BSD-2-Clause
# Shared by the CLI bats suites: a fresh region per test, background
# processes tracked by pid and always reaped.
BIN=${NSHM_BIN:-$BATS_TEST_DIRNAME/../build}
PUT=$BIN/nshm-put
GET=$BIN/nshm-get
STAT=$BIN/nshm-stat

setup_region() {
	REGION=nshm-bats-$$-${BATS_TEST_NUMBER}
	truncate -s "${1:-4M}" /dev/shm/$REGION
	T=$BATS_TEST_TMPDIR
	PIDS=()
}

teardown_region() {
	local p
	for p in "${PIDS[@]:-}"; do
		[ -n "$p" ] || continue
		pkill -9 -P "$p" 2>/dev/null || true
		kill -9 "$p" 2>/dev/null || true
	done
	pkill -9 -f "$REGION" 2>/dev/null || true
	rm -f /dev/shm/$REGION
}

# bg NAME CMD...: run CMD in the background, stdout/stderr/status in
# $T/NAME.*; killed after BG_LIMIT seconds so that no test can hang.
bg() {
	local name=$1; shift
	# A status file left by an earlier job of the same name would be read
	# as this one's (seen as a random failure): start from a clean slate.
	rm -f "$T/$name.rc" "$T/$name.rc.tmp" "$T/$name.out" "$T/$name.err"
	( set +e; timeout -s KILL "${BG_LIMIT:-90}" "$@" >"$T/$name.out" 2>"$T/$name.err"
	  # Written whole, then renamed: a reader never sees it half written.
	  echo $? >"$T/$name.rc.tmp" && mv "$T/$name.rc.tmp" "$T/$name.rc" ) &
	PIDS+=($!)
	eval "${name}_PID=$!"
}

# wait_rc NAME [SECONDS]: wait for a bg job, then echo its exit status.
wait_rc() {
	local name=$1 secs=${2:-60} i
	for ((i = 0; i < secs * 20; i++)); do
		[ -s "$T/$name.rc" ] && { cat "$T/$name.rc"; return 0; }
		sleep 0.05
	done
	echo "timeout waiting for $name" >&2
	return 1
}

# until_true SECONDS CMD...: poll CMD.
until_true() {
	local secs=$1 i; shift
	for ((i = 0; i < secs * 20; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

# pid of the real program inside a bg job (the subshell's child).
child_of() {
	pgrep -P "$1" -f "$2" | head -1
}
