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
CFLAGS   ?= -O2 -g
WARN     := -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes
SAN      ?=
ifneq ($(SAN),)
CFLAGS   += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif

HAVE_ISAL := $(shell $(PKGCONFIG) --exists libisal 2>/dev/null && echo yes)
PKGS      := zlib libarchive $(if $(HAVE_ISAL),libisal)
DEPCFLAGS := $(shell $(PKGCONFIG) --cflags $(PKGS) 2>/dev/null) $(if $(HAVE_ISAL),-DHAVE_ISAL)
DEPLIBS   := $(shell $(PKGCONFIG) --libs $(PKGS) 2>/dev/null) -lpthread

SOVERSION := 0
LIBVER    := 0.1.0
LIB_SRC   := $(wildcard lib/*.c)
LIB_OBJ   := $(LIB_SRC:lib/%.c=$(BUILD)/lib/%.o)
LIB_PIC   := $(LIB_SRC:lib/%.c=$(BUILD)/pic/%.o)
CLI_OBJ   := $(BUILD)/cmd/cli.o
PROGS     := nshm-put nshm-get nshm-stat
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

$(BUILD)/libnshm.a: $(LIB_OBJ)
	$(AR) rcs $@ $^
$(BUILD)/libnshm.so.$(LIBVER): $(LIB_PIC)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libnshm.so.$(SOVERSION) -o $@ $^ $(DEPLIBS)
	ln -sf libnshm.so.$(LIBVER) $(BUILD)/libnshm.so.$(SOVERSION)
	ln -sf libnshm.so.$(SOVERSION) $(BUILD)/libnshm.so

# The programs carry the library statically: one file to copy into a guest.
$(BUILD)/%: $(BUILD)/cmd/%.o $(CLI_OBJ) $(BUILD)/libnshm.a
	$(CC) $(LDFLAGS) -o $@ $< $(CLI_OBJ) $(BUILD)/libnshm.a $(DEPLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libnshm.a tests/unit/tap.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(BUILD)/libnshm.a $(DEPLIBS)

PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCDIR@|$(INCDIR)|' \
	     -e 's|@VERSION@|$(LIBVER)|; s|@PRIVATE@|$(PKGS)|' lib/nshm.pc.in
$(BUILD)/nshm.pc: lib/nshm.pc.in Makefile
	$(PC_SED) > $@

$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libnshm.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libnshm.a $(DEPLIBS)

unit: $(UNIT_BIN) $(TOOL_BIN)

deps:
	@bash tests/deps.sh

check: deps
	@bash tests/check.sh

demo: deps all
	@bash tests/demo.sh

vm-demo: all
	@bash tests/vm/demo.sh

bench: all
	@bash bench/run $(BENCH_ARGS)

fuzz:
	@bash tests/fuzz/run.sh $(or $(FUZZ_SECONDS),600)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man7
	install -m 755 $(PROGS:%=$(BUILD)/%) $(DESTDIR)$(BINDIR)/
	install -m 644 $(BUILD)/libnshm.so.$(LIBVER) $(DESTDIR)$(LIBDIR)/
	ln -sf libnshm.so.$(LIBVER) $(DESTDIR)$(LIBDIR)/libnshm.so.$(SOVERSION)
	ln -sf libnshm.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libnshm.so
	install -m 644 $(BUILD)/libnshm.a $(DESTDIR)$(LIBDIR)/
	install -m 644 lib/nshm.h $(DESTDIR)$(INCDIR)/
	# Written here: PREFIX may differ from the one `make` was run with.
	$(PC_SED) > $(DESTDIR)$(LIBDIR)/pkgconfig/nshm.pc
	chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/nshm.pc
	for m in man/*.1; do [ -e "$$m" ] && install -m 644 $$m $(DESTDIR)$(MANDIR)/man1/; done; true
	for m in man/*.3; do [ -e "$$m" ] && install -m 644 $$m $(DESTDIR)$(MANDIR)/man3/; done; true
	for m in man/*.7; do [ -e "$$m" ] && install -m 644 $$m $(DESTDIR)$(MANDIR)/man7/; done; true
	@$(MAKE) --no-print-directory install-completions

BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
.PHONY: install-completions
install-completions:
	@if [ -f completions/nshm.bash ]; then \
	  install -d $(DESTDIR)$(BASHCOMPDIR) && \
	  for p in $(PROGS); do install -m 644 completions/nshm.bash $(DESTDIR)$(BASHCOMPDIR)/$$p; done; fi
	@if [ -f completions/_nshm ]; then install -d $(DESTDIR)$(ZSHCOMPDIR) && \
	  install -m 644 completions/_nshm $(DESTDIR)$(ZSHCOMPDIR)/_nshm; fi
	@if [ -d completions ] && ls completions/*.fish >/dev/null 2>&1; then \
	  install -d $(DESTDIR)$(FISHCOMPDIR) && install -m 644 completions/*.fish $(DESTDIR)$(FISHCOMPDIR)/; fi

uninstall:
	rm -f $(PROGS:%=$(DESTDIR)$(BINDIR)/%) $(DESTDIR)$(INCDIR)/nshm.h \
	    $(DESTDIR)$(LIBDIR)/libnshm.so* $(DESTDIR)$(LIBDIR)/libnshm.a \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/nshm.pc \
	    $(DESTDIR)$(MANDIR)/man1/nshm-*.1 $(DESTDIR)$(MANDIR)/man3/libnshm.3 \
	    $(DESTDIR)$(MANDIR)/man7/nshm.7 \
	    $(PROGS:%=$(DESTDIR)$(BASHCOMPDIR)/%) $(DESTDIR)$(ZSHCOMPDIR)/_nshm \
	    $(PROGS:%=$(DESTDIR)$(FISHCOMPDIR)/%.fish)

clean:
	rm -rf build build-san build-gcc build-clang

-include $(LIB_OBJ:.o=.d) $(LIB_PIC:.o=.d) $(BUILD)/cmd/*.d
