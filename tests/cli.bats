#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# nshm-put and nshm-get on one host, through a /dev/shm object.
load helpers

setup() { setup_region 4M; }
teardown() { teardown_region; }

# send_and_check SIZE [put options]: SIZE bytes of random data, verified.
send_and_check() {
	local size=$1; shift
	head -c "$size" /dev/urandom >"$T/src"
	mkdir -p "$T/dst"
	bg get "$GET" -q -s "$REGION" --timeout 30 "$T/dst"
	run "$PUT" -q --timeout 30 "$@" "$T/src" "$REGION"
	echo "size $size: nshm-put exited $status: $output"
	[ "$status" -eq 0 ]
	[ "$(wait_rc get)" = 0 ] || { echo "nshm-get: $(cat "$T/get.err")"; false; }
	cmp "$T/src" "$T/dst/src"
}

@test "sizes around the chunk size arrive byte for byte" {
	for size in 0 1 65535 65536 65537 200000; do
		rm -rf "$T/dst"
		send_and_check $size --chunk 64K
	done
}

@test "100 MiB of random data through a 4 MiB region" {
	send_and_check 100M
}

@test "1 GiB through a 64 MiB region" {
	[ -n "${NSHM_SLOW:-}" ] || skip "set NSHM_SLOW=1 (takes a few seconds and 2 GiB of tmpfs)"
	truncate -s 64M /dev/shm/$REGION
	send_and_check 1G
}

@test "receiver first, then sender" {
	head -c 3M /dev/urandom >"$T/src"
	bg get "$GET" -q -s "$REGION" "$T/out"
	region_wait rx-state=1 --timeout-ms 20000    # ready, waiting for a sender
	"$PUT" -q "$T/src" "$REGION"
	[ "$(wait_rc get)" = 0 ]
	cmp "$T/src" "$T/out"
}

@test "sender first, then receiver" {
	head -c 3M /dev/urandom >"$T/src"
	bg put "$PUT" -q "$T/src" "$REGION"
	region_wait tx-claimed --timeout-ms 20000    # claimed, waiting for a receiver
	"$GET" -q -s "$REGION" "$T/out"
	[ "$(wait_rc put)" = 0 ]
	cmp "$T/src" "$T/out"
}

@test "standard input to standard output" {
	head -c 5M /dev/urandom >"$T/src"
	bg get "$GET" -q -s "$REGION" -
	cat "$T/src" | "$PUT" -q --name piped - "$REGION"
	[ "$(wait_rc get)" = 0 ]
	cmp "$T/src" "$T/get.out"
}

@test "a regular file on standard input, partly read: the rest arrives (mapped from an odd offset)" {
	# nshm-put maps a regular file from where its offset stands, 8 MiB
	# at a time: 20 MiB from byte 12345 crosses windows unaligned.
	head -c 20M /dev/urandom >"$T/src"
	bg get "$GET" -q -s "$REGION" "$T/out"
	(dd bs=12345 count=1 of=/dev/null status=none && "$PUT" -q --name rest - "$REGION") <"$T/src"
	[ "$(wait_rc get)" = 0 ]
	tail -c +12346 "$T/src" | cmp - "$T/out"
}

@test "a directory DEST gets the sender's name, mode and mtime" {
	echo hello >"$T/some file"
	chmod 0751 "$T/some file"
	touch -d '2001-02-03 04:05:06' "$T/some file"
	mkdir "$T/in"
	bg get "$GET" -q -s "$REGION" "$T/in"
	"$PUT" -q "$T/some file" "$REGION"
	[ "$(wait_rc get)" = 0 ]
	[ "$(stat -c '%a %Y' "$T/in/some file")" = "$(stat -c '%a %Y' "$T/some file")" ]
	[ -z "$(ls -A "$T/in" | grep -v '^some file$')" ]
}

@test "--json prints one summary object with the checksum" {
	head -c 100000 /dev/urandom >"$T/src"
	bg get "$GET" --json -s "$REGION" "$T/out"
	run "$PUT" --json "$T/src" "$REGION"
	[ "$status" -eq 0 ]
	[ "$(wait_rc get)" = 0 ]
	crc=$(python3 -c 'import zlib,sys; print("%08x" % zlib.crc32(open(sys.argv[1],"rb").read()))' "$T/src")
	[[ $output == *'"bytes":100000'* ]]
	[[ $output == *"\"crc32\":\"$crc\""* ]]
	grep -q "\"crc32\":\"$crc\"" "$T/get.out"
}

@test "an existing file is not replaced without --force" {
	echo new >"$T/src"
	echo old >"$T/out"
	bg get "$GET" -s "$REGION" "$T/out"
	run "$PUT" -q "$T/src" "$REGION"
	[ "$status" -eq 4 ]
	[[ $output == *"exists"* ]]
	[ "$(wait_rc get)" = 4 ]
	grep -q "use --force" "$T/get.err"
	[ "$(cat "$T/out")" = old ]
	bg get2 "$GET" -q -f -s "$REGION" "$T/out"
	"$PUT" -q "$T/src" "$REGION"
	[ "$(wait_rc get2)" = 0 ]
	[ "$(cat "$T/out")" = new ]
}

@test "sender killed with -9 mid-transfer: receiver fails, no file; region reusable" {
	mkdir "$T/dst"
	bg get "$GET" -s "$REGION" "$T/dst"
	( head -c 3M /dev/urandom; sleep 60 ) | "$PUT" --name victim - "$REGION" &
	PIDS+=($!)
	# Some data has reached the temporary file.
	until_true 20 sh -c "find '$T/dst' -name '.nshm-*' -size +0 | grep -q ."
	pkill -9 -f "nshm-put --name victim" 
	[ "$(wait_rc get 30)" = 1 ]
	grep -qi "sender" "$T/get.err"
	[ -z "$(ls -A "$T/dst")" ]
	head -c 1M /dev/urandom >"$T/src"
	bg get2 "$GET" -q -s "$REGION" "$T/dst"
	"$PUT" -q --timeout 20 "$T/src" "$REGION"
	[ "$(wait_rc get2)" = 0 ]
	cmp "$T/src" "$T/dst/src"
}

@test "receiver killed with -9 mid-transfer: sender fails; region reusable" {
	head -c 20M /dev/urandom >"$T/src"
	# A receiver that blocks: its stdout is a pipe nobody reads.
	( "$GET" -s "$REGION" - | sleep 60 ) &
	PIDS+=($!)
	bg put "$PUT" "$T/src" "$REGION"
	until_true 20 pgrep -f "nshm-get -s $REGION -" >/dev/null
	# Mid-transfer: accepted, and blocked writing to the full pipe.
	region_wait rx-state=2 --timeout-ms 20000
	wait_blocked "$(pgrep -f "nshm-get -s $REGION -")" write:1
	pkill -9 -f "nshm-get -s $REGION -"
	[ "$(wait_rc put 30)" = 1 ]
	grep -qi "receiver" "$T/put.err"
	bg get2 "$GET" -q -s "$REGION" --timeout 20 "$T/out"
	"$PUT" -q --timeout 20 "$T/src" "$REGION"
	[ "$(wait_rc get2)" = 0 ]
	cmp "$T/src" "$T/out"
}

@test "a live sender that pauses longer than --peer-timeout is waited for" {
	head -c 1M /dev/urandom >"$T/a"
	head -c 1M /dev/urandom >"$T/b"
	bg get "$GET" -q --peer-timeout 1 -s "$REGION" "$T/out"
	{ cat "$T/a"; sleep 2.5; cat "$T/b"; } | "$PUT" -q --peer-timeout 1 --name p - "$REGION"
	[ "$(wait_rc get)" = 0 ]
	cat "$T/a" "$T/b" | cmp - "$T/out"
}

@test "Ctrl-C of the sender: receiver reports the abort, sender exits 130" {
	mkdir "$T/dst"
	bg get "$GET" -s "$REGION" "$T/dst"
	( head -c 1M /dev/zero; sleep 60 ) | "$PUT" --name slow - "$REGION" 2>"$T/put.err" &
	PIDS+=($!)
	# Mid-stream: accepted, and blocked reading its stalled input.
	region_wait rx-state=2 --timeout-ms 20000
	until_true 20 pgrep -f "nshm-put --name slow" >/dev/null
	wait_blocked "$(pgrep -f "nshm-put --name slow")" read:0 poll
	pkill -INT -f "nshm-put --name slow"
	[ "$(wait_rc get 30)" = 1 ]
	grep -q "aborted" "$T/get.err"
	[ -z "$(ls -A "$T/dst")" ]
}

@test "a missing shm object: exit 3, and the QEMU and libvirt lines to add" {
	run "$GET" -s nshm-no-such-object
	[ "$status" -eq 3 ]
	[[ $output == *"/dev/shm/nshm-no-such-object does not exist"* ]]
	[[ $output == *"memory-backend-file"*"share=on"*"ivshmem-plain"* ]]
	[[ $output == *"<shmem name='nshm-no-such-object'>"* ]]
}

@test "a region too small: exit 3 with the minimum" {
	truncate -s 6000 "$T/small"
	run "$PUT" "$T/small" "$T/small"
	[ "$status" -eq 3 ]
	[[ $output == *"at least 8192"* ]]
	truncate -s 16K /dev/shm/$REGION
	echo x >"$T/src"
	run "$PUT" --slots 4 --chunk 4K "$T/src" "$REGION"
	[ "$status" -eq 3 ]
	[[ $output == *"too small for 4 slots"*"at least 20480"* ]]
}

@test "a region holding something else, or a newer protocol: clear errors" {
	printf 'GARBAGE!' | dd of=/dev/shm/$REGION conv=notrunc status=none
	run "$GET" -s "$REGION" --timeout 1
	[ "$status" -eq 3 ]
	[[ $output == *"not nshm"* ]]
	# Magic "NSHM" and version 9 in the sender's line.
	printf 'NSHM\x09\x00\x00\x00' | dd of=/dev/shm/$REGION conv=notrunc status=none
	run "$GET" -s "$REGION" --timeout 1
	[ "$status" -eq 3 ]
	local ours
	ours=$("$GET" --version | sed -n 's/.*(protocol \([0-9]*\).*/\1/p')
	[[ $output == *"version 9"*"version $ours"* ]]
}

# The fake device trees need the test hooks' build (build/hooks/, -DNSHM_TEST_HOOKS): the
# installed programs read no NSHM_SYSFS_ROOT (they map what sysfs names, as root in guests).
@test "pci endpoints: none, several, or not an ivshmem device" {
	local hget=$BIN/hooks/nshm-get hput=$BIN/hooks/nshm-put
	sys=$T/sys/bus/pci/devices
	mkdir -p "$sys/0000:00:01.0"
	echo 0x8086 >"$sys/0000:00:01.0/vendor"; echo 0x1237 >"$sys/0000:00:01.0/device"
	NSHM_SYSFS_ROOT=$T/sys run "$hget"
	[ "$status" -eq 3 ]
	[[ $output == *"no ivshmem PCI device"* ]]
	for d in 0000:00:04.0 0000:00:05.0; do
		mkdir -p "$sys/$d"; echo 0x1af4 >"$sys/$d/vendor"; echo 0x1110 >"$sys/$d/device"
		truncate -s 1M "$sys/$d/resource2"
	done
	NSHM_SYSFS_ROOT=$T/sys run "$hget"
	[ "$status" -eq 3 ]
	[[ $output == *"2 ivshmem devices"*"pci:0000:00:04.0"*"pci:0000:00:05.0"* ]]
	NSHM_SYSFS_ROOT=$T/sys run "$hget" -s pci:0000:00:01.0
	[ "$status" -eq 3 ]
	[[ $output == *"not an ivshmem device"* ]]
	# A named device is mapped through its resource2 file.
	echo hi >"$T/src"
	NSHM_SYSFS_ROOT=$T/sys bg get "$hget" -q -s pci:0000:00:05.0 "$T/out"
	NSHM_SYSFS_ROOT=$T/sys "$hput" -q "$T/src" pci:0000:00:05.0
	[ "$(wait_rc get)" = 0 ]
	cmp "$T/src" "$T/out"
}

@test "the installed programs ignore NSHM_SYSFS_ROOT: pci is always /sys" {
	sys=$T/sys/bus/pci/devices
	mkdir -p "$sys/0000:00:05.0"
	echo 0x1af4 >"$sys/0000:00:05.0/vendor"; echo 0x1110 >"$sys/0000:00:05.0/device"
	truncate -s 1M "$sys/0000:00:05.0/resource2"
	for p in "$GET" "$PUT"; do
		if [ "$p" = "$GET" ]; then
			NSHM_SYSFS_ROOT=$T/sys run "$p" --timeout 1 -s pci "$T/out"
		else
			NSHM_SYSFS_ROOT=$T/sys run "$p" --timeout 1 "$BATS_TEST_FILENAME" pci
		fi
		echo "$p: $output"
		[ "$status" -ne 0 ]
		[[ $output != *"$T/sys"* ]]
		[[ $output == *"/sys/bus/pci/devices"* || $output == *"ivshmem"* ]]
	done
	[ ! -e "$T/out" ]
	[ "$(head -c 4 "$sys/0000:00:05.0/resource2" | od -An -tx1 | tr -d ' ')" = 00000000 ]
}

@test "a second sender on a busy region gets a clear busy error" {
	echo a >"$T/src"
	bg put "$PUT" "$T/src" "$REGION"
	region_wait tx-claimed --timeout-ms 20000
	run "$PUT" "$T/src" "$REGION"
	[ "$status" -eq 3 ]
	[[ $output == *"busy"* ]]
}

@test "--timeout: no receiver in time exits 5" {
	echo a >"$T/src"
	run "$PUT" --timeout 0.5 "$T/src" "$REGION"
	[ "$status" -eq 5 ]
	[[ $output == *"no receiver appeared"* ]]
	run "$GET" --timeout 0.5 -s "$REGION"
	[ "$status" -eq 5 ]
}

@test "an unsafe name from the sender is refused; nothing outside DEST" {
	echo evil >"$T/src"
	mkdir "$T/dst"
	# nshm-put refuses a name with '/' itself; ".." it offers, and the
	# receiver must refuse it.
	run "$PUT" --name ../escaped "$T/src" "$REGION"
	[ "$status" -eq 2 ]
	bg get "$GET" -s "$REGION" "$T/dst"
	run "$PUT" --name .. "$T/src" "$REGION"
	[ "$status" -ne 0 ]
	[ "$(wait_rc get)" -ne 0 ]
	[ ! -e "$T/escaped" ]
	[ -z "$(ls -A "$T/dst")" ]
}

@test "usage errors exit 2" {
	run "$PUT"
	[ "$status" -eq 2 ]
	run "$PUT" onlyone
	[ "$status" -eq 2 ]
	run "$GET" a b
	[ "$status" -eq 2 ]
	run "$PUT" --chunk 1000 x y
	[ "$status" -eq 2 ]
	run "$GET" --bogus
	[ "$status" -eq 2 ]
	run "$PUT" --map xx a b
	[ "$status" -eq 2 ]
}

@test "permission denied on a region names its owner and what to change" {
	command -v setpriv >/dev/null || skip "setpriv (util-linux) not installed"
	chmod 0600 /dev/shm/$REGION
	cp "$PUT" "$T/nshm-put" && chmod 755 "$T" "$T/nshm-put"
	echo x >"$T/src" && chmod 644 "$T/src"
	run setpriv --reuid=65534 --regid=65534 --clear-groups "$T/nshm-put" "$T/src" "$REGION"
	[ "$status" -eq 3 ]
	[[ $output == *"permission denied (owner root, group root, mode 0600)"* ]]
	[[ $output == *"chmod g+rw /dev/shm/$REGION"* ]]
}

@test "nshm-stat shows an idle region, then a transfer in progress" {
	run "$STAT" "$REGION"
	[ "$status" -eq 0 ]
	[[ $output == *"4194304 bytes, protocol 2"* ]]
	[[ $output == *"sender    (none)"* ]]
	mkdir "$T/dst"
	bg get "$GET" -q -s "$REGION" "$T/dst"
	( head -c 3M /dev/zero; sleep 30 ) | "$PUT" -q --name streaming - "$REGION" &
	PIDS+=($!)
	until_true 20 sh -c "find '$T/dst' -name '.nshm-*' -size +0 | grep -q ."
	run "$STAT" --json "$REGION"
	[ "$status" -eq 0 ]
	[[ $output == *'"name":"streaming"'* ]]
	[[ $output == *'"sender":{"present":true'*'"alive":1,"state":"sending"'* ]]
	[[ $output == *'"receiver":{"present":true'*'"state":"receiving"'* ]]
	bytes=$(sed -n 's/.*"bytes":\([0-9]*\).*/\1/p' <<<"$output")
	[ "$bytes" -gt 0 ]
	run "$STAT" "$REGION"
	[[ $output == *"transfer  streaming: "*" bytes"* ]]
	[[ $output == *"sender    sending, alive"* ]]
	run "$STAT" -s "$REGION"
	[ "$status" -eq 2 ]
}
