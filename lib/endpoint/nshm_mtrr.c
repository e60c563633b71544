/* SPDX-License-Identifier: BSD-2-Clause */
/* Write-back for an ivshmem BAR2 in a guest, through /proc/mtrr (x86 only).
 *
 * Firmware marks the PCI hole (SeaBIOS: 2-4 GiB; OVMF: also the 64-bit
 * aperture) uncachable in a variable MTRR, and the kernel turns every
 * write-back mapping request inside it into uncached-minus
 * (pat_x_mtrr_type). BAR2 is host RAM, so write-back is right for it alone:
 * the range is split into power-of-two aligned pieces around BAR2 (the other
 * devices' BARs stay uncachable) and, when nothing then says write-back over
 * BAR2, a write-back range is added for it. mtrr_add() is not exported to
 * modules, so this runs in user space, as root.
 *
 * What is about to change is recorded in /run/nshm/mtrr-BASE
 * ("removed"/"added" BASE SIZE TYPE lines) and synced BEFORE the table
 * changes, all under an flock on /run/nshm/mtrr.lock, so that
 * kmod/nshm-mtrr-restore (which takes the same lock when the device goes)
 * can always put the firmware's table back: it deletes the "added" ranges
 * that exist and adds back the "removed" ones that are missing, so a record
 * of a change that never happened (a crash in between) restores nothing.
 *
 * No environment is read here (this runs as root): the paths are the real
 * ones, or those a test passes to nshm_mtrr_writeback_in(). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "endpoint.h"

const struct nshm_mtrr_sys nshm_mtrr_real = {
	.proc_mtrr = "/proc/mtrr",
	.proc_iomem = "/proc/iomem",
	.record_dir = NSHM_RUN_DIR,
};

#if defined(__x86_64__) || defined(__i386__)

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

/* Taking the lock: tries every LOCK_POLL_MS for at most LOCK_WAIT_MS (the
 * holder only writes a few lines; a stopped one must not stop us). */
#define LOCK_POLL_MS 5
#define LOCK_WAIT_MS 10000

static void step(const struct nshm_mtrr_sys *sys, const char *what)
{
	if (sys->step)
		sys->step(what, sys->step_arg);
}

/* "reg00: base=0x080000000 ( 2048MB), size= 2048MB, count=1: uncachable" */
static int read_regs(const struct nshm_mtrr_sys *sys, struct mtrr_reg *regs, int max)
{
	char line[256];
	FILE *f = fopen(sys->proc_mtrr, "re");
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

static int mtrr_cmd(const struct nshm_mtrr_sys *sys, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int mtrr_cmd(const struct nshm_mtrr_sys *sys, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int fd, len, rc = 0;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fd = open(sys->proc_mtrr, O_WRONLY | O_CLOEXEC | O_APPEND);
	if (fd < 0)
		return -errno;
	/* The kernel takes one command per write(). */
	if (write(fd, buf, (size_t)len) != len)
		rc = -errno;
	close(fd);
	return rc;
}

static int add_range(const struct nshm_mtrr_sys *sys, const struct range *r)
{
	return mtrr_cmd(sys, "base=0x%" PRIx64 " size=0x%" PRIx64 " type=%s\n",
			r->base, r->size, r->type);
}

/* Remove the register that is exactly r (numbers shift nowhere, but look
 * them up fresh: another tool may have changed the table). */
static int del_range(const struct nshm_mtrr_sys *sys, uint64_t base, uint64_t size)
{
	struct mtrr_reg regs[MAX_REGS];
	int i, n = read_regs(sys, regs, MAX_REGS);

	for (i = 0; i < n; i++)
		if (regs[i].base == base && regs[i].size == size)
			return mtrr_cmd(sys, "disable=%d\n", regs[i].reg);
	return -ENOENT;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Is anything but BAR2 (and what encloses it: bus windows) in
 * [base, base + size)? Returns the smallest aligned power-of-two block inside
 * it that holds all such resources in *lo and *len (0 when none). */
static void occupied(const struct nshm_mtrr_sys *sys, uint64_t base, uint64_t size,
		     uint64_t bar, uint64_t barlen, uint64_t *lo, uint64_t *len)
{
	char line[256];
	uint64_t min = UINT64_MAX, max = 0;
	FILE *f = fopen(sys->proc_iomem, "re");

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
static int split(const struct nshm_mtrr_sys *sys, const struct mtrr_reg *r,
		 uint64_t bar, uint64_t barlen, bool prune, struct range *out, int max)
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
			occupied(sys, other, half, bar, barlen, &lo, &len);
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

/* The pieces that replace gone[] (and BAR2's own write-back range unless
 * one covers it already): what carve() will add, in that order. */
static int plan(const struct nshm_mtrr_sys *sys, const struct mtrr_reg *gone, int ngone,
		uint64_t bar, uint64_t barlen, bool prune, bool wb, struct range *added)
{
	int i, n, nadded = 0;

	for (i = 0; i < ngone; i++) {
		n = split(sys, &gone[i], bar, barlen, prune, added + nadded,
			  MAX_PIECES - nadded);
		if (n < 0)
			return n;
		nadded += n;
	}
	if (!wb) {
		added[nadded].base = bar;
		added[nadded].size = barlen;
		added[nadded].type = "write-back";
		nadded++;
	}
	return nadded;
}

/* The record and the lock live in the record directory, which must be
 * ours and writable by nobody else (it holds what root will replay). */
static int record_dir(const struct nshm_mtrr_sys *sys)
{
	struct stat st;
	int dfd;

	if (mkdir(sys->record_dir, 0755) != 0 && errno != EEXIST)
		return -errno;
	dfd = open(sys->record_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (fstat(dfd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
		close(dfd);
		return -EPERM;
	}
	return dfd;
}

/* flock the record directory's mtrr.lock, waiting a bounded time. */
static int take_lock(const struct nshm_mtrr_sys *sys, int dfd)
{
	const struct timespec poll = { 0, LOCK_POLL_MS * 1000000L };
	int fd, waited = 0;

	fd = openat(dfd, "mtrr.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if ((errno != EWOULDBLOCK && errno != EINTR) || waited >= LOCK_WAIT_MS) {
			int rc = errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;

			close(fd);
			return rc;
		}
		if (waited == 0)
			step(sys, "waiting");
		nanosleep(&poll, NULL);
		waited += LOCK_POLL_MS;
	}
	step(sys, "locked");
	return fd;
}

/* Append what is about to change to the record and make it durable (file
 * and directory entry) before the first command. *len is the record's
 * length before, for record_drop(). */
static int record(int dfd, uint64_t bar, const struct mtrr_reg *gone, int ngone,
		  const struct range *added, int nadded, int *fdp, off_t *len)
{
	char name[64], line[128];
	struct stat st;
	int i, n, rc, fd = *fdp;

	if (fd < 0) {
		snprintf(name, sizeof(name), "mtrr-%" PRIx64, bar);
		fd = openat(dfd, name, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
			    0644);
		if (fd < 0)
			return -errno;
		*fdp = fd;
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
			return -EINVAL;
		*len = st.st_size;
	}
	for (i = 0; i < ngone + nadded; i++) {
		if (i < ngone)
			n = snprintf(line, sizeof(line), "removed 0x%" PRIx64 " 0x%" PRIx64 " %s\n",
				     gone[i].base, gone[i].size, gone[i].type);
		else
			n = snprintf(line, sizeof(line), "added 0x%" PRIx64 " 0x%" PRIx64 " %s\n",
				     added[i - ngone].base, added[i - ngone].size,
				     added[i - ngone].type);
		rc = nshm_write_all(fd, line, (size_t)n, NULL);
		if (rc)
			return rc;
	}
	if (fsync(fd) != 0 || fsync(dfd) != 0)
		return -errno;
	return 0;
}

/* Nothing changed after all (undone): take the lines back. */
static void record_drop(int dfd, uint64_t bar, int fd, off_t len)
{
	char name[64];

	if (fd < 0)
		return;
	if (len == 0) {
		snprintf(name, sizeof(name), "mtrr-%" PRIx64, bar);
		unlinkat(dfd, name, 0);
	} else if (ftruncate(fd, len) == 0) {
		fsync(fd);
	}
	fsync(dfd);
}

static void undo(const struct nshm_mtrr_sys *sys, const struct mtrr_reg *gone, int ndel,
		 const struct range *added, int nadded)
{
	int i;

	for (i = 0; i < nadded; i++)
		del_range(sys, added[i].base, added[i].size);
	for (i = 0; i < ndel; i++) {
		struct range r = { gone[i].base, gone[i].size, gone[i].type };

		add_range(sys, &r);
	}
}

/* Replace each register in gone[] by its pieces (from plan(), in order);
 * *ndel registers are deleted so far and *ndone pieces added, for undo(). */
static int carve(const struct nshm_mtrr_sys *sys, const struct mtrr_reg *gone, int ngone,
		 uint64_t bar, uint64_t barlen, bool prune, const struct range *pieces,
		 int *ndone, int *ndel)
{
	int i, j, n, rc;

	*ndone = 0;
	*ndel = 0;
	for (i = 0; i < ngone; i++) {
		struct range mine[MAX_PIECES];

		n = split(sys, &gone[i], bar, barlen, prune, mine, MAX_PIECES);
		if (n < 0)
			return n;
		/* Delete first: the kernel merges a same-typed range into an
		 * enclosing one instead of adding a register. For this moment
		 * the hole has the default type; existing uncached mappings
		 * stay uncached (their PAT entry says so). */
		rc = del_range(sys, gone[i].base, gone[i].size);
		if (rc)
			return rc;
		(*ndel)++;
		for (j = 0; j < n; j++) {
			rc = add_range(sys, &pieces[*ndone]);
			if (rc)
				return rc;
			(*ndone)++;
		}
	}
	return 0;
}

/* The registers that cover BAR2 with another type than write-back
 * (gone[]), and whether a write-back one covers it (*wb). */
static int covering(const struct nshm_mtrr_sys *sys, uint64_t bar, uint64_t barlen,
		    struct mtrr_reg *gone, bool *wb)
{
	struct mtrr_reg regs[MAX_REGS];
	int i, n, ngone = 0;

	*wb = false;
	n = read_regs(sys, regs, MAX_REGS);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		if (!overlaps(regs[i].base, regs[i].size, bar, barlen))
			continue;
		if (strcmp(regs[i].type, "write-back") == 0) {
			*wb = *wb || (regs[i].base <= bar &&
				      regs[i].base + regs[i].size >= bar + barlen);
			continue;
		}
		/* Aligned powers of two nest or miss; anything else is not a
		 * table we understand. */
		if (regs[i].base > bar || regs[i].base + regs[i].size < bar + barlen)
			return -EINVAL;
		gone[ngone++] = regs[i];
	}
	return ngone;
}

/* Record, then change; the pruned split when the exact one does not fit
 * in the variable registers. Called with the lock held. */
static int change(const struct nshm_mtrr_sys *sys, int dfd, uint64_t bar, uint64_t barlen,
		  const struct mtrr_reg *gone, int ngone, bool wb, int *nadded)
{
	struct range added[MAX_PIECES + 1];
	int attempt, n, ndone = 0, ndel = 0, rc = 0, fd = -1;
	off_t len = 0;

	for (attempt = 0; attempt < 2; attempt++) {
		bool prune = attempt == 1;

		n = plan(sys, gone, ngone, bar, barlen, prune, wb, added);
		if (n == -ENOSPC && !prune)
			continue;
		rc = n < 0 ? n : record(dfd, bar, gone, ngone, added, n, &fd, &len);
		if (rc)
			break;
		step(sys, "recorded");
		rc = carve(sys, gone, ngone, bar, barlen, prune, added, &ndone, &ndel);
		if (rc == 0) {
			/* BAR2's own range: one more register, if one is free
			 * (with a write-back default type it is not needed). */
			if (!wb && add_range(sys, &added[n - 1]) == 0)
				ndone++;
			*nadded = ndone;
			break;
		}
		undo(sys, gone, ndel, added, ndone);
		if (rc != -ENOSPC && rc != -EINVAL)
			break;
	}
	if (rc)
		record_drop(dfd, bar, fd, len);
	if (fd >= 0)
		close(fd);
	return rc;
}

int nshm_mtrr_writeback_in(const struct nshm_mtrr_sys *sys, uint64_t bar, uint64_t barlen,
			   char *note, size_t notelen)
{
	struct mtrr_reg gone[MAX_REGS];
	int ngone, nadded = 0, dfd, lock, rc;
	bool wb;

	if (!barlen || (barlen & (barlen - 1)) || (bar & (barlen - 1)))
		return -EINVAL;
	dfd = record_dir(sys);
	if (dfd < 0) {
		snprintf(note, notelen, "%s: %s", sys->record_dir, strerror(-dfd));
		return dfd;
	}
	lock = take_lock(sys, dfd);
	if (lock < 0) {
		snprintf(note, notelen, "%s/mtrr.lock: %s", sys->record_dir, strerror(-lock));
		close(dfd);
		return lock;
	}
	/* Read under the lock: another caller may just have carved. */
	rc = ngone = covering(sys, bar, barlen, gone, &wb);
	if (ngone > 0 || (ngone == 0 && !wb))
		rc = change(sys, dfd, bar, barlen, gone, ngone, wb, &nadded);
	if (rc < 0)
		snprintf(note, notelen, "%s: %s", sys->proc_mtrr, strerror(-rc));
	else if (ngone || nadded)
		snprintf(note, notelen, "MTRR: %d range%s split around BAR2 into %d",
			 ngone, ngone == 1 ? "" : "s", nadded);
	step(sys, "changed");
	close(lock);
	close(dfd);
	return rc < 0 ? rc : 0;
}

#else /* not x86: no MTRRs */

int nshm_mtrr_writeback_in(const struct nshm_mtrr_sys *sys, uint64_t bar, uint64_t barlen,
			   char *note, size_t notelen)
{
	(void)sys;
	(void)bar;
	(void)barlen;
	snprintf(note, notelen, "no MTRRs on this architecture");
	return -EOPNOTSUPP;
}

#endif

int nshm_mtrr_writeback(uint64_t bar, uint64_t barlen, char *note, size_t notelen)
{
	return nshm_mtrr_writeback_in(&nshm_mtrr_real, bar, barlen, note, notelen);
}
