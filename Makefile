# SPDX-License-Identifier: BSD-2-Clause
# nshm: one Makefile. The commands (README, "Build, demo, test"):
#   targets: all (the default) demo check deps vm-demo bench install
#   targets: uninstall fresh-check kmod fuzz unit clean deb
# Settings: BUILD=dir (each has its own config.mk), CC, CFLAGS, SAN=1,
# WITH_ISAL=auto|yes|no, PREFIX, DESTDIR.
.DEFAULT_GOAL := all
PREFIX   ?= /usr/local
DESTDIR  ?=
BINDIR   ?= $(PREFIX)/bin
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
MANDIR   ?= $(PREFIX)/share/man
PKGCONFIG ?= pkg-config

BUILD    ?= build
CC       ?= cc
OBJCOPY  ?= objcopy
CFLAGS   ?= -O2 -g
WARN     := -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes
SAN      ?=
ifneq ($(SAN),)
# Added to a CFLAGS given on the command line too.
override CFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif

WITH_ISAL ?= auto

# What the build found and was asked for is recorded in one file,
# $(BUILD)/config.mk, written by mk/config.sh before anything is
# compiled (each BUILD has its own). Nothing here asks pkg-config or looks
# for a library when the Makefile is parsed: `make demo` and `make check`
# install the packages first (tests/deps.sh). The recipes read the file when
# they run, and every object and program depends on it: a changed compiler,
# flag or library rebuilds what was built with the old one; an unchanged
# configuration rebuilds nothing (the file is rewritten only when it differs).
CONFIG    := $(BUILD)/config.mk
cfg        = $(shell sed -n 's/^$(1)=//p' $(CONFIG))
# zlib, ISA-L when found (-DHAVE_ISAL), libarchive's headers and its soname
# (-DNSHM_LIBARCHIVE_SONAME): libarchive is loaded with dlopen when a set of
# files is first sent or received (lib/tree/archive_dl.h), nothing linked. Tools
# that call it themselves link LA_LIBS.
DEPCFLAGS  = $(call cfg,DEP_CFLAGS)
DEPLIBS    = $(call cfg,DEP_LIBS)
LA_LIBS    = $(call cfg,LA_LIBS)
PKGS       = $(call cfg,PKGS)

.PHONY: FORCE
$(CONFIG): export NSHM_CC = $(CC)
$(CONFIG): export NSHM_CFLAGS = $(CFLAGS)
$(CONFIG): export NSHM_LDFLAGS = $(LDFLAGS)
$(CONFIG): export NSHM_SAN = $(SAN)
$(CONFIG): export NSHM_WITH_ISAL = $(WITH_ISAL)
$(CONFIG): export NSHM_PKGCONFIG = $(PKGCONFIG)
$(CONFIG): FORCE
	@mkdir -p $(@D)
	@sh mk/config.sh $@

# The library's version has one source, lib/nshm.h (as zstd's build reads
# zstd.h); the soname carries its major number.
LIBVER    := $(shell sed -n '/define NSHM_LIB_VERSION /s/.*"\([0-9][0-9.]*\)".*/\1/p' lib/nshm.h)
ifeq ($(LIBVER),)
$(error cannot read NSHM_LIB_VERSION from lib/nshm.h)
endif
SOVERSION := $(firstword $(subst ., ,$(LIBVER)))
# lib/ in wings, one folder each (lib/README.md): util, doorbell, endpoint,
# proto, tree. nshm-server (cmd/server/) is no part of the library.
WINGS     := util doorbell endpoint proto tree
LIB_SRC   := $(foreach w,$(WINGS),$(wildcard lib/$(w)/*.c))
LIB_OBJ   := $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o)
LIB_PIC   := $(LIB_SRC:lib/%.c=$(BUILD)/pic/%.o)
CLI_OBJ   := $(BUILD)/cmd/cli.o $(BUILD)/cmd/send.o $(BUILD)/cmd/beneath.o $(BUILD)/cmd/fanout.o
# A program's objects beyond its own and CLI_OBJ.
MORE_OBJ_nshm-get := $(BUILD)/cmd/serve.o
LIB_PROGS := nshm-put nshm-get nshm-stat
PROGS     := $(LIB_PROGS) nshm-server
# nshm-server: its own folder (cmd/server/), outside the library.
SERVER_OBJ := $(BUILD)/cmd/server/nshm-server.o $(BUILD)/cmd/server/ivserver.o
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Test hooks: the files that read a test's environment under
# -DNSHM_TEST_HOOKS (never in the installed library or programs) are built
# again that way into build/hooks/, whose programs only the tests run.
HOOK_SRC  := $(shell grep -l NSHM_TEST_HOOKS $(LIB_SRC))
HOOK_OBJ  := $(HOOK_SRC:lib/%.c=$(BUILD)/hooks/lib/%.o)
HOOK_LIB  := $(BUILD)/hooks/libnshm-hooks.a
HOOK_BIN  := $(BUILD)/hooks/nshm-get $(BUILD)/hooks/nshm-put $(BUILD)/hooks/nshm-stat
TOOL_SRC  := $(wildcard tests/tools/*.c)
TOOL_BIN  := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

ALL_CFLAGS = $(WARN) $(CFLAGS) $(DEPCFLAGS) -D_FILE_OFFSET_BITS=64 -Ilib -MMD -MP

.PHONY: all lib check demo install uninstall clean deps vm-demo bench fuzz unit
all: $(PROGS:%=$(BUILD)/%) $(BUILD)/libnshm.a $(BUILD)/libnshm.so.$(LIBVER) $(BUILD)/nshm.pc

$(BUILD)/lib/%.o: lib/%.c $(CONFIG)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<
$(BUILD)/pic/%.o: lib/%.c $(CONFIG)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -DNSHM_BUILD_SHARED -c -o $@ $<
$(BUILD)/cmd/%.o: cmd/%.c $(CONFIG)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<
$(BUILD)/hooks/lib/%.o: lib/%.c $(CONFIG)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DNSHM_TEST_HOOKS -c -o $@ $<

# Two static libraries. The programs, unit tests and tools link the
# internal one, whose internal functions they call. The installed libnshm.a
# exports only the API, as libnshm.so does: its objects, built with hidden
# visibility, are linked into one object whose hidden symbols are then made
# local, so that a program linking it cannot clash with, say, wait_until.
INT_LIB   := $(BUILD)/libnshm-internal.a
$(INT_LIB): $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^
$(BUILD)/libnshm.a: $(LIB_PIC)
	@mkdir -p $(BUILD)/static
	$(LD) -r -o $(BUILD)/static/libnshm.o $^
	$(OBJCOPY) --localize-hidden $(BUILD)/static/libnshm.o
	rm -f $@
	$(AR) rcs $@ $(BUILD)/static/libnshm.o
$(BUILD)/libnshm.so.$(LIBVER): $(LIB_PIC) $(CONFIG)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libnshm.so.$(SOVERSION) -o $@ $(LIB_PIC) $(DEPLIBS)
	ln -sf libnshm.so.$(LIBVER) $(BUILD)/libnshm.so.$(SOVERSION)
	ln -sf libnshm.so.$(SOVERSION) $(BUILD)/libnshm.so

# The programs carry the library statically: one file to copy into a guest.
# A static pattern: its objects are not intermediates, which make would
# delete after linking and rebuild each time.
$(LIB_PROGS:%=$(BUILD)/%): $(BUILD)/%: $(BUILD)/cmd/%.o $(CLI_OBJ) $(INT_LIB) $(CONFIG)
	$(CC) $(LDFLAGS) -o $@ $< $(MORE_OBJ_$*) $(CLI_OBJ) $(INT_LIB) $(DEPLIBS)
# nshm-server links no libnshm internals: its own objects, cli.o, lib/util/
# and the ivshmem protocol. A symbol it needs from elsewhere fails the link.
SERVER_LINK := $(SERVER_OBJ) $(BUILD)/cmd/cli.o \
	$(patsubst lib/%.c,$(BUILD)/lib/%.o,$(wildcard lib/util/*.c)) $(BUILD)/lib/doorbell/ivproto.o
$(BUILD)/nshm-server: $(SERVER_LINK) $(CONFIG)
	$(CC) $(LDFLAGS) -o $@ $(SERVER_LINK) $(DEPLIBS)
$(BUILD)/nshm-get $(BUILD)/hooks/nshm-get: $(MORE_OBJ_nshm-get)

$(HOOK_LIB): $(HOOK_OBJ) $(filter-out $(HOOK_SRC:lib/%.c=$(BUILD)/lib/%.o),$(LIB_OBJ))
	rm -f $@
	$(AR) rcs $@ $^
$(HOOK_BIN): $(BUILD)/hooks/%: $(BUILD)/cmd/%.o $(CLI_OBJ) $(HOOK_LIB) $(CONFIG)
	$(CC) $(LDFLAGS) -o $@ $< $(MORE_OBJ_$*) $(CLI_OBJ) $(HOOK_LIB) $(DEPLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(INT_LIB) tests/unit/tap.h $(CONFIG)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(INT_LIB) $(DEPLIBS)

PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCDIR@|$(INCDIR)|' \
	     -e 's|@VERSION@|$(LIBVER)|; s|@PRIVATE@|$(PKGS)|' lib/nshm.pc.in
$(BUILD)/nshm.pc: lib/nshm.pc.in lib/nshm.h Makefile $(CONFIG)
	$(PC_SED) > $@

$(BUILD)/tools/%: tests/tools/%.c $(INT_LIB) $(CONFIG)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(INT_LIB) $(DEPLIBS) $(LA_LIBS)

unit: $(UNIT_BIN) $(TOOL_BIN) $(HOOK_BIN)

# Lines per function over lib/ and cmd/: the mean and the five longest
# (tests/tools/funclen.sh). The include rules: tests/layout.bats.
.PHONY: funclen
funclen:
	@bash tests/tools/funclen.sh

# demo and check install what they need first (as root; otherwise they
# print the apt-get line), then build: a make started only after the
# packages are in, so that the configuration sees them.
deps:
	@bash tests/deps.sh

check: deps
	@bash tests/check.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@bash tests/demo.sh

# The README's two commands in a fresh Debian 12 root with only
# build-essential and git (mmdebstrap, cached), in a fresh clone of
# FRESH_COMMIT: FRESH_MODE=A runs make demo then make check, B make check
# alone. Root only; 20-30 minutes; not part of make check.
.PHONY: fresh-check
fresh-check:
	@bash tests/fresh-root.sh $(or $(FRESH_MODE),A) $(or $(FRESH_COMMIT),HEAD)

# The guest module (kmod/, GPL-2.0), against the kernel headers in KDIR
# (default: the running kernel's). Not part of `all`: it is built in a guest.
KDIR ?= /lib/modules/$(shell uname -r)/build
.PHONY: kmod
kmod:
	$(MAKE) -C kmod KDIR=$(KDIR)

# The Debian packages (debian/), built by dpkg-buildpackage in a clean copy
# of the tree: build/deb/*.deb. tests/deb.bats checks them.
.PHONY: deb
deb:
	@bash tests/deb-build.sh $(BUILD)/deb

vm-demo: all
	@bash tests/vm/demo.sh

bench: all
	@bash bench/run $(BENCH_ARGS)

fuzz:
	@bash tests/fuzz/run.sh $(or $(FUZZ_SECONDS),600)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man7 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSTEMDDIR)
	install -m 755 $(PROGS:%=$(BUILD)/%) $(DESTDIR)$(BINDIR)/
	install -m 644 $(BUILD)/libnshm.so.$(LIBVER) $(DESTDIR)$(LIBDIR)/
	ln -sf libnshm.so.$(LIBVER) $(DESTDIR)$(LIBDIR)/libnshm.so.$(SOVERSION)
	ln -sf libnshm.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libnshm.so
	install -m 644 $(BUILD)/libnshm.a $(DESTDIR)$(LIBDIR)/
	install -m 644 lib/nshm.h $(DESTDIR)$(INCDIR)/
	# Written here: PREFIX may differ from the one `make` was run with.
	$(PC_SED) > $(DESTDIR)$(LIBDIR)/pkgconfig/nshm.pc
	chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/nshm.pc
	install -m 644 man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 man/*.3 $(DESTDIR)$(MANDIR)/man3/
	install -m 644 man/*.7 $(DESTDIR)$(MANDIR)/man7/
	install -m 644 man/*.8 $(DESTDIR)$(MANDIR)/man8/
	sed 's|@BINDIR@|$(BINDIR)|' cmd/systemd/nshm-server@.service \
	    > $(DESTDIR)$(SYSTEMDDIR)/nshm-server@.service
	chmod 644 $(DESTDIR)$(SYSTEMDDIR)/nshm-server@.service
	sed 's|@BINDIR@|$(BINDIR)|' cmd/systemd/nshm-receiver@.service \
	    > $(DESTDIR)$(SYSTEMDDIR)/nshm-receiver@.service
	chmod 644 $(DESTDIR)$(SYSTEMDDIR)/nshm-receiver@.service
	install -d $(DESTDIR)$(UDEVRULESDIR) $(DESTDIR)$(SBINDIR)
	install -m 644 cmd/systemd/70-nshm.rules $(DESTDIR)$(UDEVRULESDIR)/
	# The guest module's rule runs nshm-mtrr-restore where this PREFIX puts it.
	install -m 755 kmod/nshm-mtrr-restore $(DESTDIR)$(SBINDIR)/
	sed 's|@SBINDIR@|$(SBINDIR)|' kmod/99-nshm.rules > $(DESTDIR)$(UDEVRULESDIR)/99-nshm.rules
	chmod 644 $(DESTDIR)$(UDEVRULESDIR)/99-nshm.rules
	@$(MAKE) --no-print-directory install-completions
	@$(MAKE) --no-print-directory install-activate

# Into a running system (DESTDIR empty, systemd and udev there): load the
# new unit and rules and start a receiver for each ivshmem device already
# present, as a hot-plug or the next boot would (a guest's udev only acts
# on events). Elsewhere it does nothing.
.PHONY: install-activate
install-activate:
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ] && command -v udevadm >/dev/null; then \
	  echo "starting receivers for the ivshmem devices present (udevadm trigger)"; \
	  systemctl daemon-reload && udevadm control --reload && \
	  udevadm trigger --action=add --subsystem-match=pci \
	    --attr-match=vendor=0x1af4 --attr-match=device=0x1110; \
	fi

SBINDIR     ?= $(PREFIX)/sbin
# systemd also reads units from /usr/local/lib/systemd/system.
SYSTEMDDIR  ?= $(PREFIX)/lib/systemd/system
# udev reads /usr/lib/udev/rules.d and /etc/udev/rules.d, not /usr/local.
UDEVRULESDIR ?= $(if $(filter /usr,$(PREFIX)),/usr/lib/udev/rules.d,/etc/udev/rules.d)
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
.PHONY: install-completions
install-completions:
	install -d $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	for p in $(PROGS); do \
	  install -m 644 completions/nshm.bash $(DESTDIR)$(BASHCOMPDIR)/$$p || exit 1; done
	install -m 644 completions/_nshm $(DESTDIR)$(ZSHCOMPDIR)/_nshm
	install -m 644 completions/*.fish $(DESTDIR)$(FISHCOMPDIR)/

uninstall:
	rm -f $(PROGS:%=$(DESTDIR)$(BINDIR)/%) $(DESTDIR)$(INCDIR)/nshm.h \
	    $(DESTDIR)$(LIBDIR)/libnshm.so* $(DESTDIR)$(LIBDIR)/libnshm.a \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/nshm.pc \
	    $(DESTDIR)$(MANDIR)/man1/nshm-*.1 $(DESTDIR)$(MANDIR)/man3/libnshm.3 \
	    $(DESTDIR)$(MANDIR)/man7/nshm.7 $(DESTDIR)$(MANDIR)/man8/nshm-server.8 \
	    $(DESTDIR)$(SYSTEMDDIR)/nshm-server@.service \
	    $(DESTDIR)$(SYSTEMDDIR)/nshm-receiver@.service $(DESTDIR)$(UDEVRULESDIR)/70-nshm.rules \
	    $(DESTDIR)$(UDEVRULESDIR)/99-nshm.rules $(DESTDIR)$(SBINDIR)/nshm-mtrr-restore \
	    $(PROGS:%=$(DESTDIR)$(BASHCOMPDIR)/%) $(DESTDIR)$(ZSHCOMPDIR)/_nshm \
	    $(PROGS:%=$(DESTDIR)$(FISHCOMPDIR)/%.fish)

# make clean BUILD=dir removes dir only; the default also removes the
# directories of tests/check.sh's other builds.
clean:
	rm -rf $(BUILD) $(if $(filter build,$(BUILD)),build-san build-gcc build-clang)

-include $(LIB_OBJ:.o=.d) $(LIB_PIC:.o=.d) $(HOOK_OBJ:.o=.d) $(BUILD)/cmd/*.d $(BUILD)/cmd/server/*.d
