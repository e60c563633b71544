#!/bin/busybox sh
# SPDX-License-Identifier: BSD-2-Clause
# /init of the nshm test guest (busybox only). Copied into the initramfs by tests/vm/lib.sh.
#
# nshm.mode=probe  print the ready marker and power off (the KVM probe boot).
# nshm.mode=serve  print the ready marker, then run the commands the host sends on ttyS1, one
#                  per line: "ID SHELL-COMMAND". Every command runs in the background, so that
#                  several can be under way at once; its result goes to the console (ttyS0):
#                    @@NSHM-START ID
#                    @@NSHM-OUT ID <each stdout line>
#                    @@NSHM-ERR ID <each stderr line>
#                    @@NSHM-END ID rc=N secs=S
#                  "shutdown poweroff" powers the guest off.
# The guest powers itself off if /init would otherwise end, so QEMU (-no-reboot) always exits.

/bin/busybox mkdir -p /proc /sys /dev /tmp /run
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/bin
export HOME=/tmp

bye() {
	echo "@@NSHM-BYE $*"
	sync
	poweroff -f
	sleep 5
}

# Modules named by the host, already in dependency order.
while read -r m; do
	[ -n "$m" ] || continue
	insmod "/lib/modules/nshm/$m.ko" || echo "@@NSHM-WARN insmod $m failed"
done </etc/nshm/modules

mode=serve
for arg in $(cat /proc/cmdline); do
	case "$arg" in nshm.mode=*) mode=${arg#nshm.mode=} ;; esac
done

# The ivshmem device, if any, for the ready line (the programs find it themselves).
ivshmem=none
for d in /sys/bus/pci/devices/*; do
	if [ "$(cat "$d/vendor" 2>/dev/null)" = 0x1af4 ] && [ "$(cat "$d/device" 2>/dev/null)" = 0x1110 ]; then
		ivshmem=${d##*/}
	fi
done

if [ "$mode" = probe ]; then
	echo "@@NSHM-READY probe"
	bye probe
fi

# Raw and without echo: the host's commands must not be changed or sent back.
stty -F /dev/ttyS1 raw -echo
mkdir -p /tmp/jobs

now() { cut -d' ' -f1 /proc/uptime; }

# Console output of concurrent jobs must not interleave: a mkdir lock around each report.
lock() { while ! mkdir /tmp/jobs/.lock 2>/dev/null; do usleep 10000; done; }
unlock() { rmdir /tmp/jobs/.lock; }

run_job() {
	id=$1
	cmd=$2
	lock; echo "@@NSHM-START $id"; unlock
	t0=$(now)
	sh -c "$cmd" </dev/null >"/tmp/jobs/$id.out" 2>"/tmp/jobs/$id.err"
	rc=$?
	secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
	lock
	sed "s/^/@@NSHM-OUT $id /" "/tmp/jobs/$id.out"
	sed "s/^/@@NSHM-ERR $id /" "/tmp/jobs/$id.err"
	echo "@@NSHM-END $id rc=$rc secs=$secs"
	unlock
	rm -f "/tmp/jobs/$id.out" "/tmp/jobs/$id.err"
}

echo "@@NSHM-READY serve ivshmem=$ivshmem uptime=$(now)"
while IFS= read -r line; do
	id=${line%% *}
	cmd=${line#* }
	case "$id" in
	shutdown) bye shutdown ;;
	'') continue ;;
	esac
	run_job "$id" "$cmd" &
done </dev/ttyS1
bye "ttyS1 closed"
