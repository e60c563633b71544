#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# The Debian packages in a real Debian 12 guest with systemd and udev
# (tests/guest/lib.sh: an mmdebstrap root, Debian's kernel, an ivshmem
# device present from boot): `apt install` of the packages makes udev start
# the receiver for the device already there, the host pushes a file and a
# tree and pulls one, the module dkms built maps BAR2 write-back, `apt
# remove` stops the receiver and purge removes the configuration but not
# the received files.
#
# nshm-dkms is installed into the root before it becomes the guest's image
# (dpkg -i in a chroot): its postinst runs dkms, which builds nshm.ko for the
# guest kernel's version against linux-headers of that version in the root
# (the root, with dkms and the headers, comes from mmdebstrap, cached).
# Compiling in the guest under software emulation would cost minutes per
# run; the module the guest loads is still the one dkms built and
# installed (checked: dkms status, modinfo's path, lsmod). nshm and
# libnshm0 are installed in the running guest, by apt, from .debs put in
# the image.
#
# Cost: the first run builds the root (mmdebstrap, a few minutes; cached by
# its inputs); then about 2 min under TCG.

bats_require_minimum_version 1.5.0
ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
OUT=${NSHM_DEB_DIR:-$ROOT/build/deb}
VER=$(sed -nE 's/^#define NSHM_LIB_VERSION "([0-9.]+)"$/\1/p' "$ROOT/lib/nshm.h")
MAJOR=${VER%%.*}
ARCH=$(dpkg --print-architecture)

setup_file() {
	unset MAKEFLAGS MFLAGS MAKELEVEL
	source "$ROOT/tests/guest/lib.sh"
	vm_run_init
	export VM_RUN
	guest_require_tools
	bash "$ROOT/tests/deb-build.sh" --current "$OUT" >"$VM_RUN/deb-build.out" 2>&1 ||
		{ cat "$VM_RUN/deb-build.out" >&2; return 1; }
	# The host's side: the programs of the nshm package.
	mkdir -p "$VM_RUN/host"
	dpkg-deb -x "$OUT/nshm_${VER}_$ARCH.deb" "$VM_RUN/host"
	# The guest kernel (tests/vm/lib.sh's) and its headers in the root,
	# for dkms.
	local kpkg
	kpkg=$(vm_kernel_package) || return 1
	export KVER=${kpkg#linux-image-}
	guest_root "$VM_RUN/root" -p "$GUEST_LIB_PACKAGES linux-headers-$KVER dkms apt" || return 1
	# nshm-dkms installed by dpkg in the root (chroot): its postinst runs
	# dkms, which builds and installs nshm.ko for $KVER.
	cp "$OUT/nshm-dkms_${VER}_all.deb" "$VM_RUN/root/tmp/"
	unshare -m sh -c "mount -t proc proc '$VM_RUN/root/proc' &&
		chroot '$VM_RUN/root' dpkg -i /tmp/nshm-dkms_${VER}_all.deb" >"$VM_RUN/dkms.log" 2>&1 ||
		{ cat "$VM_RUN/dkms.log" >&2; return 1; }
	rm "$VM_RUN/root/tmp/nshm-dkms_${VER}_all.deb"
	ls "$VM_RUN/root/lib/modules/$KVER/updates/dkms/nshm.ko" ||
		{ cat "$VM_RUN/dkms.log" >&2; return 1; }
	mkdir -p "$VM_RUN/root/root/debs"
	cp "$OUT/nshm_${VER}_$ARCH.deb" "$OUT/libnshm${MAJOR}_${VER}_$ARCH.deb" "$VM_RUN/root/root/debs/"
	guest_image "$VM_RUN/root" "$VM_RUN/disk.img" || return 1
	rm -rf "$VM_RUN/root"
	export SHM
	SHM=$(vm_shm_name deb)
	vm_shm_create "$SHM" 8M
	export VM
	VM=$(guest_boot deb "$VM_RUN/disk.img" --shm "$SHM" 8M) || return 1
	local state
	state=$(guest_wait_system "$VM" 400) || { echo "the guest's systemd did not finish booting" >&2; return 1; }
	echo "# guest: systemd $state" >&3
}

teardown_file() {
	source "$ROOT/tests/guest/lib.sh"
	guest_cleanup
}

setup() {
	source "$ROOT/tests/guest/lib.sh"
	T=$BATS_TEST_TMPDIR
}

# g TIMEOUT CMD: run CMD in the guest; output, stderr and status in run's.
# TIMEOUT is what it takes on an idle machine; it is multiplied by
# NSHM_GUEST_DEB_SLOW (default 6): under TCG on a loaded 2-core machine a
# `dkms status` took over 30 s. The bound only matters when something hangs.
g() {
	run --separate-stderr guest_run "$VM" "$(($1 * ${NSHM_GUEST_DEB_SLOW:-6}))" "$2"
	echo "guest ($2): rc=$status out=$output err=$stderr" >&2
}

# The ivshmem device's receiver unit, from the guest's sysfs.
BDF_CMD='for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor)$(cat $d/device)" = 0x1af40x1110 ] && basename $d; done; true'
unit() {
	g 10 "$BDF_CMD"
	[ "$status" -eq 0 ] && [ -n "$output" ]
	echo "nshm-receiver@pci:$output.service"
}

# put ARGS...: the host's nshm-put (from the package) into the guest.
put() {
	timeout 120 "$VM_RUN/host/usr/bin/nshm-put" -q --timeout 90 "$@"
}

@test "guest-deb: dkms built nshm.ko for the guest's kernel and udev loaded it at boot" {
	g 30 "uname -r; dkms status nshm; modinfo -n nshm; lsmod | awk '\$1 == \"nshm\"'; ls /dev/nshm0"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "$KVER" ]
	[[ ${lines[1]} == "nshm/$VER, $KVER, x86_64: installed"* ]]
	[ "${lines[2]}" = "/lib/modules/$KVER/updates/dkms/nshm.ko" ]
	[[ ${lines[3]} == "nshm "* ]]
	[ "${lines[4]}" = /dev/nshm0 ]
	# Its udev rule runs the packaged restore helper.
	g 10 'grep -h RUN /lib/udev/rules.d/99-nshm-dkms.rules; test -x /usr/libexec/nshm/nshm-mtrr-restore'
	[ "$status" -eq 0 ]
	[[ $output == *'RUN+="/usr/libexec/nshm/nshm-mtrr-restore"'* ]]
}

@test "guest-deb: apt install starts the receiver for the device already present" {
	local u
	u=$(unit)
	g 10 "systemctl is-active $u"
	[ "$output" = inactive ]
	g 180 "cd /root/debs && apt-get install -y ./nshm_${VER}_$ARCH.deb ./libnshm${MAJOR}_${VER}_$ARCH.deb"
	[ "$status" -eq 0 ]
	# udev's replayed "add" reaches systemd, which starts the unit: wait
	# for it (bounded), it is not instant.
	g 40 "for i in \$(seq 1200); do systemctl is-active --quiet $u && break; sleep 0.1; done; systemctl is-active $u; systemctl show -p ExecMainPID --value $u"
	[ "${lines[0]}" = active ]
	[ "${lines[1]}" -gt 0 ]
	# And no other: one device, one receiver.
	g 10 "systemctl list-units --plain --no-legend 'nshm-receiver@*' | wc -l"
	[ "$output" = 1 ]
}

@test "guest-deb: the host pushes a file and a tree to the receiver" {
	head -c 3000000 /dev/urandom >"$T/file.bin"
	put "$T/file.bin" "$SHM"
	g 30 "sha256sum /var/lib/nshm/incoming/file.bin"
	[ "${output%% *}" = "$(sha256sum <"$T/file.bin" | cut -c1-64)" ]
	mkdir -p "$T/tree/sub"
	echo one >"$T/tree/a.txt"
	head -c 200000 /dev/urandom >"$T/tree/sub/b.bin"
	ln -s ../a.txt "$T/tree/sub/link"
	put "$T/tree" "$SHM"
	g 30 'cd /var/lib/nshm/incoming/tree && find . | LC_ALL=C sort && sha256sum a.txt sub/b.bin && readlink sub/link'
	[ "$status" -eq 0 ]
	(cd "$T/tree" && find . | LC_ALL=C sort && sha256sum a.txt sub/b.bin && readlink sub/link) >"$T/expected"
	diff -u "$T/expected" <(printf '%s\n' "$output")
}

@test "guest-deb: the host pulls a file once /etc/default/nshm-receiver allows it" {
	local u
	u=$(unit)
	g 30 "echo pulled-from-guest >/var/log/nshm-pull.txt && echo 'NSHM_RECEIVER_ARGS=\"--allow-pull /var/log\"' >>/etc/default/nshm-receiver && systemctl restart $u && systemctl is-active $u"
	[ "$output" = active ]
	mkdir "$T/in"
	timeout 120 "$VM_RUN/host/usr/bin/nshm-get" -q --timeout 90 --source "$SHM" --pull /nshm-pull.txt "$T/in"
	[ "$(cat "$T/in/nshm-pull.txt")" = pulled-from-guest ]
}

@test "guest-deb: the receiver maps BAR2 write-back through the dkms module" {
	g 30 'mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug; { '"$BDF_CMD"'; } >/tmp/bdf; d=/sys/bus/pci/devices/$(cat /tmp/bdf); bar=$(awk "NR==3 { print \$1 }" $d/resource); readlink $d/driver; grep -i "mem $bar-" /sys/kernel/debug/x86/pat_memtype_list'
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == */drivers/nshm ]]
	# The resident receiver holds the mapping: one PAT entry, write-back.
	[[ ${lines[1]} == *"] write-back"* ]]
	g 30 'nshm-stat pci | grep mapping'
	[ "$output" = "mapping   write-back (/dev/nshm0, module)" ]
}

@test "guest-deb: apt remove stops the receiver; purge removes the configuration, not the files" {
	local u
	u=$(unit)
	g 120 "apt-get remove -y nshm"
	[ "$status" -eq 0 ]
	g 10 "systemctl is-active $u; pgrep -c -x nshm-get || true; test -e /etc/default/nshm-receiver && echo conf-kept"
	[ "${lines[0]}" = inactive ]
	[ "${lines[1]}" = 0 ]
	[ "${lines[2]}" = conf-kept ]
	g 120 "apt-get purge -y nshm && ls /etc/default/nshm-receiver; ls /var/lib/nshm/incoming"
	[ "$status" -eq 0 ]
	[[ $stderr == *"/etc/default/nshm-receiver"*"No such file"* ]]
	[[ $output == *file.bin*tree* ]]
}
