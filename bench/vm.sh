# SPDX-License-Identifier: BSD-2-Clause
# shellcheck shell=bash
# bench/vm.sh -- the "vm" setting of bench/run (sourced by it, never run alone).
#
# One QEMU guest is booted with every device at once (ivshmem, virtio-net,
# two 9p shares, virtiofs, two virtserialports) and every method moves the same host file into the
# guest's tmpfs inside that one boot: under software emulation (TCG, all this
# machine offers) absolute times mean little, so the methods are only ever
# compared side by side.  The guest's own tmpfs → tmpfs cp is the ceiling.
#
# It reuses the VM harness of tests/vm/lib.sh (kernel, initramfs, boot, the
# command channel) and only reads it.  Networking: QEMU's user-mode network.
# The host reaches the guest's sshd through hostfwd on 127.0.0.1; the guest
# reaches the host's HTTP server and netcat listener at slirp's gateway
# 10.0.2.2, which QEMU itself turns into a connection to 127.0.0.1 on the
# host side -- inside bench/run's private network namespace, where lo is the
# only interface, so nothing can leave it.
#
# The two ways without a network: qemu-guest-agent (Debian's package, its
# binary unpacked into the harness's cache and copied into the initramfs) on
# one virtserialport, the host writing through its JSON protocol; and a raw
# virtserialport (QEMU socket chardev on the host, the port's /dev/vportNpM
# in the guest).  Both are driven from the host by bench/vmchan.py.
#
# Timing: wall time on the host from starting both ends to both having ended
# (the guest's end is seen on its console, polled every 10 ms), then the
# destination is checked with busybox crc32 inside the guest (not timed).
# CPU: the guest's /proc/stat (user+nice+system+irq+softirq) read just before
# and just after each run, less what the two reads themselves cost (measured
# after boot); on the host, the method's processes, the servers and QEMU's
# threads other than its vCPUs (see "CPU" in bench/run).

VM_METHODS=(nshm nshm-resident nshm-resident-bell nshm-resident-kmod netcat scp scp-aes128gcm hpnscp hpnscp-none curl 9p 9p-msize512k virtiofs qemu-ga virtio-serial cp)
# A subset, comma-separated, to measure one change quickly (a full run is
# what RESULTS.md shows).
[[ -n ${NSHM_BENCH_VM_METHODS:-} ]] && IFS=, read -ra VM_METHODS <<<"$NSHM_BENCH_VM_METHODS"
VM_MODULES="virtio_pci virtio_net 9pnet_virtio 9p virtiofs virtio_console"
VM_REGION=${NSHM_BENCH_VM_REGION:-64M}
# Fewer runs than the host setting: under emulation a round of every method
# takes 20-60 s, and make bench should stay within minutes.
VM_RUNS=${NSHM_BENCH_VM_RUNS:-3}
# qemu-ga moves about 1.3 MB/s here (base64 through JSON through a 4 KiB-page
# virtqueue, all emulated): above this size it would take minutes a run.
VM_QGA_MAX=${NSHM_BENCH_QGA_MAX:-16M}
VM_SSH_PORT=2223
VM_HPN_PORT=2225 # host side of the guest hpnsshd's port 2200
VM_NC_PORT=5900

# Guest-side paths: /tmp/b is a tmpfs of its own for sources and destinations.
G_SRC=/tmp/b/src
G_DST=/tmp/b/dst

# The guest residents (nshm-get --serve), each on an ivshmem device of its own
# at a fixed PCI address, each serving into /tmp/b/res-METHOD:
#   nshm-resident       ivshmem-plain (00:10.0): polls (sysfs resource2)
#   nshm-resident-bell  ivshmem-doorbell served by the host's nshm-server
#                       (00:11.0), the guest without the module: it polls, the
#                       host's nshm-put has eventfds
#   nshm-resident-kmod  the same device once the guest module (kmod/) is
#                       loaded: write-back mapping and MSI-X interrupts, asleep
#                       until rung while idle (measured after the others, as
#                       the module binds every ivshmem device)
# The nshm row's own ivshmem-plain is the third device.
G_RES_BDF=0000:00:10.0
G_BELL_BDF=0000:00:11.0

# Before bench/run enters its network namespace (apt needs the network):
# QEMU and friends, and the guest kernel and modules into the harness's cache.
vm_prepare() {
	local lib=$ROOT/tests/vm/lib.sh
	[[ -f $lib ]] || return 0
	(
		set +eEu
		trap - ERR
		# shellcheck source=../tests/vm/lib.sh
		. "$lib" || exit 1
		((NO_INSTALL)) && export NSHM_VM_NO_INSTALL=1
		vm_require_tools || exit 1
		kdir=$(vm_kernel_dir) || exit 1
		# shellcheck disable=SC2086 # a list of module names
		vm_kernel_modules "$kdir" $VM_MODULES >/dev/null || exit 1
		vm_kernel_image "$kdir" >/dev/null
	) || log "vm: could not prepare QEMU or the guest kernel; the vm setting will fail"
	# nshm.ko against the guest kernel's headers (apt, before the namespace).
	local ko
	# shellcheck source=../tests/vm/lib.sh
	if ko=$(set +eEu; trap - ERR; . "$lib" && vm__kmod 2>&1); then
		export NSHM_BENCH_KO=${ko##*$'\n'}
	else
		log "vm: no nshm.ko: ${ko##*$'\n'}; nshm-resident-kmod will fail"
	fi
	# qemu-ga for the guest, from Debian's package (not installed on the host).
	local qga
	if qga=$(set +eEu; trap - ERR; . "$lib" && vm_deb_file qemu-guest-agent /usr/sbin/qemu-ga 2>&1); then
		export NSHM_BENCH_QGA=$qga
	else
		log "vm: no qemu-ga: ${qga##*$'\n'}; qemu-ga will fail"
	fi
	return 0
}

# vm__kmod: print nshm.ko built against the guest kernel's headers, in the
# VM cache (built again when kmod/ changed). Needs lib.sh sourced.
vm__kmod() {
	local kdir base hdr out f
	kdir=$(vm_kernel_dir) || return 1
	base=$(basename "$kdir")
	hdr=$(vm_headers "${base%%_*}" "${base#*_}") || return 1
	out=$(vm_cache_dir)/bench-kmod-${base%%_*}
	mkdir -p "$out"
	for f in nshm.c nshm_uapi.h Kbuild Makefile; do
		cmp -s "$ROOT/kmod/$f" "$out/$f" || { cp "$ROOT/kmod/$f" "$out/$f"; rm -f "$out/nshm.ko"; }
	done
	[[ -f $out/nshm.ko ]] || make -C "$out" KDIR="$hdr" >"$out/build.log" 2>&1 ||
		{ tail -n 5 "$out/build.log" >&2; return 1; }
	printf '%s\n' "$out/nshm.ko"
}

vm_bench() {
	# shellcheck disable=SC2034 # read by bench/run
	SETTING_NOW=vm
	local lib=$ROOT/tests/vm/lib.sh
	if [[ ! -f $lib ]]; then
		log "vm: $lib not found; vm setting skipped"
		return 0
	fi
	[[ -n ${HTTPD:-} ]] || { mkdir -p "$WORK/src"; start_httpd; }
	# lib.sh is written for bats and plain scripts without errexit: run it
	# in a subshell without -e and without our ERR trap, and check every
	# step by hand.  Samples go to $SAMPLES, a file, so they outlive it.
	local rc=0
	(
		set +eE; [[ -n ${NSHM_BENCH_TRACE:-} ]] && set -x
		trap - ERR
		vm__main
	) || rc=$?
	((rc == 0)) || log "vm: setting stopped early (status $rc); what ran is reported"
	return 0
}

vm__main() {
	# shellcheck source=../tests/vm/lib.sh
	. "$ROOT/tests/vm/lib.sh" || return 1
	NSHM_BUILD_DIR=$(dirname "$NSHM_PUT")
	export NSHM_BUILD_DIR
	# Only this subshell cleans up: a background child that dies (bash runs
	# the EXIT trap in forked children too) must not take the guest with it.
	VM_MAIN_PID=$BASHPID
	trap '[[ $BASHPID == "$VM_MAIN_PID" ]] && { vm_cleanup; [[ -n ${VFSD_PID:-} ]] && kill "$VFSD_PID" 2>/dev/null; [[ -n ${BELL_SRV_PID:-} ]] && kill "$BELL_SRV_PID" 2>/dev/null; }' EXIT
	if [[ -z ${SCP:-} ]]; then # set by start_sshd in the host setting
		SCP=scp
		command -v hpnscp >/dev/null && SCP=hpnscp
	fi
	vm_require_tools || return 1
	[[ -x /usr/lib/qemu/virtiofsd ]] || log "vm: /usr/lib/qemu/virtiofsd missing: virtiofs will fail"
	HPN=${NSHM_BENCH_HPN:-} HPN_WHY=${NSHM_BENCH_HPN_WHY:-HPN-SSH not looked for}
	vm_run_init || return 1

	local sizes=() list s
	IFS=, read -r -a list <<<"${NSHM_BENCH_VM_SIZES:-1M,16M,64M}"
	((SMOKE)) && list=(1M)
	for s in "${list[@]}"; do sizes+=("$(to_bytes "$s")"); done

	((SMOKE)) && VM_RUNS=1
	((VM_RUNS > RUNS)) && VM_RUNS=$RUNS
	echo "$VM_RUNS" >"$WORK/vm-runs"
	vm__boot || return 1
	# Every method but the module's, which is measured after them.
	VM_CASE_METHODS=()
	for s in "${VM_METHODS[@]}"; do [[ $s == nshm-resident-kmod ]] || VM_CASE_METHODS+=("$s"); done
	vm__sizes "${sizes[@]}"
	vm__idle nshm-resident nshm-resident-bell
	if [[ " ${VM_METHODS[*]} " == *" nshm-resident-kmod "* ]] && vm__kmod_resident; then
		VM_CASE_METHODS=(nshm-resident-kmod)
		vm__sizes "${sizes[@]}"
		vm__idle nshm-resident-kmod
	fi
	vm_shutdown "$VM"
	return 0
}

vm__sizes() { # BYTES...: every case of VM_CASE_METHODS
	local bytes name case expected
	for bytes in "$@"; do
		case=$(human "$bytes")
		name=v$bytes.bin
		log "vm: $case x $VM_RUNS runs (${VM_CASE_METHODS[*]})"
		"$BIN/mkdata" "$bytes" "$bytes" >"$WORK/src/$name"
		expected=$(crc32_file "$WORK/src/$name")
		# The same generator and seed in the guest: its copy is identical,
		# and no slower transfer is needed to put it there.
		vm_exec "$VM" 120 "mkdata $bytes $bytes >$G_SRC/$name" >/dev/null ||
			log "vm: could not make the guest's source; cp will fail"
		TMO=$((60 + bytes / 500000)) # emulation: allow 0.5 MB/s (qemu-ga)
		vm__case "$case" "$name" "$bytes" "$expected"
		vm_exec "$VM" 30 "rm -f $G_SRC/$name" >/dev/null
		rm -f "$WORK/src/$name"
	done
}

# The host's nshm-server for the doorbell device (it makes the memory).
NSHM_RUN=/run/nshm
vm__bell_server() {
	local i
	[[ -x $NSHM_SERVER ]] || { log "vm: no $NSHM_SERVER"; return 1; }
	mkdir -p "$NSHM_RUN"
	printf '%s\n' "$SHM_BELL" >>"$VM_RUN/shm.list"
	rm -f "/dev/shm/$SHM_BELL"
	server "$NSHM_SERVER" --size "$VM_REGION" "$SHM_BELL" >"$WORK/vm-nshm-server.log" 2>&1
	BELL_SRV_PID=$!
	for ((i = 0; i < 100; i++)); do
		grep -q '^serving ' "$WORK/vm-nshm-server.log" && return 0
		sleep 0.05
	done
	log "vm: nshm-server did not come up: $(cat "$WORK/vm-nshm-server.log")"
	return 1
}

vm__res_bdf() { # METHOD: the guest device its resident serves on
	case $1 in nshm-resident) echo "$G_RES_BDF" ;; *) echo "$G_BELL_BDF" ;; esac
}

# vm__residents METHOD...: start each guest resident (a job that never
# ends; its pid in /tmp/res-METHOD.pid) and wait until its line is ready
# with that pid: a resident it replaces may still show ready a moment.
vm__residents() {
	local m bdf i
	for m in "$@"; do
		[[ " ${VM_METHODS[*]} " == *" $m "* ]] || continue
		bdf=$(vm__res_bdf "$m")
		vm_start "$VM" "mkdir -p /tmp/b/res-$m; nshm-get -q -f --serve -s pci:$bdf /tmp/b/res-$m 2>/tmp/res-$m.err & echo \$! >/tmp/res-$m.pid; wait" >/dev/null
		for ((i = 0; i < 60; i++)); do
			vm_exec "$VM" 30 "p=\$(cat /tmp/res-$m.pid) && nshm-stat pci:$bdf | grep -q \"^receiver  ready, alive, pid \$p,\"" >/dev/null 2>&1 && break
			sleep 0.2
		done
		((i < 60)) || log "vm: the $m resident did not come up; see resident.log"
		vm_exec "$VM" 30 "echo '$m:'; nshm-stat pci:$bdf; cat /tmp/res-$m.err" >>"$WORK/resident.log" 2>&1
	done
}

# The guest module: loaded (it binds every ivshmem device), the doorbell
# resident stopped and the module's one started on the same device.
vm__kmod_resident() {
	local out
	out=$(vm_exec "$VM" 60 "insmod /lib/nshm.ko && ls /dev/nshm*" 2>&1) ||
		{ log "vm: insmod nshm.ko failed: $out"; return 1; }
	# Gone before the next starts: else the new one finds the line busy
	# and ends, while the old one still shows ready (a put then fails).
	vm_exec "$VM" 30 "p=\$(cat /tmp/res-nshm-resident-bell.pid); kill \$p; i=0; while kill -0 \$p 2>/dev/null && [ \$i -lt 200 ]; do usleep 50000; i=\$((i + 1)); done" >/dev/null 2>&1
	vm__residents nshm-resident-kmod
	out=$(vm_exec "$VM" 30 "nshm-stat pci:$G_BELL_BDF | sed -n 's/^mapping *\(.*\)/mapping \1,/p; s/^doorbell *\(.*\)/doorbell \1,/p'" 2>/dev/null | tr '\n' ' ')
	out=${out%, }
	echo "${out%,}" >"$WORK/vm-kmod-note"
}

# vm__idle METHOD...: each guest resident's cost while it waits, over
# IDLE_WINDOW_S once it has waited IDLE_AFTER_S: the guest's CPU time of all
# its threads (schedstat, ns) and their context switches, into idle.tsv.
vm__idle() {
	local m names='' out
	for m in "$@"; do [[ " ${VM_METHODS[*]} " == *" $m "* ]] && names+=" $m"; done
	[[ -n $names ]] || return 0
	log "vm: residents idle, ${IDLE_WINDOW_S} s:$names"
	# shellcheck disable=SC2016 # the guest's shell expands these
	local cost='c=$(cat /proc/$p/task/*/schedstat | awk "{ s += \$1 } END { printf \"%.0f\", s }"); w=$(cat /proc/$p/task/*/status | awk "/ctxt_switches/ { s += \$2 } END { print s }")'
	out=$(vm_exec "$VM" $((IDLE_AFTER_S + IDLE_WINDOW_S + 60)) "sleep $IDLE_AFTER_S; for m in$names; do p=\$(cat /tmp/res-\$m.pid); $cost; echo \$m \$c \$w; done; sleep $IDLE_WINDOW_S; for m in$names; do p=\$(cat /tmp/res-\$m.pid); $cost; echo \$m \$c \$w; done" 2>>"$WORK/methods.log")
	awk -v s="$IDLE_WINDOW_S" '{ if ($1 in c) printf "vm\t%s\t%s\t%d\t%d\n", $1, s, $2 - c[$1], $3 - w[$1]; else { c[$1] = $2; w[$1] = $3 } }' <<<"$out" >>"$WORK/idle.tsv"
}

# Everything a guest needs for every method, in one boot.
vm__boot() {
	local progs
	progs=$(vm_programs) || return 1
	local sftp=/usr/lib/openssh/sftp-server extra_progs=() f
	[[ -x $(dirname "$NSHM_PUT")/nshm-stat ]] && extra_progs+=("$(dirname "$NSHM_PUT")/nshm-stat")
	[[ -n ${NSHM_BENCH_QGA:-} ]] && extra_progs+=("$NSHM_BENCH_QGA")
	# HPN-SSH's programs at the paths they were built for (hpnsshd runs
	# its session and auth helpers from its libexec directory).
	if [[ -n $HPN ]]; then
		for f in sbin/hpnsshd libexec/hpnsshd-session libexec/hpnsshd-auth libexec/hpnsftp-server; do
			extra_progs+=("$HPN/$f=$HPN/$f")
		done
	fi
	# shellcheck disable=SC2086 # two paths without spaces
	[[ -n ${NSHM_BENCH_KO:-} && -f $NSHM_BENCH_KO ]] && extra_progs+=("$NSHM_BENCH_KO=/lib/nshm.ko")
	vm_initramfs "$VM_RUN/guest.cpio" -m "$VM_MODULES" \
		$progs "$BIN/mkdata" "$BIN/curl-get" /usr/sbin/sshd "$sftp" "${extra_progs[@]}" || return 1

	# The guest's ssh setup travels on a 9p share of its own (the
	# initramfs builder takes programs only): keys, config, accounts.
	local cfg=$WORK/vmcfg
	mkdir -p "$cfg"
	rm -f "$cfg"/host_key*	# a reused work directory: keygen would ask
	ssh-keygen -q -t ed25519 -N '' -f "$cfg/host_key"
	cp "$WORK/ssh/user_key.pub" "$cfg/authorized_keys" 2>/dev/null || {
		mkdir -p "$WORK/ssh"
		ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/user_key"
		cp "$WORK/ssh/user_key.pub" "$cfg/authorized_keys"
	}
	cat >"$cfg/sshd_config" <<-EOF
		Port 22
		HostKey /etc/ssh/host_key
		AuthorizedKeysFile /etc/ssh/authorized_keys
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		PermitRootLogin prohibit-password
		StrictModes no
		UsePAM no
		UseDNS no
		PidFile /run/sshd.pid
		Subsystem sftp /usr/local/bin/sftp-server
	EOF
	sed -e 's/^Port .*/Port 2200/' -e 's|^PidFile .*|PidFile /run/hpnsshd.pid|' \
		-e "s|^Subsystem sftp .*|Subsystem sftp $HPN/libexec/hpnsftp-server|" "$cfg/sshd_config" >"$cfg/hpnsshd_config"
	echo "NoneEnabled yes" >>"$cfg/hpnsshd_config"
	printf 'root:x:0:0:root:/tmp:/bin/sh\nsshd:x:100:65534::/run/sshd:/bin/false\n' >"$cfg/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$cfg/group"

	# Settle kvm-or-tcg now: the harness's probe boot would otherwise take
	# the pass-through arguments below and use up virtiofsd's one connection.
	# shellcheck disable=SC2034 # read by lib.sh
	VM_QEMU_EXTRA=()
	vm_accel >/dev/null || return 1

	SHM=$(vm_shm_name bench)
	vm_shm_create "$SHM" "$VM_REGION" || return 1
	# The residents' devices: a plain one, and a doorbell one that the
	# host's nshm-server serves (it makes that memory itself).
	SHM_RES=$(vm_shm_name res)
	vm_shm_create "$SHM_RES" "$VM_REGION" || return 1
	SHM_BELL=$(vm_shm_name bell)
	vm__bell_server || return 1

	# virtiofsd serves one guest and exits when it disconnects.
	local sock=$VM_RUN/vfs.sock
	server /usr/lib/qemu/virtiofsd --socket-path="$sock" -o source="$WORK/src" -o cache=auto \
		>"$WORK/virtiofsd.log" 2>&1
	VFSD_PID=$!
	SERVER_PIDS+=("$VFSD_PID")
	local i
	for ((i = 0; i < 100; i++)); do [[ -S $sock ]] && break; sleep 0.05; done

	# shellcheck disable=SC2054 # QEMU's option values are comma-separated
	local extra=(
		# Thread names ("CPU 0/TCG"): QEMU's own CPU is told from the guest's by them.
		-name bench,debug-threads=on
		-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$VM_SSH_PORT-:22,hostfwd=tcp:127.0.0.1:$VM_HPN_PORT-:2200"
		-device virtio-net-pci,netdev=n0
		# Two 9p devices on the same directory: one channel each, one msize each.
		-virtfs "local,path=$WORK/src,mount_tag=h9a,security_model=none,readonly=on"
		-virtfs "local,path=$WORK/src,mount_tag=h9b,security_model=none,readonly=on"
		-virtfs "local,path=$cfg,mount_tag=hcfg,security_model=none,readonly=on"
		# virtiofs needs the guest's RAM shared with virtiofsd.
		-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem
		-chardev "socket,id=vfs,path=$sock" -device vhost-user-fs-pci,chardev=vfs,tag=hvfs
		# Two virtserialports: qemu-guest-agent's, and a raw one.
		-device virtio-serial-pci
		-chardev "socket,id=qga,path=$VM_RUN/qga.sock,server=on,wait=off"
		-device virtserialport,chardev=qga,name=org.qemu.guest_agent.0
		-chardev "socket,id=vsp,path=$VM_RUN/vsp.sock,server=on,wait=off"
		-device virtserialport,chardev=vsp,name=nshm.bench
		-object "memory-backend-file,id=hres,size=$VM_REGION,mem-path=/dev/shm/$SHM_RES,share=on"
		-device "ivshmem-plain,memdev=hres,addr=${G_RES_BDF#0000:00:}"
		-chardev "socket,path=$NSHM_RUN/$SHM_BELL.sock,id=ivs"
		-device "ivshmem-doorbell,chardev=ivs,vectors=2,addr=${G_BELL_BDF#0000:00:}"
	)
	VM=$(vm_boot bench --shm "$SHM" "$VM_REGION" -- "${extra[@]}") || return 1
	VM_ACCEL=$(vm_accel)

	# One setup job; each step says what failed, the methods that need it fail.
	local setup="mkdir -p /tmp/b /mnt/9a /mnt/9b /mnt/vfs /mnt/cfg /etc/ssh /run/sshd /var/empty
mount -t tmpfs -o size=300m tmpfs /tmp/b && mkdir -p $G_SRC $G_DST || echo 'tmpfs failed'
mount -t 9p -o trans=virtio,version=9p2000.L h9a /mnt/9a || echo '9p failed'
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 h9b /mnt/9b || echo '9p msize failed'
mount -t virtiofs hvfs /mnt/vfs || echo 'virtiofs failed'
mount -t 9p -o trans=virtio,version=9p2000.L hcfg /mnt/cfg || echo 'cfg failed'
ip link set lo up; ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up || echo 'net failed'
cp /mnt/cfg/passwd /mnt/cfg/group /etc/ && cp /mnt/cfg/host_key /mnt/cfg/sshd_config /mnt/cfg/authorized_keys /etc/ssh/ && chmod 600 /etc/ssh/host_key
/usr/local/bin/sshd -f /etc/ssh/sshd_config -E /tmp/sshd.log || echo 'sshd failed'
${HPN:+$HPN/sbin/hpnsshd -f /mnt/cfg/hpnsshd_config -E /tmp/hpnsshd.log || echo 'hpnsshd failed'}
for p in /sys/class/virtio-ports/*; do n=\$(cat \$p/name); [ \$n = org.qemu.guest_agent.0 ] && echo /dev/\${p##*/} >/tmp/qga.dev; [ \$n = nshm.bench ] && echo /dev/\${p##*/} >/tmp/vsp.dev; done
qemu-ga -d -m virtio-serial -p \$(cat /tmp/qga.dev) -t /tmp -f /tmp/qga.pid -l /tmp/qga.log || echo 'qemu-ga failed'
mount -t debugfs none /sys/kernel/debug || echo 'debugfs failed'
grep -E ' (9p|virtiofs) ' /proc/mounts | sed 's/^/mount: /'
true"
	# The command channel takes one line: join the steps with ';'.
	local out
	out=$(vm_exec "$VM" 60 "$(tr '\n' ';' <<<"$setup" | sed 's/;;*/; /g')" 2>&1)
	[[ -n $out ]] && printf 'vm setup: %s\n' "$out" >>"$WORK/methods.log"
	QEMU_PID=$(cat "$VM/qemu.pid")
	log "vm: booted ($VM_ACCEL)"
	G_BDF=$(vm_exec "$VM" 30 "for d in /sys/bus/pci/devices/*; do [ \$(cat \$d/device) = 0x1110 ] && [ \${d##*/} != $G_RES_BDF ] && [ \${d##*/} != $G_BELL_BDF ] && echo \${d##*/}; done" 2>/dev/null | head -1)
	[[ -n $G_BDF ]] || log "vm: the nshm row's device was not found; nshm will fail"
	vm__residents nshm-resident nshm-resident-bell
	vm__baseline
	local cpu_model bar2
	cpu_model=$(vm_exec "$VM" 30 "grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'" 2>/dev/null)
	bar2=$(vm__bar2_type)
	printf 'One guest boot (QEMU %s, accel %s, -cpu %s: guest sees "%s", 1 vCPU, 512 MiB, Debian kernel %s); BAR2 mapped by nshm-get (sysfs resource2): %s. Every method moves the file into the guest'"'"'s tmpfs. Under tcg (software emulation) compare methods side by side only. Guest CPU per run less %s ms, the cost of reading it (median of 3 empty runs).\n' \
		"$(qemu-system-x86_64 --version | awk 'NR==1{print $4}')" "$VM_ACCEL" \
		"$([[ $VM_ACCEL == kvm ]] && echo "${NSHM_VM_KVM_CPU:-host}" || echo "${NSHM_VM_TCG_CPU:-qemu64 (default)}")" \
		"${cpu_model:-?}" "$(basename "$(vm_kernel_dir)" | sed 's/^linux-image-//')" "$bar2" "$G_BASE" >"$WORK/vm-note"
	return 0
}

# The mapping type the guest kernel gave BAR2 (PAT's memtype list, in
# debugfs), read while nshm-stat has it mapped.
vm__bar2_type() {
	local cmd out
	cmd="d=/sys/bus/pci/devices/$G_BDF; a=\$(sed -n 3p \$d/resource | cut -d' ' -f1); (timeout 5 nshm-stat -w -i 1 pci:$G_BDF >/dev/null 2>&1 &); sleep 2; f=/sys/kernel/debug/x86/pat_memtype_list; if [ -r \$f ]; then grep -m1 \"\$a\" \$f || echo \"BAR2 \$a not in \$f\"; else echo \"no \$f (PAT off?)\"; fi"
	out=$(vm_exec "$VM" 30 "$cmd" 2>&1) || out="probe failed: $out"
	# "PAT: [mem 0x...-0x...] uncached-minus" -> "uncached-minus ([mem ...])"
	if [[ $out =~ \[mem\ ([^]]*)\]\ (.*)$ ]]; then
		echo "${BASH_REMATCH[2]} (pat_memtype_list: ${BASH_REMATCH[1]})"
	else
		echo "${out:-?}"
	fi
}

# Guest CPU: busy ticks (user nice system irq softirq) from a "cpu ..." line.
vm__busy() {
	local -n _b=$1
	local c u n sy id io irq sirq
	read -r c u n sy id io irq sirq _ <<<"$2"
	[[ $c == cpu ]] || { _b=; return 1; }
	_b=$(((u + n + sy + irq + sirq) * TICK_MS))
}

# What reading the guest's CPU costs (a job's start and end on the console
# under emulation): the median of three runs with nothing between the reads.
vm__baseline() {
	local i a b x y v=()
	for i in 1 2 3; do
		a=$(vm_exec "$VM" 30 "head -1 /proc/stat" 2>/dev/null)
		b=$(vm_exec "$VM" 30 "head -1 /proc/stat; true" 2>/dev/null)
		vm__busy x "$a" && vm__busy y "$b" && v+=($((y - x)))
	done
	G_BASE=0
	((${#v[@]})) && G_BASE=$(printf '%s\n' "${v[@]}" | sort -n | sed -n "$(((${#v[@]} + 1) / 2))p")
	return 0
}

# The guest's busybox has crc32 (zlib's CRC-32, in hex) but no cksum.
crc32_file() {
	python3 -c 'import sys, zlib
c = 0
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        c = zlib.crc32(b, c)
print("%08x" % c)' "$1"
}

# Wait (10 ms steps, bounded by TMO) until guest job ID has ended; return
# its exit status, 255 if the guest died or time ran out.
vm__end() {
	local id=$1 i limit=$((TMO * 100))
	for ((i = 0; i < limit; i++)); do
		grep -aq "@@NSHM-END $id rc=" "$VM/console.log" 2>/dev/null && break
		((i % 50 == 49)) && ! vm_alive "$VM" && return 255
		sleep 0.01
	done
	vm_wait "$VM" "$id" 1 >/dev/null 2>>"$WORK/methods.log"
}

# vm__host CMD...: start the host end of a transfer in the background (its
# pid in $host); the CPU of its processes goes to $WORK/host.times.
vm__host() {
	(
		rc=0
		timeout -k 2 "$TMO" "$@" || rc=$?
		times >>"$WORK/host.times"
		exit $rc
	) 3>&- &
	host=$!
}

# Sum of the children's user+sys lines in $WORK/host.times, in ms.
vm__host_ms() {
	local -n _h=$1
	local u s a b
	_h=0
	[[ -f $WORK/host.times ]] || return 0
	while read -r _ _ && read -r u s; do
		tms_ms a "$u"
		tms_ms b "$s"
		_h=$((_h + a + b))
	done <"$WORK/host.times"
}

VM_NC_SEQ=0
vm__one() { # METHOD NAME BYTES: one timed transfer into $G_DST; returns its status
	local method=$1 name=$2 bytes=$3 src=$WORK/src/$2 id='' host='' rc=0 port
	case $method in
	nshm)
		vm__host "$NSHM_PUT" -q "$src" "$SHM"
		id=$(vm_start "$VM" "nshm-get -q -f -s pci:$G_BDF $G_DST/$name")
		;;
	# Only nshm-put starts: it ends once the guest's resident has verified
	# and placed the file.
	nshm-resident) vm__host "$NSHM_PUT" -q "$src" "$SHM_RES" ;;
	nshm-resident-bell | nshm-resident-kmod) vm__host "$NSHM_PUT" -q "$src" "$SHM_BELL" ;;
	netcat)
		# The host serves the file; the guest pulls it: a refused
		# connect (listener not bound yet) is retried, bounded.
		port=$((VM_NC_PORT + VM_NC_SEQ++ % 50))
		vm__host nc -N -l 127.0.0.1 "$port" <"$src"
		# busybox nc stops at EOF on its stdin, so the socket is handed
		# to cat (-e) instead of nc copying it to stdout.
		id=$(vm_start "$VM" "i=0; until nc 10.0.2.2 $port -e sh -c 'cat >$G_DST/$name'; do i=\$((i+1)); [ \$i -ge 50 ] && exit 1; usleep 20000; done")
		;;
	scp) vm__host "$SCP" "${VM_SCP_OPTS[@]}" "$src" "root@127.0.0.1:$G_DST/$name" ;;
	scp-aes128gcm)
		vm__host "$SCP" "${VM_SCP_OPTS[@]}" -c aes128-gcm@openssh.com "$src" "root@127.0.0.1:$G_DST/$name"
		;;
	hpnscp) vm__host "$HPN/bin/hpnscp" "${VM_HPN_OPTS[@]}" "$src" "root@127.0.0.1:$G_DST/$name" ;;
	hpnscp-none)
		vm__host "$HPN/bin/hpnscp" "${VM_HPN_OPTS[@]}" -o NoneEnabled=yes -o NoneSwitch=yes \
			"$src" "root@127.0.0.1:$G_DST/$name"
		;;
	curl) id=$(vm_start "$VM" "curl-get -q http://10.0.2.2:$HTTP_PORT/ $G_DST $name") ;;
	9p) id=$(vm_start "$VM" "cp /mnt/9a/$name $G_DST/") ;;
	9p-msize512k) id=$(vm_start "$VM" "cp /mnt/9b/$name $G_DST/") ;;
	virtiofs) id=$(vm_start "$VM" "cp /mnt/vfs/$name $G_DST/") ;;
	qemu-ga) vm__host python3 "$BENCH_DIR/vmchan.py" qga "$VM_RUN/qga.sock" "$src" "$G_DST/$name" ;;
	virtio-serial)
		# The guest reads exactly BYTES, then answers one byte on the
		# same port: the host end returns when the guest has it all.
		# Until the host has connected, a read of the port returns end
		# of file at once: the guest retries (10 ms steps, bounded).
		vm__host python3 "$BENCH_DIR/vmchan.py" raw "$VM_RUN/vsp.sock" "$src"
		id=$(vm_start "$VM" "exec 3<>\$(cat /tmp/vsp.dev); i=0; until head -c $bytes <&3 >$G_DST/$name; [ -s $G_DST/$name ]; do i=\$((i+1)); [ \$i -ge 1000 ] && exit 1; usleep 10000; done; printf k >&3")
		;;
	cp) id=$(vm_start "$VM" "cp $G_SRC/$name $G_DST/") ;;
	esac
	if [[ -n $id ]]; then vm__end "$id" || rc=$?; fi
	# The guest end is done; a host end still running is stuck: stop it.
	if [[ -n $host ]]; then
		((rc == 0)) || stop_after "$host" 1
		wait "$host" || rc=1
	fi
	return $rc
}

vm__case() { # CASE NAME BYTES EXPECTED
	local case=$1 name=$2 bytes=$3 expected=$4 run first=0 m t0 t1 rc got status secs note
	local out g0 g1 s0 s1 q0 q1 h hcpu gcpu
	((SMOKE)) && first=1
	VM_SCP_OPTS=(-q -B -F /dev/null -P "$VM_SSH_PORT" -i "$WORK/ssh/user_key"
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
	VM_HPN_OPTS=("${VM_SCP_OPTS[@]}")
	VM_HPN_OPTS[5]=$VM_HPN_PORT # the value after -P
	local qga_max
	qga_max=$(to_bytes "$VM_QGA_MAX")
	for m in "${VM_CASE_METHODS[@]}"; do
		not_built "$m" && record vm "$m" "$case" file "$bytes" 1 1 '' 'not built' '' '' "$HPN_WHY"
		[[ $m == qemu-ga ]] && ((bytes > qga_max)) &&
			record vm "$m" "$case" file "$bytes" 1 1 '' 'not run' '' '' "only up to $VM_QGA_MAX (NSHM_BENCH_QGA_MAX): at about 1.3 MB/s a run would take minutes"
	done
	for ((run = first; run <= VM_RUNS; run++)); do
		for m in "${VM_CASE_METHODS[@]}"; do
			not_built "$m" && continue
			[[ $m == qemu-ga ]] && ((bytes > qga_max)) && continue
			# Untimed: an empty destination; for virtiofs (cache=auto) an
			# empty guest page cache, or later runs would read guest RAM.
			local prep="rm -rf $G_DST && mkdir -p $G_DST" dst=$G_DST
			# A resident keeps its directory (opened once): emptied only.
			[[ $m == nshm-resident* ]] && dst=/tmp/b/res-$m prep+=" && rm -f $dst/*"
			[[ $m == virtiofs ]] && prep+=" && sync && echo 3 >/proc/sys/vm/drop_caches"
			out=$(vm_exec "$VM" 30 "$prep; head -1 /proc/stat" 2>/dev/null)
			vm__busy g0 "$out" || g0=
			rm -f "$WORK/host.times"
			servers_ms s0 start
			qemu_io_ms q0 "$QEMU_PID"
			rc=0
			now_us t0
			vm__one "$m" "$name" "$bytes" >>"$WORK/methods.log" 2>&1 || rc=$?
			now_us t1
			servers_quiet
			servers_ms s1
			qemu_io_ms q1 "$QEMU_PID"
			got= g1=
			if ((rc == 0)); then
				out=$(vm_exec "$VM" 120 "head -1 /proc/stat; crc32 <$dst/$name" 2>/dev/null) || out=
				vm__busy g1 "${out%%$'\n'*}" || g1=
				got=${out##*$'\n'}
			fi
			if ((rc != 0)); then
				status=failed note="exit $rc"
				echo "vm run $run of $m/$case: exit $rc" >>"$WORK/methods.log"
				# A resident's own words, and the line as it is now.
				[[ $m == nshm-resident* ]] && vm_exec "$VM" 30 "cat /tmp/res-$m.err; nshm-stat pci:$(vm__res_bdf "$m")" \
					>>"$WORK/methods.log" 2>&1
			elif [[ $got != "$expected" ]]; then
				status=mismatch note="checksum mismatch"
				echo "vm run $run of $m/$case: checksum '$got', want '$expected'" >>"$WORK/methods.log"
				vm_exec "$VM" 30 "ls -la $dst; crc32 <$dst/$name" >>"$WORK/methods.log" 2>&1
				[[ $m == nshm-resident* ]] && vm_exec "$VM" 30 "cat /tmp/res-$m.err" >>"$WORK/methods.log" 2>&1
			else
				status=ok note=
			fi
			hcpu= gcpu=
			if [[ $status == ok ]]; then
				vm__host_ms h
				hcpu=$((h + s1 - s0 + q1 - q0))
				# QEMU's total and its vCPU threads are read a moment
				# apart: a few ms below zero is that, not a figure.
				((hcpu < 0)) && hcpu=0
				if [[ -n $g0 && -n $g1 ]]; then
					gcpu=$((g1 - g0 - G_BASE))
					((gcpu < 0)) && gcpu=0
				fi
			fi
			printf -v secs '%d.%06d' $(((t1 - t0) / 1000000)) $(((t1 - t0) % 1000000))
			record vm "$m" "$case" file "$bytes" 1 "$run" "$secs" "$status" "$hcpu" "$gcpu" "$note"
			vm_alive "$VM" || { log "vm: the guest died"; return 1; }
		done
	done
}
