/* SPDX-License-Identifier: BSD-2-Clause */
/* nshm_mtrr_writeback: the /proc/mtrr commands that carve BAR2 out of the
 * firmware's uncachable range, against a plain file standing in for
 * /proc/mtrr (passed in struct nshm_mtrr_sys: the library reads no
 * environment). The arithmetic: power-of-two aligned pieces that cover the
 * range but BAR2. The record: written and synced before the first command,
 * under a lock, and replayed by kmod/nshm-mtrr-restore (also after a crash
 * between record and change). kernel_apply() plays the kernel's part: it
 * turns the commands written so far into the next table. The kernel's own
 * answers (ENOSPC, merging) are the guest tests' business
 * (tests/vm/vm-kmod.bats). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "endpoint/endpoint.h"
#include "tap.h"

static char mtrr[64], dir[64], rec[128];
static struct nshm_mtrr_sys sys;

#define SEABIOS "reg00: base=0x080000000 ( 2048MB), size= 2048MB, count=1: uncachable\n"
#define BAR 0xf8000000ull
#define BARLEN (64ull << 20)

static void table(const char *text)
{
	FILE *f = fopen(mtrr, "w");

	fputs(text, f);
	fclose(f);
}

static void slurp(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(out, 1, len - 1, f) : 0;

	out[n] = '\0';
	if (f)
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

/* The kernel's part: the table and the commands after it become the new
 * table (a disabled register is free; a new range takes the lowest free). */
static void kernel_apply(void)
{
	struct { int used; unsigned long long base, size; char type[24]; } regs[32] = { { 0 } };
	unsigned long long base, size;
	char line[160], unit, type[24];
	FILE *f = fopen(mtrr, "r");
	int i, r;

	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "reg%d: base=%llx (%*[^)]), size=%llu%cB, count=%*d: %23s",
			   &r, &base, &size, &unit, type) == 5 && r >= 0 && r < 32) {
			regs[r].used = 1;
			regs[r].base = base;
			regs[r].size = size << (unit == 'M' ? 20 : 10);
			strcpy(regs[r].type, type);
		} else if (sscanf(line, "disable=%d", &r) == 1 && r >= 0 && r < 32) {
			regs[r].used = 0;
		} else if (sscanf(line, "base=%llx size=%llx type=%23s", &base, &size, type) == 3) {
			for (i = 0; i < 32 && regs[i].used; i++)
				;
			if (i < 32) {
				regs[i].used = 1;
				regs[i].base = base;
				regs[i].size = size;
				strcpy(regs[i].type, type);
			}
		}
	}
	fclose(f);
	f = fopen(mtrr, "w");
	for (i = 0; i < 32; i++) {
		if (!regs[i].used)
			continue;
		if (regs[i].size % (1 << 20) == 0)
			fprintf(f, "reg%02d: base=0x%09llx (%5lluMB), size=%5lluMB, count=1: %s\n", i,
				regs[i].base, regs[i].base >> 20, regs[i].size >> 20, regs[i].type);
		else
			fprintf(f, "reg%02d: base=0x%09llx (%5lluMB), size=%5lluKB, count=1: %s\n", i,
				regs[i].base, regs[i].base >> 20, regs[i].size >> 10, regs[i].type);
	}
	fclose(f);
}

/* The table's ranges without register numbers, sorted: what a table means. */
static void ranges(char *out, size_t len)
{
	char cmd[160];
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd), "sed 's/^reg[0-9]*: //' %s | sort", mtrr);
	p = popen(cmd, "r");
	n = p ? fread(out, 1, len - 1, p) : 0;
	out[n] = '\0';
	if (p)
		pclose(p);
}

/* kmod/nshm-mtrr-restore DIR MTRR, from the source tree (the tests run
 * from its top, as make check does). */
static int restore(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "sh kmod/nshm-mtrr-restore %s %s", dir, mtrr);
	return system(cmd);
}

static bool exists(const char *p)
{
	return access(p, F_OK) == 0;
}

static void test_arithmetic(void)
{
	char got[2048], note[128];
	int rc;

	/* SeaBIOS, i440fx: 2-4 GiB uncachable, a 64 MiB BAR2 at 0xf8000000. */
	table(SEABIOS);
	rc = nshm_mtrr_writeback_in(&sys, BAR, BARLEN, note, sizeof(note));
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
	ok(exists(rec), "the change is recorded for nshm-mtrr-restore");
	unlink(rec);

	/* OVMF: BAR2 at the start of the 128 GiB 64-bit aperture. */
	table("reg00: base=0x080000000 ( 2048MB), size= 2048MB, count=1: uncachable\n"
	      "reg01: base=0xe000000000 (917504MB), size=131072MB, count=1: uncachable\n");
	rc = nshm_mtrr_writeback_in(&sys, 0xe000000000ull, 4 << 20, note, sizeof(note));
	commands(got, sizeof(got));
	ok(rc == 0 && strncmp(got, "disable=1\n"
			      "base=0xf000000000 size=0x1000000000 type=uncachable\n", 61) == 0 &&
	   strstr(got, "base=0xe000400000 size=0x400000 type=uncachable\n") &&
	   strstr(got, "base=0xe000000000 size=0x400000 type=write-back\n") &&
	   !strstr(got, "disable=0"),
	   "OVMF: the aperture split around BAR2, the low range untouched (rc %d):\n%s", rc, got);
	snprintf(got, sizeof(got), "%s/mtrr-e000000000", dir);
	unlink(got);

	/* Already write-back: nothing to do, nothing recorded. */
	table("reg00: base=0x0f8000000 ( 3968MB), size=   64MB, count=1: write-back\n");
	rc = nshm_mtrr_writeback_in(&sys, BAR, BARLEN, note, sizeof(note));
	commands(got, sizeof(got));
	ok(rc == 0 && got[0] == '\0' && !exists(rec), "a write-back BAR2 is left alone");

	/* Not a power of two, not aligned, a range that only overlaps. */
	ok(nshm_mtrr_writeback_in(&sys, BAR, 48 << 20, note, sizeof(note)) == -EINVAL,
	   "a BAR size that is not a power of two is refused");
	ok(nshm_mtrr_writeback_in(&sys, 0xf8100000, BARLEN, note, sizeof(note)) == -EINVAL,
	   "an unaligned BAR is refused");
	table("reg00: base=0x0f9000000 ( 3984MB), size=   16MB, count=1: uncachable\n"
	      "reg01: base=0x0fa000000 ( 4000MB), size=   32MB, count=1: write-through\n");
	rc = nshm_mtrr_writeback_in(&sys, BAR, 16 << 20, note, sizeof(note));
	commands(got, sizeof(got));
	ok(rc == 0 && strcmp(got, "base=0xf8000000 size=0x1000000 type=write-back\n") == 0,
	   "ranges beside BAR2 are not touched; BAR2 gets its own write-back range");
	unlink(rec);
	table("reg00: base=0x0f8000000 ( 3968MB), size=   16MB, count=1: uncachable\n");
	rc = nshm_mtrr_writeback_in(&sys, BAR, BARLEN, note, sizeof(note));
	ok(rc == -EINVAL && !exists(rec),
	   "a range inside BAR2 is a table we do not understand: refused, nothing recorded");
}

/* At the step "recorded": the record is complete and nothing changed yet. */
static int order_ok = -1;

static void check_order(const char *what, void *arg)
{
	char r[1024], c[1024];

	(void)arg;
	if (strcmp(what, "recorded") != 0)
		return;
	slurp(rec, r, sizeof(r));
	commands(c, sizeof(c));
	order_ok = c[0] == '\0' &&
		   strstr(r, "removed 0x80000000 0x80000000 uncachable\n") &&
		   strstr(r, "added 0xfc000000 0x4000000 uncachable\n") &&
		   strstr(r, "added 0xf8000000 0x4000000 write-back\n");
}

static void test_record_first(void)
{
	char note[128], before[1024], after[1024];
	int rc;

	table(SEABIOS);
	ranges(before, sizeof(before));
	sys.step = check_order;
	rc = nshm_mtrr_writeback_in(&sys, BAR, BARLEN, note, sizeof(note));
	sys.step = NULL;
	ok(rc == 0 && order_ok == 1,
	   "the record is complete and synced before the first /proc/mtrr command");
	kernel_apply();
	ranges(after, sizeof(after));
	ok(strstr(after, "base=0x0f8000000 (") && strstr(after, "write-back"),
	   "the carved table has BAR2 write-back:\n%s", after);
	rc = restore();
	kernel_apply();
	ranges(after, sizeof(after));
	ok(rc == 0 && strcmp(before, after) == 0 && !exists(rec),
	   "nshm-mtrr-restore puts the firmware's table back and drops the record:\n%s", after);
}

static void crash(const char *what, void *arg)
{
	(void)arg;
	if (strcmp(what, "recorded") == 0)
		_exit(0);
}

static void test_crash(void)
{
	char note[128], got[1024];
	pid_t pid;
	int st = -1, rc;

	table(SEABIOS);
	pid = fork();
	if (pid == 0) {
		sys.step = crash;
		nshm_mtrr_writeback_in(&sys, BAR, BARLEN, note, sizeof(note));
		_exit(1);
	}
	waitpid(pid, &st, 0);
	commands(got, sizeof(got));
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && got[0] == '\0' && exists(rec),
	   "a crash between record and change: the record exists, the table is unchanged");
	rc = restore();
	commands(got, sizeof(got));
	ok(rc == 0 && got[0] == '\0' && !exists(rec),
	   "restoring a change that never happened writes nothing and succeeds (rc %d):\n%s",
	   rc, got);
}

/* Two callers: A stops with the lock held; B must wait for it, then find
 * BAR2 write-back already and change nothing. */
struct pipes {
	int a_rec[2], a_go[2], b_says[2];
};

static void step_a(const char *what, void *arg)
{
	struct pipes *p = arg;
	char c;

	if (strcmp(what, "recorded") == 0) {
		if (write(p->a_rec[1], "R", 1) != 1 || read(p->a_go[0], &c, 1) != 1)
			_exit(2);
	} else if (strcmp(what, "changed") == 0) {
		kernel_apply(); /* as the kernel would have, before the lock goes */
	}
}

static void step_b(const char *what, void *arg)
{
	struct pipes *p = arg;

	if (strcmp(what, "waiting") == 0 && write(p->b_says[1], "W", 1) != 1)
		_exit(2);
	if (strcmp(what, "locked") == 0 && write(p->b_says[1], "L", 1) != 1)
		_exit(2);
}

static pid_t caller(void (*fn)(const char *, void *), struct pipes *p)
{
	char note[128];
	pid_t pid = fork();

	if (pid == 0) {
		sys.step = fn;
		sys.step_arg = p;
		_exit(nshm_mtrr_writeback_in(&sys, BAR, BARLEN, note, sizeof(note)) == 0 ? 0 : 1);
	}
	return pid;
}

/* One byte from fd within 10 s, else 0. */
static char next_byte(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c = 0;

	if (poll(&pfd, 1, 10000) == 1 && read(fd, &c, 1) != 1)
		c = 0;
	return c;
}

static void test_concurrent(void)
{
	struct pipes p;
	char got[1024], a, b1, b2;
	pid_t pa, pb;
	int sa = -1, sb = -1;

	table(SEABIOS);
	if (pipe(p.a_rec) || pipe(p.a_go) || pipe(p.b_says))
		return;
	pa = caller(step_a, &p);
	a = next_byte(p.a_rec[0]);
	pb = caller(step_b, &p);
	b1 = next_byte(p.b_says[0]); /* B is waiting for A's lock: the moment */
	if (write(p.a_go[1], "G", 1) != 1)
		return;
	waitpid(pa, &sa, 0);
	b2 = next_byte(p.b_says[0]);
	waitpid(pb, &sb, 0);
	commands(got, sizeof(got));
	ok(a == 'R' && b1 == 'W' && b2 == 'L',
	   "a second caller waits for the first one's lock (A said %c, B said %c then %c)",
	   a ? a : '-', b1 ? b1 : '-', b2 ? b2 : '-');
	ok(WIFEXITED(sa) && WEXITSTATUS(sa) == 0 && WIFEXITED(sb) && WEXITSTATUS(sb) == 0 &&
	   got[0] == '\0',
	   "then finds BAR2 write-back and changes nothing:\n%s", got);
	unlink(rec);
	close(p.a_rec[0]), close(p.a_rec[1]), close(p.a_go[0]), close(p.a_go[1]);
	close(p.b_says[0]), close(p.b_says[1]);
}

static void test_foreign_dir(void)
{
	char note[128];

	table(SEABIOS);
	chmod(dir, 0777);
	ok(nshm_mtrr_writeback_in(&sys, BAR, BARLEN, note, sizeof(note)) == -EPERM &&
	   !exists(rec),
	   "a record directory others may write to is refused (%s)", note);
	chmod(dir, 0700);
}

int main(void)
{
	char lock[128];

#if !defined(__x86_64__) && !defined(__i386__)
	printf("1..0 # skip no MTRRs on this architecture\n");
	return 0;
#endif
	strcpy(mtrr, "/tmp/nshm-test-mtrr.XXXXXX");
	strcpy(dir, "/tmp/nshm-test-run.XXXXXX");
	close(mkstemp(mtrr));
	if (!mkdtemp(dir))
		return 1;
	snprintf(rec, sizeof(rec), "%s/mtrr-f8000000", dir);
	sys.proc_mtrr = mtrr;
	sys.proc_iomem = "/nonexistent"; /* unknown: pruning keeps whole blocks */
	sys.record_dir = dir;

	test_arithmetic();
	test_record_first();
	test_crash();
	test_concurrent();
	test_foreign_dir();

	unlink(mtrr);
	unlink(rec);
	snprintf(lock, sizeof(lock), "%s/mtrr.lock", dir);
	unlink(lock);
	rmdir(dir);
	return done_testing();
}
