#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-2-Clause
# The build's configuration (mk/config.sh, BUILD/config.mk): decided
# when building, not when the Makefile is parsed; recorded in one file that
# every object depends on; a change rebuilds, no change rebuilds nothing.
# Scratch BUILD directories, -O0: about 20 s on 2 busy cores.

ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)

setup() {
	T=$BATS_TEST_TMPDIR
	# Under `make check`, the outer make's flags (SAN=1, a jobserver) stay out.
	unset MAKEFLAGS MFLAGS MAKELEVEL
}

# mk BUILD ARGS...: make in the tree, output in $T/make.log, compiler lines counted in $compiles.
mk() {
	local b=$1; shift
	make -C "$ROOT" -j2 BUILD="$b" CFLAGS="-O0" "$@" >"$T/make.log" 2>&1 ||
		{ cat "$T/make.log" >&2; return 1; }
	compiles=$(grep -cE '^cc .* -c ' "$T/make.log" || true)
}

@test "config: ISA-L off then on rebuilds every object, and each binary runs the CRC it was built with" {
	local b=$T/b objs
	objs=$(ls "$ROOT"/lib/*/*.c "$ROOT"/cmd/nshm-put.c "$ROOT"/cmd/nshm-get.c "$ROOT"/cmd/serve.c "$ROOT"/cmd/cli.c "$ROOT"/cmd/send.c "$ROOT"/cmd/beneath.c "$ROOT"/cmd/fanout.c | wc -l)

	mk "$b" WITH_ISAL=no "$b/nshm-put" "$b/nshm-get"
	grep -qx 'HAVE_ISAL=no' "$b/config.mk"
	[ "$compiles" -eq "$objs" ]
	# Asked for ISA-L, a build without it keeps zlib (nshm_crc32_use: -ENOTSUP).
	run env NSHM_CRC=isal "$b/nshm-put" --version
	[[ $output == *"crc32 zlib)" ]]

	# The same settings again: the file is not rewritten, nothing is rebuilt.
	touch -d '2000-01-01' "$b/config.mk"
	mk "$b" WITH_ISAL=no "$b/nshm-put" "$b/nshm-get"
	[ "$compiles" -eq 0 ]
	! grep -q '^cc ' "$T/make.log"
	[ "$(stat -c %Y "$b/config.mk")" -eq "$(date -d 2000-01-01 +%s)" ]

	# ISA-L on (the default, auto: found): a new configuration, everything rebuilt.
	mk "$b" "$b/nshm-put" "$b/nshm-get"
	grep -qx 'HAVE_ISAL=yes' "$b/config.mk"
	grep -q '^config: .*crc32 isa-l' "$T/make.log"
	[ "$compiles" -eq "$objs" ]
	run env NSHM_CRC=isal "$b/nshm-put" --version
	[[ $output == *"crc32 isa-l)" ]]
	# And the transfer itself says so.
	truncate -s 4M "/dev/shm/nshm-config-$$"
	head -c 100000 /dev/urandom >"$T/f"
	"$b/nshm-put" --json "$T/f" "nshm-config-$$" >"$T/put.json" &
	run "$b/nshm-get" --json -s "nshm-config-$$" "$T/out"
	wait $!
	rm -f "/dev/shm/nshm-config-$$"
	[ "$status" -eq 0 ]
	grep -q '"crc32_impl":"isa-l"' "$T/put.json"
	cmp "$T/f" "$T/out"
}

@test "config: nothing is asked of pkg-config when the Makefile is parsed; make demo installs before it configures" {
	# A pkg-config that logs its calls, first in PATH.
	mkdir -p "$T/bin"
	printf '#!/bin/sh\necho "$@" >>%s/pkg-config.log\nexit 1\n' "$T" >"$T/bin/pkg-config"
	chmod +x "$T/bin/pkg-config"
	# -n: make parses and prints, config.sh never runs.
	PATH=$T/bin:$PATH make -C "$ROOT" -n BUILD="$T/n" all unit >"$T/n.log" 2>&1
	[ ! -e "$T/pkg-config.log" ]
	[ ! -e "$T/n" ]
	# make demo: tests/deps.sh, then a make of its own whose first step is the configuration.
	PATH=$T/bin:$PATH make -C "$ROOT" -n BUILD="$T/n" demo >"$T/demo.log" 2>&1
	[ ! -e "$T/pkg-config.log" ]
	local deps conf cc
	deps=$(grep -n 'tests/deps.sh' "$T/demo.log" | head -1 | cut -d: -f1)
	conf=$(grep -n 'mk/config.sh' "$T/demo.log" | head -1 | cut -d: -f1)
	cc=$(grep -nE '^cc .* -c ' "$T/demo.log" | head -1 | cut -d: -f1)
	[ -n "$deps" ] && [ -n "$conf" ] && [ -n "$cc" ]
	[ "$deps" -lt "$conf" ] && [ "$conf" -lt "$cc" ]
}

@test "config: a library that does not link is not found; WITH_ISAL=yes then fails and says why" {
	# A pkg-config that knows an ISA-L whose library is not there.
	mkdir -p "$T/bin"
	cat >"$T/bin/pkg-config" <<-EOF
	#!/bin/sh
	case "\$*" in
	*libisal*--libs* | *--libs*libisal*) echo -lnshm_no_such_isal ;;
	*libisal*) exit 0 ;;
	*) exec /usr/bin/pkg-config "\$@" ;;
	esac
	EOF
	chmod +x "$T/bin/pkg-config"
	mk "$T/c" PKGCONFIG="$T/bin/pkg-config" "$T/c/config.mk"
	grep -qx 'HAVE_ISAL=no' "$T/c/config.mk"
	grep -qx 'PKGS=zlib' "$T/c/config.mk"
	run make -C "$ROOT" BUILD="$T/c" PKGCONFIG="$T/bin/pkg-config" WITH_ISAL=yes "$T/c/config.mk"
	[ "$status" -ne 0 ]
	[[ $output == *"WITH_ISAL=yes, but ISA-L does not build"*"nshm_no_such_isal"* ]]
	run make -C "$ROOT" BUILD="$T/c" WITH_ISAL=maybe "$T/c/config.mk"
	[ "$status" -ne 0 ]
	[[ $output == *"WITH_ISAL=maybe: use auto, yes or no"* ]]
	# Each BUILD its own configuration: the sanitizers' flags are recorded in theirs.
	mk "$T/s" SAN=1 "$T/s/config.mk"   # CFLAGS=-O0 given: the sanitizers' flags are added to it
	grep -qx 'SAN=1' "$T/s/config.mk"
	grep -q '^CFLAGS=.*-fsanitize=address,undefined' "$T/s/config.mk"
	grep -q '^LDFLAGS=.*-fsanitize=address,undefined' "$T/s/config.mk"
	grep -qx 'HAVE_ISAL=yes' "$T/s/config.mk"
}

@test "config: every make command of the README's \"Build, demo, test\" and the Makefile's header is a target" {
	local t targets
	# The indented block of commands under the heading.
	targets=$(sed -n '/^## Build, demo, test/,/^## /p' "$ROOT/README.md" |
		sed -n 's/^    make \([a-z-]*\).*/\1/p' | grep -v '^$')
	targets="$targets $(sed -n 's/^#   targets: //p' "$ROOT/Makefile" | sed 's/(the default)//')"
	[ "$(echo $targets | wc -w)" -ge 10 ]
	# The scripts the Makefile runs are in the tree a clone gets (not
	# ignored: build-*/ once hid one, and a fresh clone could not build).
	if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
		local f
		for f in $(grep -oE '(mk|tests|bench)/[a-z/-]+\.sh|bench/run' "$ROOT/Makefile" | sort -u); do
			git -C "$ROOT" ls-files --error-unmatch "$f" >/dev/null ||
				{ echo "Makefile runs $f, which git does not track" >&2; return 1; }
		done
	fi
	# The Makefile's rules, from make's own database (nothing is run).
	make -C "$ROOT" -pRrq BUILD="$T/q" : 2>/dev/null | sed -n 's/^\([a-z-]*\):.*/\1/p' | sort -u >"$T/rules"
	for t in $targets; do
		grep -qx "$t" "$T/rules" ||
			{ echo "README or Makefile header: make $t: no such target" >&2; return 1; }
	done
}
