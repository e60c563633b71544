#!/bin/busybox sh
# SPDX-License-Identifier: BSD-2-Clause
# /init of the systemd guest's initramfs (busybox only; tests/guest/lib.sh copies it in): load
# the modules the host listed (virtio_pci, virtio_blk, ext4 and what they need, in load order),
# mount /dev/vda and hand over to the root's /sbin/init (systemd).
/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin

fail() {
	echo "@@GUEST-INIT-FAILED $*"
	poweroff -f
	sleep 5
}

while read -r m; do
	[ -n "$m" ] && { insmod "/lib/modules/guest/$m.ko" || echo "@@GUEST-INIT-WARN insmod $m failed"; }
done </etc/guest-modules

# virtio_blk probes as it loads, but give the disk a moment to appear all the same (bounded).
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do usleep 50000; i=$((i + 1)); done
mount -t ext4 -o rw /dev/vda /newroot || fail "cannot mount /dev/vda"
[ -x /newroot/sbin/init ] || [ -L /newroot/sbin/init ] || fail "the root has no /sbin/init"
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /sbin/init
