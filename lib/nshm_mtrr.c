/* SPDX-License-Identifier: BSD-2-Clause */
/* Write-back for an ivshmem BAR2 in a guest, through /proc/mtrr.
 *
 * Firmware marks the PCI hole (SeaBIOS: 2-4 GiB; OVMF: also the 64-bit
 * aperture) uncachable in a variable MTRR, and the kernel turns every
 * write-back mapping request inside it into uncached-minus
 * (pat_x_mtrr_type). BAR2 is host RAM, so write-back is right for it alone:
 * the range is split into power-of-two aligned pieces around BAR2 (the other
 * devices' BARs stay uncachable) and, when nothing then says write-back over
 * BAR2, a write-back range is added for it. mtrr_add() is not exported to
 * modules, so this runs in user space, as root. What was changed is kept in
 * /run/nshm/mtrr-BASE ("removed"/"added" BASE SIZE TYPE lines), which
 * kmod/nshm-mtrr-restore replays backwards when the device goes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define MAX_REGS 64
#define MAX_PIECES 64

struct mtrr_reg {
	int reg;
	uint64_t base, size;
	char type[24];
};

struct range {
	uint64_t base, size;
	const char *type;
};

static const char *mtrr_path(void)
{
	const char *p = getenv("NSHM_PROC_MTRR"); /* tests: a plain file */

	return p && *p ? p : "/proc/mtrr";
}

/* "reg00: base=0x080000000 ( 2048MB), size= 2048MB, count=1: uncachable" */
static int read_regs(struct mtrr_reg *regs, int max)
{
	char line[256];
	FILE *f = fopen(mtrr_path(), "re");
	int n = 0;

	if (!f)
		return -errno;
	while (n < max && fgets(line, sizeof(line), f)) {
		struct mtrr_reg *m = &regs[n];
		unsigned long long base, size;
		char unit;

		if (sscanf(line, "reg%d: base=%llx (%*[^)]), size=%llu%cB, count=%*d: %23s",
			   &m->reg, &base, &size, &unit, m->type) != 5)
			continue;
		m->base = base;
		m->size = size << (unit == 'M' ? 20 : unit == 'G' ? 30 : 10);
		n++;
	}
	fclose(f);
	return n;
}

static int mtrr_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int mtrr_cmd(const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int fd, len, rc = 0;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fd = open(mtrr_path(), O_WRONLY | O_CLOEXEC | O_APPEND);
	if (fd < 0)
		return -errno;
	/* The kernel takes one command per write(). */
	if (write(fd, buf, (size_t)len) != len)
		rc = -errno;
	close(fd);
	return rc;
}

static int add_range(const struct range *r)
{
	return mtrr_cmd("base=0x%" PRIx64 " size=0x%" PRIx64 " type=%s\n",
			r->base, r->size, r->type);
}

/* Remove the register that is exactly r (numbers shift nowhere, but look
 * them up fresh: another tool may have changed the table). */
static int del_range(uint64_t base, uint64_t size)
{
	struct mtrr_reg regs[MAX_REGS];
	int i, n = read_regs(regs, MAX_REGS);

	for (i = 0; i < n; i++)
		if (regs[i].base == base && regs[i].size == size)
			return mtrr_cmd("disable=%d\n", regs[i].reg);
	return -ENOENT;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Is anything but BAR2 (and what encloses it: bus windows) in
 * [base, base + size)? Returns the smallest aligned power-of-two block inside
 * it that holds all such resources in *lo and *len (0 when none). */
static void occupied(uint64_t base, uint64_t size, uint64_t bar, uint64_t barlen,
		     uint64_t *lo, uint64_t *len)
{
	char line[256];
	uint64_t min = UINT64_MAX, max = 0;
	FILE *f = fopen("/proc/iomem", "re");

	*lo = base;
	*len = size;        /* unknown: keep the whole block */
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;

		if (sscanf(line, " %llx-%llx :", &s, &e) != 2 || e < s)
			continue;
		if (s <= bar && e + 1 >= bar + barlen)
			continue;
		if (!overlaps(s, e - s + 1, base, size))
			continue;
		if (s < min)
			min = s < base ? base : s;
		if (e > max)
			max = e >= base + size ? base + size - 1 : e;
	}
	fclose(f);
	if (min == UINT64_MAX) {
		*len = 0;
		return;
	}
	/* The common-prefix block of min and max is aligned and lies inside
	 * the (aligned) block, so it misses BAR2 as the block does. */
	*len = 1;
	while ((min & ~(*len - 1)) != (max & ~(*len - 1)))
		*len <<= 1;
	*lo = min & ~(*len - 1);
}

/* R minus BAR2 as power-of-two aligned pieces: halve R, keep the half
 * without BAR2, go on with the other, down to BAR2's size. Without room for
 * all of them (prune), empty pieces are dropped and the others shrunk to
 * what they hold. */
static int split(const struct mtrr_reg *r, uint64_t bar, uint64_t barlen,
		 bool prune, struct range *out, int max)
{
	uint64_t base = r->base, size = r->size;
	int n = 0;

	while (size > barlen) {
		uint64_t half = size / 2, other, lo, len;

		other = bar < base + half ? base + half : base;
		if (bar >= base + half)
			base += half;
		size = half;
		lo = other;
		len = half;
		if (prune)
			occupied(other, half, bar, barlen, &lo, &len);
		if (!len)
			continue;
		if (n == max)
			return -ENOSPC;
		out[n].base = lo;
		out[n].size = len;
		out[n].type = r->type;
		n++;
	}
	return n;
}

static void state_path(char *p, size_t len, uint64_t bar)
{
	snprintf(p, len, "%s/mtrr-%" PRIx64, nshm_run_dir(), bar);
}

static void state_save(uint64_t bar, const struct mtrr_reg *gone, int ngone,
		       const struct range *added, int nadded)
{
	char p[128];
	FILE *f;
	int i;

	mkdir(nshm_run_dir(), 0755);
	state_path(p, sizeof(p), bar);
	/* Appended: an earlier record stays replayable. */
	f = fopen(p, "ae");
	if (!f)
		return;
	for (i = 0; i < ngone; i++)
		fprintf(f, "removed 0x%" PRIx64 " 0x%" PRIx64 " %s\n",
			gone[i].base, gone[i].size, gone[i].type);
	for (i = 0; i < nadded; i++)
		fprintf(f, "added 0x%" PRIx64 " 0x%" PRIx64 " %s\n",
			added[i].base, added[i].size, added[i].type);
	fclose(f);
}

static void undo(const struct mtrr_reg *gone, int ngone,
		 const struct range *added, int nadded)
{
	int i;

	for (i = 0; i < nadded; i++)
		del_range(added[i].base, added[i].size);
	for (i = 0; i < ngone; i++) {
		struct range r = { gone[i].base, gone[i].size, gone[i].type };

		add_range(&r);
	}
}

/* Replace each register in gone[] by its pieces around BAR2; *ndel of them
 * are deleted so far, *nadded pieces added (for undo()). */
static int carve(const struct mtrr_reg *gone, int ngone, uint64_t bar,
		 uint64_t barlen, bool prune, struct range *added, int *nadded,
		 int *ndel)
{
	int i, j, n, rc;

	*nadded = 0;
	*ndel = 0;
	for (i = 0; i < ngone; i++) {
		struct range pieces[MAX_PIECES];

		n = split(&gone[i], bar, barlen, prune, pieces, MAX_PIECES);
		if (n < 0)
			return n;
		/* Delete first: the kernel merges a same-typed range into an
		 * enclosing one instead of adding a register. For this moment
		 * the hole has the default type; existing uncached mappings
		 * stay uncached (their PAT entry says so). */
		rc = del_range(gone[i].base, gone[i].size);
		if (rc)
			return rc;
		(*ndel)++;
		for (j = 0; j < n; j++) {
			if (*nadded == MAX_PIECES)
				return -ENOSPC;
			rc = add_range(&pieces[j]);
			if (rc)
				return rc;
			added[(*nadded)++] = pieces[j];
		}
	}
	return 0;
}

int nshm_mtrr_writeback(uint64_t bar, uint64_t barlen, char *note, size_t notelen)
{
	struct mtrr_reg regs[MAX_REGS], gone[MAX_REGS];
	struct range added[MAX_PIECES + 1];
	int i, n, ngone = 0, nadded = 0, ndel = 0, rc;
	bool wb = false;

	if (!barlen || (barlen & (barlen - 1)) || (bar & (barlen - 1)))
		return -EINVAL;
	n = read_regs(regs, MAX_REGS);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		if (!overlaps(regs[i].base, regs[i].size, bar, barlen))
			continue;
		if (strcmp(regs[i].type, "write-back") == 0) {
			wb = wb || (regs[i].base <= bar &&
				    regs[i].base + regs[i].size >= bar + barlen);
			continue;
		}
		/* Aligned powers of two nest or miss; anything else is not a
		 * table we understand. */
		if (regs[i].base > bar || regs[i].base + regs[i].size < bar + barlen)
			return -EINVAL;
		gone[ngone++] = regs[i];
	}
	if (ngone == 0 && wb)
		return 0;
	rc = carve(gone, ngone, bar, barlen, false, added, &nadded, &ndel);
	if (rc == -ENOSPC || rc == -EINVAL) {
		/* Not enough variable registers for the exact split. */
		undo(gone, ndel, added, nadded);
		rc = carve(gone, ngone, bar, barlen, true, added, &nadded, &ndel);
	}
	if (rc) {
		undo(gone, ndel, added, nadded);
		snprintf(note, notelen, "%s: %s", mtrr_path(), strerror(-rc));
		return rc;
	}
	/* With an uncachable default type, BAR2 needs its own range. With a
	 * write-back default it costs one register, if one is free. */
	if (!wb) {
		struct range r = { bar, barlen, "write-back" };

		if (add_range(&r) == 0)
			added[nadded++] = r;
	}
	state_save(bar, gone, ngone, added, nadded);
	snprintf(note, notelen, "MTRR: %d range%s split around BAR2 into %d",
		 ngone, ngone == 1 ? "" : "s", nadded);
	return 0;
}
