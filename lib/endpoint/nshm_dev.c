/* SPDX-License-Identifier: BSD-2-Clause */
/* pci endpoints through the nshm guest module (kmod/): /dev/nshmN maps BAR2
 * write-back where the kernel grants it, and its fd is the MSI-X doorbell.
 * Without the module bound to the device region.c uses sysfs (resource2)
 * and polling, as before. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "endpoint.h"
#include "proto/layout.h"
#include "../../kmod/nshm_uapi.h"

/* The ioctl numbers the bound module answers to: this one's, or those of a
 * module 0.1.0 that is still loaded after an upgrade of the
 * programs (kmod/nshm_uapi.h). */
struct dev_ioc {
	unsigned long info, ring, set_cache;
};

static const struct dev_ioc ioc_now = {
	NSHM_IOC_INFO, NSHM_IOC_RING, NSHM_IOC_SET_CACHE
};
static const struct dev_ioc ioc_old = {
	NSHM_IOC_OLD_INFO, NSHM_IOC_OLD_RING, NSHM_IOC_OLD_SET_CACHE
};

struct dev_bell {
	char kind[48];
	const struct dev_ioc *ioc;
};

int nshm_dev_find(const char *sysroot, const char *bdf, char *path, size_t pathlen)
{
	char dir[512], link[512];
	const char *drv;
	ssize_t n;
	DIR *d;
	struct dirent *e;
	int rc = -ENOENT;

	snprintf(dir, sizeof(dir), "%s/bus/pci/devices/%s/driver", sysroot, bdf);
	n = readlink(dir, link, sizeof(link) - 1);
	if (n < 0)
		return -ENOENT;
	link[n] = '\0';
	drv = strrchr(link, '/');
	if (strcmp(drv ? drv + 1 : link, "nshm") != 0)
		return -ENOENT;
	/* The module's misc device has the PCI device as its parent. */
	snprintf(dir, sizeof(dir), "%s/bus/pci/devices/%s/misc", sysroot, bdf);
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, "nshm", 4) != 0)
			continue;
		snprintf(path, pathlen, "/dev/%.32s", e->d_name);
		rc = 0;
		break;
	}
	if (d)
		closedir(d);
	return rc;
}

const char *nshm_cache_name(uint32_t cache)
{
	switch (cache) {
	case NSHM_CACHE_WB: return "write-back";
	case NSHM_CACHE_WC: return "write-combining";
	case NSHM_CACHE_UC_MINUS: return "uncached-minus";
	case NSHM_CACHE_UC: return "uncached";
	default: return "other";
	}
}

static int dev_ring(struct nshm_doorbell *db, uint32_t peer_id)
{
	struct nshm_ring ring = { .peer = peer_id, .vector = 0 };
	const struct dev_bell *ctx = db->ctx;

	if (db->fd < 0)
		return -EOPNOTSUPP;     /* a device without vectors: see dev_bell */
	if (peer_id > 0xffff)
		return -EINVAL;
	return ioctl(db->fd, ctx->ioc->ring, &ring) == 0 ? 0 : -errno;
}

/* The fd is non-blocking: a spurious poll() wake-up drains nothing. */
static void dev_drain(struct nshm_doorbell *db)
{
	uint64_t count;

	while (read(db->fd, &count, sizeof(count)) < 0 && errno == EINTR)
		;
}

static void dev_close(struct nshm_doorbell *db)
{
	if (db->fd >= 0)
		close(db->fd);
	db->fd = -1;
	free(db->ctx);
	db->ctx = NULL;
}

/* Map through fd with cache type `want`; *got is what the kernel gave. */
static void *dev_map(int fd, const struct dev_ioc *ioc, size_t size, uint32_t want,
		     uint32_t *got)
{
	struct nshm_info info;
	void *base;

	if (ioctl(fd, ioc->set_cache, (unsigned long)want) != 0)
		return MAP_FAILED;
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return base;
	if (ioctl(fd, ioc->info, &info) != 0) {
		munmap(base, size);
		return MAP_FAILED;
	}
	*got = info.map_cache;
	return base;
}

/* Write-back asked and not granted: as root, carve BAR2 out of the
 * firmware's uncachable MTRR range and map again; else (or if that fails)
 * write-combining, which the copy out of the region reads with streaming
 * loads. */
static void *dev_map_auto(int fd, const struct dev_ioc *ioc, const struct nshm_info *info,
			  uint32_t *got, char *note, size_t notelen)
{
	size_t size = (size_t)info->bar2_size;
	void *base = dev_map(fd, ioc, size, NSHM_CACHE_WB, got);

	if (base == MAP_FAILED || *got == NSHM_CACHE_WB)
		return base;
	munmap(base, size);
	if (geteuid() == 0 &&
	    nshm_mtrr_writeback(info->bar2_addr, info->bar2_size, note, notelen) == 0) {
		base = dev_map(fd, ioc, size, NSHM_CACHE_WB, got);
		if (base == MAP_FAILED || *got == NSHM_CACHE_WB)
			return base;
		munmap(base, size);
	}
	return dev_map(fd, ioc, size, NSHM_CACHE_WC, got);
}

/* NSHM_IOC_INFO under this module's number or, failing that, an old one's. */
static const struct dev_ioc *dev_info(int fd, struct nshm_info *info)
{
	if (ioctl(fd, ioc_now.info, info) == 0)
		return &ioc_now;
	if (errno == ENOTTY && ioctl(fd, ioc_old.info, info) == 0)
		return &ioc_old;
	return NULL;
}

static const struct nshm_doorbell dev_doorbell = {
	.ring = dev_ring,
	.drain = dev_drain,
	.close = dev_close,
};

/* The device's doorbell: MSI-X vectors through its own fd (a duplicate,
 * non-blocking). Without vectors (ivshmem-plain) there is no bell at all:
 * nothing to wait on, and ring() says EOPNOTSUPP. */
static int dev_bell(struct nshm_doorbell *db, int fd, const struct dev_ioc *ioc,
		    const struct nshm_info *info, const char *path)
{
	struct dev_bell *ctx = calloc(1, sizeof(*ctx));
	int bell_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3), rc;

	if (!ctx || bell_fd < 0 || fcntl(bell_fd, F_SETFL, O_NONBLOCK) != 0) {
		rc = ctx ? -errno : -ENOMEM;
		if (bell_fd >= 0)
			close(bell_fd);
		free(ctx);
		return rc;
	}
	ctx->ioc = ioc;
	snprintf(ctx->kind, sizeof(ctx->kind), "%s (%s)",
		 info->vectors ? "MSI-X" : "polling", path);
	if (!info->vectors) {
		/* No interrupts to wait on: the region is polled. */
		close(bell_fd);
		bell_fd = -1;
	}
	*db = dev_doorbell;
	db->fd = bell_fd;
	db->self_id = info->ivposition;
	db->kind = info->vectors ? ctx->kind : "polling";
	db->ctx = ctx;
	return 0;
}

int nshm_dev_setup(struct nshm_region *r, int fd, const char *path, unsigned flags,
		   char *msg, size_t msglen)
{
	struct nshm_info info;
	const struct dev_ioc *ioc;
	char note[128] = "";
	uint32_t got = 0;
	void *base;
	int rc;

	errno = 0;
	ioc = dev_info(fd, &info);
	if (!ioc || info.version != NSHM_UAPI_VERSION) {
		rc = errno ? -errno : -EPROTO;
		snprintf(msg, msglen, "%s: not an nshm device of this version", path);
		return rc;
	}
	if (info.bar2_size < NSHM_DATA_OFF + NSHM_MIN_CHUNK || info.bar2_size > SIZE_MAX) {
		snprintf(msg, msglen, "%s: BAR2 is %llu bytes; nshm needs at least %u",
			 path, (unsigned long long)info.bar2_size,
			 NSHM_DATA_OFF + NSHM_MIN_CHUNK);
		return -NSHM_ETOOSMALL;
	}
	if (flags & NSHM_MAP_WC)
		base = dev_map(fd, ioc, info.bar2_size, NSHM_CACHE_WC, &got);
	else if (flags & NSHM_MAP_UC)
		base = dev_map(fd, ioc, info.bar2_size, NSHM_CACHE_UC_MINUS, &got);
	else
		base = dev_map_auto(fd, ioc, &info, &got, note, sizeof(note));
	if (base == MAP_FAILED) {
		rc = -errno;
		snprintf(msg, msglen, "cannot map %s: %s", path, strerror(errno));
		return rc;
	}
	rc = dev_bell(&r->db, fd, ioc, &info, path);
	if (rc < 0) {
		munmap(base, info.bar2_size);
		return rc;
	}
	r->base = base;
	r->size = (size_t)info.bar2_size;
	r->wc = got == NSHM_CACHE_WC;
	snprintf(r->path, sizeof(r->path), "%.255s", path);
	snprintf(r->mapping, sizeof(r->mapping), "%s (%s, module%s%.80s)",
		 nshm_cache_name(got), path, got != NSHM_CACHE_WB && note[0] ? "; " : "",
		 got != NSHM_CACHE_WB ? note : "");
	return 0;
}

/* --map wb without the module: BAR2 through /dev/mem once the MTRRs say
 * write-back for it (as root). /dev/mem without O_SYNC asks for write-back,
 * which the kernel grants where the MTRRs agree and no other mapping of
 * BAR2 holds another type. Kernel lockdown (Secure Boot) forbids /dev/mem:
 * the module is the way there. */
int nshm_devmem_setup(struct nshm_region *r, const char *resource2, char *msg, size_t msglen)
{
	char path[512], note[128] = "";
	unsigned long long start = 0, end = 0;
	const char *slash = strrchr(resource2, '/');
	FILE *f;
	void *base;
	size_t size;
	int fd, rc, n = 0;

	snprintf(path, sizeof(path), "%.*s/resource",
		 (int)(slash ? slash - resource2 : 0), resource2);
	f = fopen(path, "re");
	/* Line 3 is BAR2: "start end flags". */
	while (f && n < 3 && fscanf(f, "%llx %llx %*x", &start, &end) == 2)
		n++;
	if (f)
		fclose(f);
	if (n != 3 || end <= start) {
		snprintf(msg, msglen, "%s: cannot read BAR2's address", path);
		return -ENODEV;
	}
	size = (size_t)(end - start + 1);
	if (geteuid() != 0) {
		snprintf(msg, msglen, "--map wb needs root (/proc/mtrr, /dev/mem)");
		return -EPERM;
	}
	rc = nshm_mtrr_writeback(start, size, note, sizeof(note));
	if (rc < 0) {
		snprintf(msg, msglen, "--map wb: cannot make BAR2 write-back in the MTRRs: %s",
			 note[0] ? note : strerror(-rc));
		return rc;
	}
	fd = open("/dev/mem", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(msg, msglen, "/dev/mem: %s%s", strerror(errno),
			 errno == EPERM ? " (kernel lockdown? load the guest module instead)" : "");
		return rc;
	}
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)start);
	rc = base == MAP_FAILED ? -errno : 0;
	close(fd);
	if (rc < 0) {
		snprintf(msg, msglen, "cannot map BAR2 through /dev/mem: %s", strerror(-rc));
		return rc;
	}
	r->base = base;
	r->size = size;
	snprintf(r->path, sizeof(r->path), "/dev/mem");
	snprintf(r->mapping, sizeof(r->mapping),
		 "write-back asked (/dev/mem at 0x%llx; MTRR write-back)", start);
	r->db = NSHM_DOORBELL_NONE;
	return 0;
}

/* Without the module a guest cannot be woken (MSI-X needs a driver), but it
 * can still ring: the Doorbell register (BAR0, offset 12) of an
 * ivshmem-doorbell device, through sysfs resource0 (root). A peer asleep
 * until rung (nshm(7), DOORBELLS) is then woken by us; we still poll. */
#define BAR0_MAP 4096
#define REG_DOORBELL 12

struct bar0_bell {
	volatile uint32_t *regs;
};

static int bar0_ring(struct nshm_doorbell *db, uint32_t peer_id)
{
	struct bar0_bell *b = db->ctx;

	if (peer_id > 0xffff)
		return -EINVAL;
	/* Vector 0 of peer_id; QEMU writes that peer's eventfd. */
	b->regs[REG_DOORBELL / 4] = peer_id << 16;
	return 0;
}

static void bar0_close(struct nshm_doorbell *db)
{
	struct bar0_bell *b = db->ctx;

	munmap((void *)b->regs, BAR0_MAP);
	free(b);
	db->ctx = NULL;
	db->ring = NULL;
	db->close = NULL;
}

/* Line n (from 1) of the device's resource file: BAR n-1's start and end. */
static bool bar_present(const char *dir, int n)
{
	char path[PATH_MAX];
	unsigned long long start = 0, end = 0;
	FILE *f;
	int i = 0;

	snprintf(path, sizeof(path), "%s/resource", dir);
	f = fopen(path, "re");
	while (f && i < n && fscanf(f, "%llx %llx %*x", &start, &end) == 2)
		i++;
	if (f)
		fclose(f);
	return i == n && end > start;
}

void nshm_bar0_attach(struct nshm_doorbell *db, const char *resource2)
{
	const char *slash = strrchr(resource2, '/');
	char dir[PATH_MAX], path[PATH_MAX + 16];
	struct bar0_bell *b;
	void *regs;
	int fd;

	if (!slash || (size_t)(slash - resource2) >= sizeof(dir) || db->ring)
		return;
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - resource2), resource2);
	/* BAR1, the MSI-X table, is what an ivshmem-doorbell has and a plain
	 * one has not: on a plain device a ring would go nowhere. */
	if (!bar_present(dir, 2) || !bar_present(dir, 1))
		return;
	snprintf(path, sizeof(path), "%s/resource0", dir);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	regs = mmap(NULL, BAR0_MAP, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (regs == MAP_FAILED)
		return;
	b = calloc(1, sizeof(*b));
	if (!b) {
		munmap(regs, BAR0_MAP);
		return;
	}
	b->regs = regs;
	db->ctx = b;
	db->ring = bar0_ring;
	db->close = bar0_close;
	db->kind = "polling; rings through BAR0 (no module)";
}
