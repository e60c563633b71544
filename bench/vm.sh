# shellcheck shell=bash
# bench/vm.sh -- the "vm" setting of bench/run (sourced by it, never run alone).
#
# One QEMU guest is booted with every device at once (ivshmem, virtio-net,
# two 9p shares, virtiofs) and every method moves the same host file into the
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
# Timing: wall time on the host from starting both ends to both having ended
# (the guest's end is seen on its console, polled every 10 ms), then the
# destination is checked with busybox crc32 inside the guest (not timed).

VM_METHODS=(nshm netcat scp curl 9p 9p-msize512k virtiofs cp)
VM_MODULES="virtio_pci virtio_net 9pnet_virtio 9p virtiofs"
VM_REGION=${NSHM_BENCH_VM_REGION:-64M}
VM_SSH_PORT=2223
VM_NC_PORT=5900

# Guest-side paths: /tmp/b is a tmpfs of its own for sources and destinations.
G_SRC=/tmp/b/src
G_DST=/tmp/b/dst

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
	return 0
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
	trap '[[ $BASHPID == "$VM_MAIN_PID" ]] && { vm_cleanup; [[ -n ${VFSD_PID:-} ]] && kill "$VFSD_PID" 2>/dev/null; }' EXIT
	if [[ -z ${SCP:-} ]]; then # set by start_sshd in the host setting
		SCP=scp
		command -v hpnscp >/dev/null && SCP=hpnscp
	fi
	vm_require_tools || return 1
	[[ -x /usr/lib/qemu/virtiofsd ]] || log "vm: /usr/lib/qemu/virtiofsd missing: virtiofs will fail"
	vm_run_init || return 1

	local sizes=() list s
	IFS=, read -r -a list <<<"${NSHM_BENCH_VM_SIZES:-1M,16M,64M}"
	((SMOKE)) && list=(1M)
	for s in "${list[@]}"; do sizes+=("$(to_bytes "$s")"); done

	vm__boot || return 1
	local bytes name case expected
	for bytes in "${sizes[@]}"; do
		case=$(human "$bytes")
		name=v$bytes.bin
		log "vm: $case x $RUNS runs"
		"$BIN/mkdata" "$bytes" "$bytes" >"$WORK/src/$name"
		expected=$(crc32_file "$WORK/src/$name")
		# The same generator and seed in the guest: its copy is identical,
		# and no slower transfer is needed to put it there.
		vm_exec "$VM" 120 "mkdata $bytes $bytes >$G_SRC/$name" >/dev/null ||
			log "vm: could not make the guest's source; cp will fail"
		TMO=$((60 + bytes / 2000000)) # emulation: allow 2 MB/s
		vm__case "$case" "$name" "$bytes" "$expected"
		vm_exec "$VM" 30 "rm -f $G_SRC/$name" >/dev/null
		rm -f "$WORK/src/$name"
	done
	vm_shutdown "$VM"
	return 0
}

# Everything a guest needs for every method, in one boot.
vm__boot() {
	local progs
	progs=$(vm_programs) || return 1
	local sftp=/usr/lib/openssh/sftp-server
	# shellcheck disable=SC2086 # two paths without spaces
	vm_initramfs "$VM_RUN/guest.cpio" -m "$VM_MODULES" \
		$progs "$BIN/mkdata" "$BIN/curl-get" /usr/sbin/sshd "$sftp" || return 1

	# The guest's ssh setup travels on a 9p share of its own (the
	# initramfs builder takes programs only): keys, config, accounts.
	local cfg=$WORK/vmcfg
	mkdir -p "$cfg"
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
	printf 'root:x:0:0:root:/tmp:/bin/sh\nsshd:x:100:65534::/run/sshd:/bin/false\n' >"$cfg/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$cfg/group"

	# Settle kvm-or-tcg now: the harness's probe boot would otherwise take
	# the pass-through arguments below and use up virtiofsd's one connection.
	# shellcheck disable=SC2034 # read by lib.sh
	VM_QEMU_EXTRA=()
	vm_accel >/dev/null || return 1

	SHM=$(vm_shm_name bench)
	vm_shm_create "$SHM" "$VM_REGION" || return 1

	# virtiofsd serves one guest and exits when it disconnects.
	local sock=$VM_RUN/vfs.sock
	/usr/lib/qemu/virtiofsd --socket-path="$sock" -o source="$WORK/src" -o cache=auto \
		>"$WORK/virtiofsd.log" 2>&1 &
	VFSD_PID=$!
	local i
	for ((i = 0; i < 100; i++)); do [[ -S $sock ]] && break; sleep 0.05; done

	# shellcheck disable=SC2054 # QEMU's option values are comma-separated
	local extra=(
		-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$VM_SSH_PORT-:22"
		-device virtio-net-pci,netdev=n0
		# Two 9p devices on the same directory: one channel each, one msize each.
		-virtfs "local,path=$WORK/src,mount_tag=h9a,security_model=none,readonly=on"
		-virtfs "local,path=$WORK/src,mount_tag=h9b,security_model=none,readonly=on"
		-virtfs "local,path=$cfg,mount_tag=hcfg,security_model=none,readonly=on"
		# virtiofs needs the guest's RAM shared with virtiofsd.
		-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem
		-chardev "socket,id=vfs,path=$sock" -device vhost-user-fs-pci,chardev=vfs,tag=hvfs
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
grep -E ' (9p|virtiofs) ' /proc/mounts | sed 's/^/mount: /'
true"
	# The command channel takes one line: join the steps with ';'.
	local out
	out=$(vm_exec "$VM" 60 "$(tr '\n' ';' <<<"$setup" | sed 's/;;*/; /g')" 2>&1)
	[[ -n $out ]] && printf 'vm setup: %s\n' "$out" >>"$WORK/methods.log"
	log "vm: booted ($VM_ACCEL)"
	printf 'One guest boot (QEMU %s, accel %s, 512 MiB, Debian kernel %s); every method moves the file into the guest'"'"'s tmpfs. Under tcg (software emulation) compare methods side by side only.\n' \
		"$(qemu-system-x86_64 --version | awk 'NR==1{print $4}')" "$VM_ACCEL" "$(basename "$(vm_kernel_dir)" | sed 's/^linux-image-//')" >"$WORK/vm-note"
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

VM_NC_SEQ=0
vm__one() { # METHOD NAME: one timed transfer into $G_DST; returns its status
	local method=$1 name=$2 src=$WORK/src/$2 id='' host='' rc=0 port
	case $method in
	nshm)
		timeout -k 2 "$TMO" "$NSHM_PUT" -q "$src" "$SHM" 3>&- &
		host=$!
		id=$(vm_start "$VM" "nshm-get -q -f -s pci $G_DST/$name")
		;;
	netcat)
		# The host serves the file; the guest pulls it: a refused
		# connect (listener not bound yet) is retried, bounded.
		port=$((VM_NC_PORT + VM_NC_SEQ++ % 50))
		timeout -k 2 "$TMO" nc -N -l 127.0.0.1 "$port" <"$src" 3>&- &
		host=$!
		# busybox nc stops at EOF on its stdin, so the socket is handed
		# to cat (-e) instead of nc copying it to stdout.
		id=$(vm_start "$VM" "i=0; until nc 10.0.2.2 $port -e sh -c 'cat >$G_DST/$name'; do i=\$((i+1)); [ \$i -ge 50 ] && exit 1; usleep 20000; done")
		;;
	scp)
		timeout -k 2 "$TMO" "$SCP" "${VM_SCP_OPTS[@]}" "$src" "root@127.0.0.1:$G_DST/$name" 3>&- &
		host=$!
		;;
	curl) id=$(vm_start "$VM" "curl-get -q http://10.0.2.2:$HTTP_PORT/ $G_DST $name") ;;
	9p) id=$(vm_start "$VM" "cp /mnt/9a/$name $G_DST/") ;;
	9p-msize512k) id=$(vm_start "$VM" "cp /mnt/9b/$name $G_DST/") ;;
	virtiofs) id=$(vm_start "$VM" "cp /mnt/vfs/$name $G_DST/") ;;
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
	((SMOKE)) && first=1
	VM_SCP_OPTS=(-q -B -F /dev/null -P "$VM_SSH_PORT" -i "$WORK/ssh/user_key"
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
	for ((run = first; run <= RUNS; run++)); do
		for m in "${VM_METHODS[@]}"; do
			# Untimed: an empty destination; for virtiofs (cache=auto) an
			# empty guest page cache, or later runs would read guest RAM.
			local prep="rm -rf $G_DST && mkdir -p $G_DST"
			[[ $m == virtiofs ]] && prep+=" && sync && echo 3 >/proc/sys/vm/drop_caches"
			vm_exec "$VM" 30 "$prep" >/dev/null 2>&1
			rc=0
			now_us t0
			vm__one "$m" "$name" >>"$WORK/methods.log" 2>&1 || rc=$?
			now_us t1
			got=
			if ((rc == 0)); then
				got=$(vm_exec "$VM" 120 "crc32 <$G_DST/$name" 2>/dev/null) || got=
			fi
			if ((rc != 0)); then
				status=failed note="exit $rc"
				echo "vm run $run of $m/$case: exit $rc" >>"$WORK/methods.log"
			elif [[ $got != "$expected" ]]; then
				status=mismatch note="checksum mismatch"
				echo "vm run $run of $m/$case: checksum '$got', want '$expected'" >>"$WORK/methods.log"
			else
				status=ok note=
			fi
			printf -v secs '%d.%06d' $(((t1 - t0) / 1000000)) $(((t1 - t0) % 1000000))
			record vm "$m" "$case" file "$bytes" 1 "$run" "$secs" "$status" "$note"
			vm_alive "$VM" || { log "vm: the guest died"; return 1; }
		done
	done
}
