/* SPDX-License-Identifier: BSD-2-Clause */
/* nshm_mtrr_writeback: the /proc/mtrr commands that carve BAR2 out of the
 * firmware's uncachable range, against a plain file standing in for
 * /proc/mtrr (NSHM_PROC_MTRR). The kernel's answers (ENOSPC, merging) are
 * the guest tests' business (tests/vm-kmod.bats); this checks the
 * arithmetic: power-of-two aligned pieces that cover the range but BAR2. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"

static char mtrr[64], dir[64];

static void table(const char *text)
{
	FILE *f = fopen(mtrr, "w");

	fputs(text, f);
	fclose(f);
}

/* What was written after the table: the commands. */
static void commands(char *out, size_t len)
{
	FILE *f = fopen(mtrr, "r");
	char line[160];
	size_t n = 0;

	out[0] = '\0';
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "reg", 3) != 0 && n + strlen(line) < len) {
			strcpy(out + n, line);
			n += strlen(line);
		}
	fclose(f);
}

int main(void)
{
	char got[2048], note[128];
	int rc;

	strcpy(mtrr, "/tmp/nshm-test-mtrr.XXXXXX");
	strcpy(dir, "/tmp/nshm-test-run.XXXXXX");
	close(mkstemp(mtrr));
	if (!mkdtemp(dir))
		return 1;
	setenv("NSHM_PROC_MTRR", mtrr, 1);
	setenv("NSHM_RUN_DIR", dir, 1);

	/* SeaBIOS, i440fx: 2-4 GiB uncachable, a 64 MiB BAR2 at 0xf8000000. */
	table("reg00: base=0x080000000 ( 2048MB), size= 2048MB, count=1: uncachable\n");
	rc = nshm_mtrr_writeback(0xf8000000, 64 << 20, note, sizeof(note));
	commands(got, sizeof(got));
	ok(rc == 0 && strcmp(got,
		"disable=0\n"
		"base=0x80000000 size=0x40000000 type=uncachable\n"
		"base=0xc0000000 size=0x20000000 type=uncachable\n"
		"base=0xe0000000 size=0x10000000 type=uncachable\n"
		"base=0xf0000000 size=0x8000000 type=uncachable\n"
		"base=0xfc000000 size=0x4000000 type=uncachable\n"
		"base=0xf8000000 size=0x4000000 type=write-back\n") == 0,
	   "SeaBIOS: five uncachable pieces around BAR2, then BAR2 write-back (rc %d):\n%s", rc, got);

	/* OVMF: BAR2 at the start of the 128 GiB 64-bit aperture. */
	table("reg00: base=0x080000000 ( 2048MB), size= 2048MB, count=1: uncachable\n"
	      "reg01: base=0xe000000000 (917504MB), size=131072MB, count=1: uncachable\n");
	rc = nshm_mtrr_writeback(0xe000000000ull, 4 << 20, note, sizeof(note));
	commands(got, sizeof(got));
	ok(rc == 0 && strncmp(got, "disable=1\n"
			      "base=0xf000000000 size=0x1000000000 type=uncachable\n", 61) == 0 &&
	   strstr(got, "base=0xe000400000 size=0x400000 type=uncachable\n") &&
	   strstr(got, "base=0xe000000000 size=0x400000 type=write-back\n") &&
	   !strstr(got, "disable=0"),
	   "OVMF: the aperture split around BAR2, the low range untouched (rc %d):\n%s", rc, got);

	/* Already write-back: nothing to do. */
	table("reg00: base=0x0f8000000 ( 3968MB), size=   64MB, count=1: write-back\n");
	rc = nshm_mtrr_writeback(0xf8000000, 64 << 20, note, sizeof(note));
	commands(got, sizeof(got));
	ok(rc == 0 && got[0] == '\0', "a write-back BAR2 is left alone");

	/* Not a power of two, not aligned, a range that only overlaps. */
	ok(nshm_mtrr_writeback(0xf8000000, 48 << 20, note, sizeof(note)) == -EINVAL,
	   "a BAR size that is not a power of two is refused");
	ok(nshm_mtrr_writeback(0xf8100000, 64 << 20, note, sizeof(note)) == -EINVAL,
	   "an unaligned BAR is refused");
	table("reg00: base=0x0f9000000 ( 3984MB), size=   16MB, count=1: uncachable\n"
	      "reg01: base=0x0fa000000 ( 4000MB), size=   32MB, count=1: write-through\n");
	rc = nshm_mtrr_writeback(0xf8000000, 16 << 20, note, sizeof(note));
	commands(got, sizeof(got));
	ok(rc == 0 && strcmp(got, "base=0xf8000000 size=0x1000000 type=write-back\n") == 0,
	   "ranges beside BAR2 are not touched; BAR2 gets its own write-back range");
	table("reg00: base=0x0f8000000 ( 3968MB), size=   16MB, count=1: uncachable\n");
	rc = nshm_mtrr_writeback(0xf8000000, 64 << 20, note, sizeof(note));
	ok(rc == -EINVAL, "a range inside BAR2 is a table we do not understand: refused");

	unlink(mtrr);
	{
		char p[128];

		snprintf(p, sizeof(p), "%s/mtrr-f8000000", dir);
		ok(access(p, F_OK) == 0, "the change is recorded for nshm-mtrr-restore");
		unlink(p);
		snprintf(p, sizeof(p), "%s/mtrr-e000000000", dir);
		unlink(p);
	}
	rmdir(dir);
	return done_testing();
}
