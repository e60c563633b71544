# SPDX-License-Identifier: BSD-2-Clause
# nshm: one Makefile. `make`, `make check`, `make demo`, `make install`.
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
CFLAGS   += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif

HAVE_ISAL := $(shell $(PKGCONFIG) --exists libisal 2>/dev/null && echo yes)
PKGS      := zlib $(if $(HAVE_ISAL),libisal)
# libarchive is loaded with dlopen when a set of files is first sent or
# received (lib/archive_dl.h): its headers at build time, its soname baked
# in, nothing linked. Tools that call it themselves link LA_LIBS.
LA_SONAME := $(shell objdump -p $$($(PKGCONFIG) --variable=libdir libarchive 2>/dev/null)/libarchive.so 2>/dev/null | awk '/SONAME/ { print $$2 }')
DEPCFLAGS := $(shell $(PKGCONFIG) --cflags $(PKGS) libarchive 2>/dev/null) $(if $(HAVE_ISAL),-DHAVE_ISAL) \
	     $(if $(LA_SONAME),-DNSHM_LIBARCHIVE_SONAME='"$(LA_SONAME)"')
DEPLIBS   := $(shell $(PKGCONFIG) --libs $(PKGS) 2>/dev/null) -lpthread -ldl
LA_LIBS   := $(shell $(PKGCONFIG) --libs libarchive 2>/dev/null)

# The library's version has one source, lib/nshm.h (as zstd's build reads
# zstd.h); the soname carries its major number.
LIBVER    := $(shell sed -n '/define NSHM_LIB_VERSION /s/.*"\([0-9][0-9.]*\)".*/\1/p' lib/nshm.h)
ifeq ($(LIBVER),)
$(error cannot read NSHM_LIB_VERSION from lib/nshm.h)
endif
SOVERSION := $(firstword $(subst ., ,$(LIBVER)))
LIB_SRC   := $(wildcard lib/*.c)
LIB_OBJ   := $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o)
LIB_PIC   := $(LIB_SRC:lib/%.c=$(BUILD)/pic/%.o)
CLI_OBJ   := $(BUILD)/cmd/cli.o $(BUILD)/cmd/send.o $(BUILD)/cmd/beneath.o
PROGS     := nshm-put nshm-get nshm-stat nshm-server
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC  := $(wildcard tests/tools/*.c)
TOOL_BIN  := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

ALL_CFLAGS = $(WARN) $(CFLAGS) $(DEPCFLAGS) -D_FILE_OFFSET_BITS=64 -Ilib -MMD -MP

.PHONY: all lib check demo install uninstall clean deps vm-demo bench fuzz unit
all: $(PROGS:%=$(BUILD)/%) $(BUILD)/libnshm.a $(BUILD)/libnshm.so.$(LIBVER) $(BUILD)/nshm.pc

$(BUILD)/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<
$(BUILD)/pic/%.o: lib/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -DNSHM_BUILD_SHARED -c -o $@ $<
$(BUILD)/cmd/%.o: cmd/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

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
$(BUILD)/libnshm.so.$(LIBVER): $(LIB_PIC)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libnshm.so.$(SOVERSION) -o $@ $^ $(DEPLIBS)
	ln -sf libnshm.so.$(LIBVER) $(BUILD)/libnshm.so.$(SOVERSION)
	ln -sf libnshm.so.$(SOVERSION) $(BUILD)/libnshm.so

# The programs carry the library statically: one file to copy into a guest.
$(BUILD)/%: $(BUILD)/cmd/%.o $(CLI_OBJ) $(INT_LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(CLI_OBJ) $(INT_LIB) $(DEPLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(INT_LIB) tests/unit/tap.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(INT_LIB) $(DEPLIBS)

PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCDIR@|$(INCDIR)|' \
	     -e 's|@VERSION@|$(LIBVER)|; s|@PRIVATE@|$(PKGS)|' lib/nshm.pc.in
$(BUILD)/nshm.pc: lib/nshm.pc.in lib/nshm.h Makefile
	$(PC_SED) > $@

$(BUILD)/tools/%: tests/tools/%.c $(INT_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(INT_LIB) $(DEPLIBS) $(LA_LIBS)

unit: $(UNIT_BIN) $(TOOL_BIN)

deps:
	@bash tests/deps.sh

check: deps
	@bash tests/check.sh

demo: deps all
	@bash tests/demo.sh

# The guest module (kmod/, GPL-2.0), against the kernel headers in KDIR
# (default: the running kernel's). Not part of `all`: it is built in a guest.
KDIR ?= /lib/modules/$(shell uname -r)/build
.PHONY: kmod
kmod:
	$(MAKE) -C kmod KDIR=$(KDIR)

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
	install -d $(DESTDIR)$(UDEVRULESDIR)
	install -m 644 cmd/systemd/70-nshm.rules $(DESTDIR)$(UDEVRULESDIR)/
	@$(MAKE) --no-print-directory install-completions

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
	    $(PROGS:%=$(DESTDIR)$(BASHCOMPDIR)/%) $(DESTDIR)$(ZSHCOMPDIR)/_nshm \
	    $(PROGS:%=$(DESTDIR)$(FISHCOMPDIR)/%.fish)

# make clean BUILD=dir removes dir only; the default also removes the
# directories of tests/check.sh's other builds.
clean:
	rm -rf $(BUILD) $(if $(filter build,$(BUILD)),build-san build-gcc build-clang)

-include $(LIB_OBJ:.o=.d) $(LIB_PIC:.o=.d) $(BUILD)/cmd/*.d
