#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# Manual pages and shell completions: lint, the options of each page
# against the program's --help, libnshm(3) against lib/nshm.h, and the
# completions of bash, zsh and fish driven for real.
#
# The option and exit-status checks are themselves checked on doctored
# copies, so that they cannot pass by parsing nothing.

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
BIN=${NSHM_BIN:-$ROOT/build}
MAN=$ROOT/man
COMP=$ROOT/completions
PROGS=(nshm-put nshm-get nshm-stat)
MY_PAGES=(nshm-put.1 nshm-get.1 nshm-stat.1 nshm-server.8 libnshm.3)

setup() {
	T=$BATS_TEST_TMPDIR
	SHM=nshm-docs-$$-$BATS_TEST_NUMBER
	PCI=0000:00:04.0
	# fish and zsh must not write into the user's home.
	export HOME=$T/home XDG_CONFIG_HOME=$T/home/.config XDG_DATA_HOME=$T/home/.local/share
	mkdir -p "$HOME"
}

teardown() {
	rm -f "/dev/shm/$SHM"
}

need_programs() {
	local p
	for p in "${PROGS[@]}"; do
		[ -x "$BIN/$p" ] || { echo "$BIN/$p is missing: run make" >&2; return 1; }
	done
}

# ---------------------------------------------------------------- parsing

# render PAGE: plain text, no overstrike.
render() {
	mandoc -Tascii -Owidth=100 "$1" | sed 's/.\x08//g'
}

# section PAGE NAME: the body of section NAME of the rendered PAGE.
section() {
	render "$1" | awk -v want="$2" '
		/^[A-Z][A-Z ]*$/ { on = ($0 == want); next }
		on { print }'
}

# tokens: the option names (-x, --long) in the tag parts on stdin.
tokens() {
	sed -E 's/^ +//; s/  .*//' | grep -oE '(^|[ ,])--?[[:alnum:]][[:alnum:]-]*' |
		tr -d ' ,' | LC_ALL=C sort -u
}

# help_options HELPFILE: options listed by --help (lines that start with
# blanks and a dash; the tag ends at the first run of two blanks).
help_options() {
	grep -E '^ +-' "$1" | tokens
}

# man_options PAGE: the tags of the OPTIONS list (lines at the indentation
# of the section's first line).
man_options() {
	section "$1" OPTIONS | awk '
		NF && !ind { match($0, /^ */); ind = RLENGTH }
		NF { match($0, /^ */); if (RLENGTH == ind && $1 ~ /^-/) print }' | tokens
}

# same_options HELPFILE PAGE: the two sets are equal, else say how not.
same_options() {
	local h=$T/help.opts m=$T/man.opts
	help_options "$1" >"$h"
	man_options "$2" >"$m"
	if [ ! -s "$h" ] || [ ! -s "$m" ]; then
		echo "no options parsed from $1 or $2" >&2
		return 1
	fi
	diff -u --label "--help" --label "${2##*/} OPTIONS" "$h" "$m" >&2
}

# help_exits HELPFILE: "CODE TEXT" lines from the "Exit status:" paragraph.
help_exits() {
	printf '%s\n' "$(sed -n '/^Exit status:/,/^$/p' "$1" | tr '\n' ' ' |
		sed -E 's/^Exit status: *//; s/\. *$//; s/, +/\n/g' | sed -E 's/ +$//')"
}

# man_exits PAGE: "CODE TEXT" lines of the EXIT STATUS list.
man_exits() {
	section "$1" "EXIT STATUS" | sed -nE 's/^ +([0-9]+) +(.*)$/\1 \2/p'
}

# same_exits HELPFILE PAGE: the same codes, each page text starting with
# the --help text.
same_exits() {
	local line code text got n=0
	while IFS= read -r line; do
		code=${line%% *} text=${line#* }
		got=$(man_exits "$2" | sed -n "s/^$code //p")
		if [[ -z $got || $got != "$text"* ]]; then
			echo "exit status $code: --help says '$text', ${2##*/} says '$got'" >&2
			return 1
		fi
		n=$((n + 1))
	done < <(help_exits "$1")
	if [ "$n" -eq 0 ] || [ "$n" -ne "$(man_exits "$2" | wc -l)" ]; then
		echo "exit codes: $n in --help, $(man_exits "$2" | wc -l) in ${2##*/}" >&2
		return 1
	fi
}

# lint PAGE: mandoc has nothing to say at warning level or above.
lint() {
	local out
	out=$(mandoc -Tlint -Wwarning "$1" 2>&1) || { echo "$out" >&2; return 1; }
	[ -z "$out" ] || { echo "$out" >&2; return 1; }
}

# leaks PAGE: no mdoc macro shows in the rendered text. mandoc -Tlint says
# nothing when a macro lands on the end of another's line (".Fn f ..It Ev X"
# renders "f(..It) X"): the macro name is then text after a dot.
leaks() {
	local out
	out=$(render "$1" | grep -nE '(^|[^[:alnum:]_])\.(Ad|Ar|Bd|Bl|Bq|Cm|Dq|Dv|Ed|El|Em|Er|Ev|Fa|Fl|Fn|Ft|Ic|In|It|Li|Lk|Mt|Nd|Nm|No|Ns|Op|Pa|Pc|Pf|Po|Pp|Pq|Ql|Qq|Sh|Sq|Ss|Sx|Sy|Ta|Va|Vt|Xr)([^[:alnum:]]|$)' || true)
	[ -z "$out" ] || { echo "${1##*/}: a macro leaked into the text:" >&2; echo "$out" >&2; return 1; }
}

# versions_agree HEADER PAGE...: every library version (x.y.z) and protocol
# version the rendered pages state is the one HEADER (lib/nshm.h) defines.
versions_agree() {
	local h=$1 lib proto p txt v n=0
	shift
	lib=$(sed -nE 's/^#define NSHM_LIB_VERSION "([0-9.]+)"$/\1/p' "$h")
	proto=$(sed -nE 's/^#define NSHM_PROTOCOL_VERSION ([0-9]+)$/\1/p' "$h")
	if [ -z "$lib" ] || [ -z "$proto" ]; then
		echo "no NSHM_LIB_VERSION or NSHM_PROTOCOL_VERSION in $h" >&2
		return 1
	fi
	for p in "$@"; do
		txt=$(render "$p" | tr -s ' \n' '  ')
		for v in $(grep -oE '(^|[^.[:alnum:]])[0-9]+\.[0-9]+\.[0-9]+([^.[:alnum:]]|$)' <<<"$txt" |
			grep -oE '[0-9]+\.[0-9]+\.[0-9]+'); do
			[ "$v" = "$lib" ] || { echo "${p##*/}: library version $v, nshm.h: $lib" >&2; return 1; }
			n=$((n + 1))
		done
		for v in $(grep -oE 'protocol version,? [0-9]+|protocol it speaks, [0-9]+' <<<"$txt" |
			grep -oE '[0-9]+$'); do
			[ "$v" = "$proto" ] || { echo "${p##*/}: protocol version $v, nshm.h: $proto" >&2; return 1; }
			n=$((n + 1))
		done
	done
	# libnshm(3) states both, nshm(7) the protocol's twice.
	[ "$n" -ge 4 ] || { echo "only $n version statements found" >&2; return 1; }
}

# limits_agree LAYOUT PAGEDIR: the slot and chunk limits the pages state are
# those of LAYOUT (lib/proto/layout.h, which asserts them against nshm(7)'s
# numbers; cmd/nshm-put.c repeats them in its option checks).
limits_agree() {
	local slots min max mib txt p phrase
	slots=$(sed -nE 's/^#define NSHM_MAX_SLOTS +([0-9]+)u?.*/\1/p' "$1")
	min=$(sed -nE 's/^#define NSHM_MIN_CHUNK +([0-9]+)u?.*/\1/p' "$1")
	max=$(sed -nE 's/^#define NSHM_MAX_CHUNK +\(([0-9]+)u? << 20\).*/\1/p' "$1")
	if [ -z "$slots" ] || [ -z "$min" ] || [ -z "$max" ]; then
		echo "no NSHM_MAX_SLOTS, NSHM_MIN_CHUNK or NSHM_MAX_CHUNK (MiB << 20) in $1" >&2
		return 1
	fi
	while IFS='|' read -r p phrase; do
		txt=$(render "$2/$p" | tr -s ' \n' '  ')
		grep -qF -- "$phrase" <<<"$txt" || { echo "$p does not say: $phrase" >&2; return 1; }
	done <<-EOF
	nshm.7|N, number of slots (1 to $slots)
	nshm.7|C, chunk size (a multiple of $min, $min to $max MiB)
	nshm.7|N from 1 to $slots, C a multiple of $min from $min to $max MiB
	libnshm.3|slots (at most $slots) of chunk bytes, a multiple of $min up to $max MiB
	nshm-put.1|n slots, 1 to $slots (default 2)
	nshm-put.1|a multiple of $((min / 1024))K from $((min / 1024))K to ${max}M
	EOF
}

# ------------------------------------------------------------------ pages

@test "man pages: all present, and mandoc -Tlint -Wwarning has nothing to say" {
	local p
	for p in "${MY_PAGES[@]}"; do
		[ -f "$MAN/$p" ] || { echo "man/$p is missing" >&2; return 1; }
	done
	for p in "$MAN"/*.[1-9]; do
		lint "$p"
		leaks "$p"
	done
}

@test "man pages: the leak check catches two macros fused on one line" {
	sed 's/^\.Fn nshm_rx_to_fd \.$/.Fn nshm_rx_to_fd ..It Ev NSHM_CRC/' \
		"$MAN/libnshm.3" >"$T/bad.3"
	not cmp -s "$MAN/libnshm.3" "$T/bad.3"
	lint "$T/bad.3"
	run leaks "$T/bad.3"
	[ "$status" -ne 0 ]
	[[ $output == *"(..It)"* ]]
}

@test "man pages: the versions they state are lib/nshm.h's" {
	versions_agree "$ROOT/lib/nshm.h" "$MAN"/*.[1-9]
	# Doctored: nshm.h moves on and the pages do not.
	sed 's/^#define NSHM_PROTOCOL_VERSION .*/#define NSHM_PROTOCOL_VERSION 7/' \
		"$ROOT/lib/nshm.h" >"$T/proto.h"
	run versions_agree "$T/proto.h" "$MAN"/*.[1-9]
	[ "$status" -ne 0 ]
	[[ $output == *"protocol version"* ]]
	sed 's/^#define NSHM_LIB_VERSION .*/#define NSHM_LIB_VERSION "9.8.7"/' \
		"$ROOT/lib/nshm.h" >"$T/lib.h"
	run versions_agree "$T/lib.h" "$MAN"/*.[1-9]
	[ "$status" -ne 0 ]
	[[ $output == *"library version"* ]]
}

@test "man pages: the slot and chunk limits they state are lib/nshm.h's" {
	limits_agree "$ROOT/lib/nshm.h" "$MAN"
	sed 's/^#define NSHM_MAX_SLOTS .*/#define NSHM_MAX_SLOTS 32u/' "$ROOT/lib/nshm.h" >"$T/nshm.h"
	run limits_agree "$T/nshm.h" "$MAN"
	[ "$status" -ne 0 ]
	[[ $output == *"1 to 32"* ]]
}

@test "man pages: nshm(7) lints clean" {
	[ -f "$MAN/nshm.7" ] || skip "man/nshm.7 not written yet"
	lint "$MAN/nshm.7"
}

@test "man pages: the lint check catches a broken page" {
	sed 's/^\.Sh EXIT STATUS$/.Sh EXIT STATUS\n.Xx nonsense/; s/^\.Os$//' \
		"$MAN/nshm-put.1" >"$T/bad.1"
	run lint "$T/bad.1"
	[ "$status" -ne 0 ]
	[[ $output == *WARNING* || $output == *ERROR* ]]
}

@test "man pages: every option of --help is documented, and only those" {
	need_programs
	local p
	for p in "${PROGS[@]}"; do
		"$BIN/$p" --help >"$T/$p.help"
		same_options "$T/$p.help" "$MAN/$p.1"
	done
}

@test "man pages: the option check fails on a missing, extra or renamed option" {
	need_programs
	"$BIN/nshm-get" --help >"$T/help"
	grep -q -- '--force' "$T/help"
	same_options "$T/help" "$MAN/nshm-get.1"
	# The page loses -f/--force.
	grep -v '^\.It Fl f , Fl \\-force$' "$MAN/nshm-get.1" >"$T/nshm-get.1"
	not cmp -s "$MAN/nshm-get.1" "$T/nshm-get.1"
	run same_options "$T/help" "$T/nshm-get.1"
	[ "$status" -ne 0 ]
	[[ $output == *"-f"* && $output == *"--force"* ]]
	# --help gains an option the page lacks.
	{ cat "$T/help"; echo "  -Z, --zzz-new           something new"; } >"$T/help2"
	run same_options "$T/help2" "$MAN/nshm-get.1"
	[ "$status" -ne 0 ]
	[[ $output == *"--zzz-new"* ]]
	# The page names an option that does not exist.
	sed 's/^\.It Fl \\-json$/.It Fl \\-jsonx/' "$MAN/nshm-get.1" >"$T/nshm-get.1"
	run same_options "$T/help" "$T/nshm-get.1"
	[ "$status" -ne 0 ]
	[[ $output == *"--jsonx"* ]]
}

@test "man pages: no page mentions a long option that no program has" {
	need_programs
	local p o all=$T/all.opts
	for p in "${PROGS[@]}" nshm-server; do
		"$BIN/$p" --help >"$T/$p.help"
		help_options "$T/$p.help"
	done | LC_ALL=C sort -u >"$all"
	for p in "${PROGS[@]}"; do
		# Outside EXAMPLES, where other tools' options (tar, pkg-config) live.
		for o in $(render "$MAN/$p.1" | sed '/^EXAMPLES$/,/^[A-Z][A-Z ]*$/d' |
			grep -oE '(^|[^[:alnum:]-])--[[:alpha:]][[:alnum:]-]*' | grep -oE -- '--.*'); do
			grep -qx -- "$o" "$all" || { echo "$p.1 mentions $o" >&2; return 1; }
		done
		# In EXAMPLES, each nshm program's command line has its own options.
		render "$MAN/$p.1" | sed -n '/^EXAMPLES$/,/^[A-Z][A-Z ]*$/p' |
			grep -oE 'nshm-(put|get|stat)( [^|]*)?' >"$T/examples"
		[ -s "$T/examples" ]
		while read -r prog args; do
			for o in $(grep -oE '(^| )--?[[:alpha:]][[:alnum:]-]*' <<<" $args"); do
				help_options "$T/$prog.help" | grep -qx -- "$o" ||
					{ echo "$p.1: example $prog $args: no $o" >&2; return 1; }
			done
		done <"$T/examples"
	done
}

@test "man pages: EXIT STATUS lists the codes of --help" {
	need_programs
	local p
	for p in "${PROGS[@]}"; do
		"$BIN/$p" --help >"$T/$p.help"
		[ "$(help_exits "$T/$p.help" | wc -l)" -ge 3 ]
		same_exits "$T/$p.help" "$MAN/$p.1"
	done
	# Doctored: a code the page lacks is caught.
	sed '/^\.It 130$/,+1d' "$MAN/nshm-put.1" >"$T/nshm-put.1"
	run same_exits "$T/nshm-put.help" "$T/nshm-put.1"
	[ "$status" -ne 0 ]
}

@test "man pages: sections, endpoints, environment and the QEMU/libvirt examples" {
	local p txt
	for p in "${PROGS[@]}"; do
		txt=$(render "$MAN/$p.1")
		for s in NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT "EXIT STATUS" EXAMPLES "SEE ALSO"; do
			grep -qx "$s" <<<"$txt" || { echo "$p.1: no $s section" >&2; return 1; }
		done
		# Root paths read no environment: pci endpoints are always /sys's.
		! section "$MAN/$p.1" ENVIRONMENT | grep -q NSHM_SYSFS_ROOT
		section "$MAN/$p.1" "SEE ALSO" | grep -q 'nshm(7)'
		section "$MAN/$p.1" "SEE ALSO" | grep -q 'libnshm(3)'
		for s in 'pci:DDDD:BB:DD.F' '/dev/shm/NAME'; do
			grep -qF -- "$s" <<<"$txt" || { echo "$p.1: no $s" >&2; return 1; }
		done
		local ex
		ex=$(section "$MAN/$p.1" EXAMPLES | tr -s ' \n' ' ')
		for s in '-object memory-backend-file,id=hm,size=64M,mem-path=/dev/shm/vm1,share=on' \
			'-device ivshmem-plain,memdev=hm' \
			"<shmem name='vm1'><model type='ivshmem-plain'/><size unit='M'>64</size></shmem>" \
			'nshm-put file.iso vm1' '# nshm-get /tmp' '# nshm-put f pci' \
			'nshm-get --source vm1 DEST'; do
			grep -qF -- "$s" <<<"$ex" || { echo "$p.1 EXAMPLES: no $s" >&2; return 1; }
		done
	done
	section "$MAN/libnshm.3" "SEE ALSO" | grep -q 'nshm(7)'
	section "$MAN/libnshm.3" EXAMPLES | grep -q nshm_tx_write
}

@test "nshm-server(8): options and exit statuses of --help, sections, the QEMU/libvirt examples" {
	need_programs
	local p=$MAN/nshm-server.8 txt s
	"$BIN/nshm-server" --help >"$T/server.help"
	same_options "$T/server.help" "$p"
	same_exits "$T/server.help" "$p"
	txt=$(render "$p")
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT FILES "EXIT STATUS" EXAMPLES "SEE ALSO"; do
		grep -qx "$s" <<<"$txt" || { echo "nshm-server.8: no $s section" >&2; return 1; }
	done
	section "$p" ENVIRONMENT | tr -s ' \n' ' ' | grep -q 'reads no environment variable'
	section "$p" "SEE ALSO" | grep -q 'nshm(7)'
	txt=$(section "$p" EXAMPLES | tr -s ' \n' ' ')
	for s in '-chardev socket,path=/run/nshm/vm1.sock,id=ivs' \
		'-device ivshmem-doorbell,chardev=ivs,vectors=2' \
		"<shmem name='vm1'><model type='ivshmem-doorbell'/> <server path='/run/nshm/vm1.sock'/><msi vectors='2'/></shmem>"; do
		grep -qF -- "$s" <<<"$txt" || { echo "nshm-server.8 EXAMPLES: no $s" >&2; return 1; }
	done
	# --help shows the same device line.
	grep -qF 'ivshmem-doorbell,chardev=ivs,vectors=2' "$T/server.help"
}

@test "completions: nshm-server's options in bash, zsh and fish; NAME is a shm object" {
	need_programs
	fake_endpoints
	local o
	"$BIN/nshm-server" --help >"$T/server.help"
	source "$COMP/nshm.bash"
	bash_complete nshm-server -
	for o in $(help_options "$T/server.help"); do has "$o"; done
	bash_complete nshm-server ''
	has "$SHM"; lacks pci; lacks "pci:$PCI"
	bash_complete nshm-server --vectors ''
	[ "${#COMPREPLY[@]}" -eq 0 ]
	run zsh_complete 'nshm-server -'
	for o in $(help_options "$T/server.help"); do
		grep -qx -- "$o" <<<"$output" || { echo "zsh: nshm-server $o not offered" >&2; return 1; }
	done
	run fish_complete 'nshm-server -'
	for o in $(help_options "$T/server.help"); do
		grep -qx -- "$o" <<<"$output" || { echo "fish: nshm-server $o not offered" >&2; return 1; }
	done
	run fish_complete 'nshm-server '
	grep -qx "$SHM" <<<"$output"
	not grep -qx pci <<<"$output"
}

@test "libnshm(3): every function, type, code and flag of nshm.h, and nothing else" {
	local h=$ROOT/lib/nshm.h src=$MAN/libnshm.3 txt n f
	txt=$(render "$src")
	n=0
	for f in $(sed -nE 's/^NSHM_API[^(]*[ *](nshm_[a-z0-9_]+)\(.*/\1/p' "$h"); do
		grep -qE "^\.Fn $f( |$)" "$src" || { echo "no .Fn $f synopsis" >&2; return 1; }
		grep -qE "^\.Nm $f( ,)?$" "$src" || { echo "$f is not in NAME" >&2; return 1; }
		n=$((n + 1))
	done
	[ "$n" -ge 30 ]
	for f in $(grep -oE '^\.Fn nshm_[a-z0-9_]+' "$src" | cut -d' ' -f2 | sort -u); do
		grep -qE "^NSHM_API[^(]*[ *]$f\(" "$h" || { echo "$f is not in nshm.h" >&2; return 1; }
	done
	for f in $(grep -oE '\b(NSHM_E[A-Z]+|NSHM_R_[A-Z]+|NSHM_MAP_[A-Z]+|NSHM_EXTRACT_[A-Z]+|NSHM_P_[A-Z_]+|NSHM_REQ_[A-Z_]+|NSHM_[A-Z_]*VERSION)\b' "$h" |
		grep -v '^NSHM_EBASE$' | sort -u) \
		$(grep -oE '^(struct|enum) nshm_[a-z_]+ \{|^typedef [^;]*\b(nshm_[a-z_]+)\)' "$h" |
			grep -oE 'nshm_[a-z_]+' | sort -u); do
		grep -qw -- "$f" <<<"$txt" || { echo "libnshm(3) does not mention $f" >&2; return 1; }
	done
}

@test "libnshm(3): the examples compile against lib/nshm.h" {
	command -v cc >/dev/null || skip "no C compiler"
	# The full program: from its first #include to the closing brace.
	awk '/^#include <stdio.h>$/ { on = 1 } on { print } on && /^}$/ { exit }' \
		"$MAN/libnshm.3" | sed 's/\\e/\\/g' >"$T/send.c"
	grep -q nshm_tx_end "$T/send.c"
	cc -std=c11 -Wall -Wextra -Werror -I"$ROOT/lib" -c -o "$T/send.o" "$T/send.c"
	# The receiving fragment, inside a function.
	{
		echo '#include <nshm.h>'
		echo 'int f(struct nshm_region *r, int fd);'
		echo 'int f(struct nshm_region *r, int fd) {'
		awk '/^Receive one file/ { want = 1 } want && /^\.Bd/ { on = 1; next }
			on && /^\.Ed/ { exit } on { print }' "$MAN/libnshm.3"
		echo 'return rc; }'
	} >"$T/recv.c"
	grep -q nshm_rx_begin "$T/recv.c"
	cc -std=c11 -Wall -Wextra -Werror -I"$ROOT/lib" -c -o "$T/recv.o" "$T/recv.c"
}

# ------------------------------------------------------------ completions

# A /dev/shm object, and a fake sysfs with one ivshmem device and one other.
fake_endpoints() {
	truncate -s 64K "/dev/shm/$SHM"
	local d=$T/sys/bus/pci/devices
	mkdir -p "$d/$PCI" "$d/0000:00:01.0"
	echo 0x1af4 >"$d/$PCI/vendor"
	echo 0x1110 >"$d/$PCI/device"
	echo 0x8086 >"$d/0000:00:01.0/vendor"
	echo 0x1237 >"$d/0000:00:01.0/device"
	export NSHM_SYSFS_ROOT=$T/sys
	mkdir -p "$T/cwd/somedir"
	touch "$T/cwd/somefile"
	cd "$T/cwd"
}

# bash_complete WORD...: run the bash completion for the command line
# WORD... (the last one being completed), as bash splits it.
bash_complete() {
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_nshm "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
}

# not CMD...: CMD fails (a bare "! CMD" never fails a bats test).
not() {
	if "$@"; then
		echo "unexpectedly true: $*" >&2
		return 1
	fi
	return 0
}

has() {
	local w
	for w in "${COMPREPLY[@]}"; do
		[ "$w" = "$1" ] && return 0
	done
	echo "'$1' is not among: ${COMPREPLY[*]}" >&2
	return 1
}

lacks() {
	local w
	for w in "${COMPREPLY[@]}"; do
		[ "$w" != "$1" ] || { echo "'$1' offered: ${COMPREPLY[*]}" >&2; return 1; }
	done
}

@test "completions: bash, zsh and fish files parse" {
	bash -n "$COMP/nshm.bash"
	zsh -n "$COMP/_nshm"
	local f n=0
	for f in "$COMP"/nshm-*.fish; do
		fish --no-execute "$f"
		n=$((n + 1))
	done
	[ "$n" -eq 4 ]
}

@test "completions (bash): options, endpoints, pci devices, files, --map" {
	fake_endpoints
	source "$COMP/nshm.bash"
	[[ $(complete -p nshm-put) == *"-F _nshm"* ]]

	bash_complete nshm-put --
	has --name; has --peer-timeout; has --json; lacks -n

	# TARGET: shm objects (names only), pci, ivshmem devices only; files.
	bash_complete nshm-put somefile ''
	has "$SHM"; has pci; has "pci:$PCI"; lacks pci:0000:00:01.0; lacks "/dev/shm/$SHM"
	has somefile
	bash_complete nshm-put -n name --chunk 1M somefile "${SHM:0:12}"
	has "$SHM"
	# The first operand is a FILE, not an endpoint.
	bash_complete nshm-put ''
	has somefile; lacks pci
	bash_complete nshm-put --map ''
	[ "${COMPREPLY[*]}" = "uc wc wb" ]
	bash_complete nshm-put --map = w
	[ "${COMPREPLY[*]}" = "wc wb" ]

	bash_complete nshm-get -s ''
	has "$SHM"; has pci; has "pci:$PCI"; lacks somefile
	bash_complete nshm-get --source = p
	has pci; has "pci:$PCI"
	bash_complete nshm-get -s "$SHM" ''
	has somefile; has somedir; lacks pci
	bash_complete nshm-get -
	has -p; has --preserve-owner; has -s

	bash_complete nshm-stat ''
	has "$SHM"; has pci; has "pci:$PCI"; lacks somefile
	bash_complete nshm-stat -i 1 ''
	has pci
	bash_complete nshm-stat pci ''
	[ "${#COMPREPLY[@]}" -eq 0 ]
	# bash splits pci:0000:00:04.0 at ':' and replaces only the last piece.
	bash_complete nshm-stat pci :
	has "$PCI"
	bash_complete nshm-stat pci : 0000 : 00 : 0
	has 04.0
}

@test "completions (bash): every option of --help is offered" {
	need_programs
	fake_endpoints
	source "$COMP/nshm.bash"
	local p o
	for p in "${PROGS[@]}"; do
		"$BIN/$p" --help >"$T/$p.help"
		bash_complete "$p" -
		for o in $(help_options "$T/$p.help"); do
			has "$o"
		done
	done
}

@test "completions (bash): loaded by bash-completion from its completions dir" {
	[ -f /usr/share/bash-completion/bash_completion ] || skip "bash-completion not installed"
	fake_endpoints
	mkdir -p "$T/share/bash-completion/completions"
	cp "$COMP/nshm.bash" "$T/share/bash-completion/completions/nshm-stat"
	run env XDG_DATA_DIRS="$T/share" BASH_COMPLETION_USER_DIR="$T/none" bash -c '
		source /usr/share/bash-completion/bash_completion
		__load_completion nshm-stat || exit 9
		complete -p nshm-stat
		COMP_WORDS=(nshm-stat ""); COMP_CWORD=1; COMP_LINE="nshm-stat "; COMP_POINT=10
		_nshm nshm-stat "" nshm-stat
		printf "<%s>\n" "${COMPREPLY[@]}"
		COMP_WORDS=(nshm-stat -); COMP_CWORD=1; COMP_LINE="nshm-stat -"; COMP_POINT=11
		_nshm nshm-stat - nshm-stat
		printf "<%s>\n" "${COMPREPLY[@]}"'
	[ "$status" -eq 0 ]
	[[ $output == *"-F _nshm nshm-stat"* ]]
	[[ $output == *"<$SHM>"* && $output == *"<pci:$PCI>"* && $output == *"<--watch>"* ]]
}

# zsh_complete LINE: the matches zsh offers for LINE<TAB>, one a line, as
# the completion system (compinit, _arguments) produces them in a pty.
zsh_complete() {
	cat >"$T/zinit.zsh" <<-'EOF'
	PROMPT=
	fpath=($NSHM_COMPDIR $fpath)
	autoload -U compinit && compinit -u -D
	bindkey '^I' complete-word
	bindkey '^M' undefined
	bindkey '^J' undefined
	zstyle ':completion:*' list-grouped false
	zstyle ':completion:*' insert-tab false
	_nshm_test_mark() { print -r -- '@@MARK@@' }
	compprefuncs=(_nshm_test_mark)
	comppostfuncs=(_nshm_test_mark exit)
	compadd() {
	  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
	    builtin compadd "$@"
	    return
	  fi
	  local -a __hits
	  builtin compadd -O __hits "$@"
	  local h
	  for h in $__hits; do print -r -- "@@HIT@@ $IPREFIX$h"; done
	  builtin compadd "$@"
	}
	print -r -- '@@READY@@'
	EOF
	cat >"$T/zrun.zsh" <<-'EOF'
	zmodload zsh/zpty || exit 9
	zpty z zsh -f -i
	zpty -w z "source ${(q)1}"
	zpty -r -m z line '*@@READY@@*' || exit 8
	zpty -w -n z "$2"$'\t'
	out=
	while zpty -r z line; do out+=$line; done
	print -r -- ${(F)${${(M)${(f)out//$'\r'/}:#@@HIT@@ *}#@@HIT@@ }}
	EOF
	NSHM_COMPDIR=$COMP timeout 20 zsh -f "$T/zrun.zsh" "$T/zinit.zsh" "$1"
}

# offers_endpoints SHELL: after a file, nshm-put is offered the endpoints
# (the region, pci, this PCI device and no other) and files; as its first
# word only files. SHELL_complete is the completer.
offers_endpoints() {
	run "$1_complete" 'nshm-put somefile '
	[ "$status" -eq 0 ]
	grep -qx "$SHM" <<<"$output"
	grep -qx pci <<<"$output"
	grep -qx "pci:$PCI" <<<"$output"
	not grep -qx pci:0000:00:01.0 <<<"$output"
	grep -qx somefile <<<"$output"
	run "$1_complete" 'nshm-put '
	grep -qx somefile <<<"$output"
	not grep -qx pci <<<"$output"
}

# offers_every_option SHELL: "PROG -" is offered every option of PROG --help.
offers_every_option() {
	local p o
	for p in "${PROGS[@]}"; do
		"$BIN/$p" --help >"$T/$p.help"
		run "$1_complete" "$p -"
		for o in $(help_options "$T/$p.help"); do
			grep -qx -- "$o" <<<"$output" || { echo "$1: $p $o not offered" >&2; return 1; }
		done
	done
}

@test "completions (zsh): options, endpoints, pci devices, files, --map" {
	need_programs
	fake_endpoints
	offers_endpoints zsh
	run zsh_complete 'nshm-get --source '
	grep -qx "$SHM" <<<"$output"
	grep -qx "pci:$PCI" <<<"$output"
	run zsh_complete 'nshm-stat pci:'
	[ "$output" = "pci:$PCI" ]
	run zsh_complete 'nshm-stat --map '
	[ "$(echo $output)" = "uc wc wb" ]
	offers_every_option zsh
}

# fish_complete LINE: what fish offers for LINE (candidates only).
fish_complete() {
	local prog=${1%% *}
	fish --no-config -c "source ${COMP@Q}/$prog.fish; complete -C ${1@Q}" | cut -f1
}

@test "completions (fish): options, endpoints, pci devices, files, --map" {
	need_programs
	fake_endpoints
	offers_endpoints fish
	run fish_complete 'nshm-get -s '
	grep -qx "$SHM" <<<"$output"
	grep -qx "pci:$PCI" <<<"$output"
	not grep -qx somefile <<<"$output"
	run fish_complete 'nshm-stat '
	grep -qx "pci:$PCI" <<<"$output"
	not grep -qx somefile <<<"$output"
	run fish_complete 'nshm-get --map '
	[ "$(echo $output)" = "uc wb wc" ] # fish sorts
	offers_every_option fish
}
