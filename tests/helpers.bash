# SPDX-License-Identifier: BSD-2-Clause
# Shared by the CLI bats suites: a fresh region per test, background
# processes tracked by pid and always reaped.
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
BIN=${NSHM_BIN:-$BATS_TEST_DIRNAME/../build}
PUT=$BIN/nshm-put
GET=$BIN/nshm-get
STAT=$BIN/nshm-stat

# setup_region [SIZE]: REGION (its name) and R (its path), T (the test's
# directory), PIDS (bg's jobs, reaped by teardown_region).
setup_region() {
	REGION=nshm-bats-$$-${BATS_TEST_NUMBER}
	R=/dev/shm/$REGION
	region_create "$REGION" "${1:-4M}"
	T=$BATS_TEST_TMPDIR
	PIDS=()
}

# teardown_region: every job in PIDS and its children killed (a stopped one
# continued first: faults.bats and peers.bats stop programs mid-transfer),
# every process naming the region, and the region.
teardown_region() {
	local p
	for p in "${PIDS[@]:-}"; do
		[ -n "$p" ] || continue
		kill -CONT "$p" 2>/dev/null || true
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

# prog_of PID: the program a bg job (subshell PID) runs under timeout(1),
# once it exists: right after bg the subshell may not have forked timeout,
# nor timeout its program, yet (an empty pid made a test miss its moment).
prog_of() {
	local i t p
	for i in $(seq 200); do
		t=$(pgrep -P "$1" -x timeout) && p=$(pgrep -P "$t") && [ -n "$p" ] &&
			{ echo "$p"; return 0; }
		sleep 0.05
	done
	echo "prog_of: no program under job $1 after 10 s" >&2
	return 1
}

# pid of the real program inside a bg job (the subshell's child).
child_of() {
	pgrep -P "$1" -f "$2" | head -1
}

# ---- waiting for a moment itself, never for an amount of time ----

SCRIBBLE=${SCRIBBLE:-$BATS_TEST_DIRNAME/../build/fuzz/scribble}

# scribbler_build: $SCRIBBLE, built (one cc run) when it is missing or
# older than its source; a suite that uses it calls this in setup_file.
scribbler_build() {
	local src
	src=$(dirname "${BASH_SOURCE[0]}")/fuzz/scribble.c
	if [ ! -x "$SCRIBBLE" ] || [ "$src" -nt "$SCRIBBLE" ]; then
		bash "$(dirname "${BASH_SOURCE[0]}")/fuzz/build.sh" helpers >&2 || return 1
	fi
}

# region_wait COND [--timeout-ms N] [--signal SIG --pid PID]: until the
# region ($REGION) shows COND, as tests/fuzz/scribble.c's `wait` reads it:
# tx-state=N, rx-state=N, produced>=N, consumed>=N, tx-claimed,
# rx-claimed (the claim whole: token and liveness record), tx-owned,
# rx-owned (a token in the line, whoever wrote it), full. Builds
# the scribbler if needed.
region_wait() {
	scribbler_build || return 1
	"$SCRIBBLE" wait "/dev/shm/$REGION" "$@"
}

# The system calls the tests look for, by number (/proc/PID/syscall).
declare -gA SYSCALL_NR=()
case $(uname -m) in
x86_64) SYSCALL_NR=([read]=0 [write]=1 [poll]=7 [nanosleep]=35 [clock_nanosleep]=230 [ppoll]=271) ;;
aarch64) SYSCALL_NR=([read]=63 [write]=64 [ppoll]=73 [nanosleep]=101 [clock_nanosleep]=115) ;;
esac

# blocked_in PID WHAT...: PID's main thread sleeps in one of WHAT right
# now: sleep (nanosleep: the library's waits on a region without
# doorbells), poll, read:FD, write:FD.
blocked_in() {
	local pid=$1 nr a0 rest state w; shift
	read -r nr a0 rest <"/proc/$pid/syscall" 2>/dev/null || return 1
	state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)
	[ "$state" = S ] || return 1
	for w in "$@"; do
		case $w in
		sleep) [ "$nr" = "${SYSCALL_NR[nanosleep]:-x}" ] ||
			[ "$nr" = "${SYSCALL_NR[clock_nanosleep]:-x}" ] && return 0 ;;
		poll) [ "$nr" = "${SYSCALL_NR[poll]:-x}" ] || [ "$nr" = "${SYSCALL_NR[ppoll]:-x}" ] &&
			return 0 ;;
		read:* | write:*)
			[ "$nr" = "${SYSCALL_NR[${w%%:*}]:-x}" ] && [ $((a0)) = "${w#*:}" ] && return 0 ;;
		esac
	done
	return 1
}

# wait_blocked PID WHAT...: until blocked_in PID WHAT (up to 20 s). A
# process blocked in its wait has reached that wait, however loaded the
# machine. Only for x86-64 and arm64 (system call numbers).
wait_blocked() {
	local i
	[ ${#SYSCALL_NR[@]} -gt 0 ] || { echo "wait_blocked: no syscall numbers for $(uname -m)" >&2; return 1; }
	for ((i = 0; i < 2000; i++)); do
		blocked_in "$@" && return 0
		kill -0 "$1" 2>/dev/null || break
		sleep 0.01
	done
	echo "wait_blocked: pid $1 never blocked in $*: $(cat "/proc/$1/syscall" 2>&1)" >&2
	return 1
}

# wait_stopped PID: until the kernel shows PID stopped. kill -STOP returns
# before the target stops (it stops when it next runs in the kernel).
wait_stopped() {
	local i
	for ((i = 0; i < 2000; i++)); do
		[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = T ] && return 0
		sleep 0.01
	done
	echo "wait_stopped: pid $1 did not stop" >&2
	return 1
}
