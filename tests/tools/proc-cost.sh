#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# proc-cost.sh PID: "CPU-NS CONTEXT-SWITCHES" of a process so far: the
# time all its threads spent on a CPU (nanoseconds, first field of each
# /proc/PID/task/*/schedstat: finer than the clock ticks of /proc/PID/stat;
# summed with %.0f, as mawk's %d stops at 2^31 ns, 2.1 s) and the voluntary
# and involuntary switches of every thread (each one a wake-up or a
# preemption).
set -euo pipefail
pid=$1
cpu=$(cat /proc/"$pid"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f", s }')
sw=$(cat /proc/"$pid"/task/*/status | awk '/ctxt_switches/ { s += $2 } END { print s }')
echo "$cpu $sw"
