# SPDX-License-Identifier: BSD-2-Clause
# shellcheck shell=bash disable=SC2154,SC2034  # st() sets the variables by eval
# The guest's side of tests/guest/guest-units.bats, copied to /root/t.sh in the guest and sourced by
# each of its commands: one command per step, since every command and every systemctl costs
# time under emulation.

# st UNIT: ActiveState, SubState, Result, ExecMainStatus, NRestarts and MainPID of UNIT, as
# shell variables of those names.
st() {
  eval "$(systemctl show -p ActiveState,SubState,Result,ExecMainStatus,NRestarts,MainPID "$1" |
    sed -n "s/^\([A-Za-z]*\)=\([-A-Za-z0-9_.]*\)$/\1='\2'/p")"
}

# settle UNIT serving|failed: wait (150 looks, 0.2 s apart) for that state, then print
# "ActiveState Result ExecMainStatus NRestarts after S s", S the seconds it took. Serving is the moment nshm-stat shows the
# unit's main process as the region's live receiver, not merely "running" (a receiver that is
# about to fail is running for a moment). A unit that fails while we wait for "serving" ends
# the wait too.
settle() {
  local i ep=${1#nshm-receiver@} t0
  ep=${ep%.service}
  t0=$(cut -d' ' -f1 /proc/uptime)
  for i in $(seq 150); do
    st "$1"
    if [ "$2" = failed ] || [ "$ActiveState" = failed ]; then
      [ "$ActiveState" = failed ] && break
    elif [ "$SubState" = running ] && [ "$MainPID" != 0 ] &&
      nshm-stat "$ep" 2>/dev/null | grep -q "^receiver .*alive, pid $MainPID,"; then
      break
    fi
    sleep 0.2
  done
  echo "$ActiveState $Result $ExecMainStatus $NRestarts after $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }') s"
}

# later UNIT: "later: ActiveState NRestarts" 2.5 s on, more than RestartSec=2: a unit that
# loops would have been restarted by then.
later() {
  sleep 2.5
  st "$1"
  echo "later: $ActiveState $NRestarts"
}

# mark, then since UNIT: UNIT's journal lines since the mark.
mark() { journalctl -q -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p' >/run/units-test.cursor; }
since() { journalctl -q --no-pager -o cat -u "$1" --after-cursor="$(cat /run/units-test.cursor)"; }

# The PCI addresses of the ivshmem devices, one a line.
ivshmem_addrs() {
  local d
  for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor")$(cat "$d/device")" = 0x1af40x1110 ] && echo "${d##*/}"
  done
  return 0
}
