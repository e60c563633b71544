#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Which way of checksumming what reached the destination costs less?
#   copy:     copy each piece of a slot into private memory, CRC it, write it
#   readback: write straight from the slot, CRC the written range through a
#             read-only mapping of the file (NSHM_VERIFY=readback)
# The two alternate, RUNS times each, with cp and dd beside them
# (bench/ab-builds.sh does the measuring).
# usage: bench/verify-modes.sh [MIB] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
exec bench/ab-builds.sh "${1:-512}" "${2:-5}" build:NSHM_VERIFY=copy build:NSHM_VERIFY=readback
