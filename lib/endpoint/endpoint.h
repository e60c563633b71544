/* SPDX-License-Identifier: BSD-2-Clause */
/* endpoint: the memory a region lives in (lib/README.md): a POSIX
 * shm object or file, a guest's BAR2 through /dev/nshmN or resource2, its
 * cache type (MTRR), and copies out of it.
 * May include: lib/doorbell/, lib/util/, lib/nshm.h, kmod/nshm_uapi.h. */
#ifndef NSHM_ENDPOINT_H
#define NSHM_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "doorbell/doorbell.h"
#include "util/util.h"

struct nshm_region {
	unsigned char *base;
	size_t size;
	bool wc;               /* write-combining mapping: fence before doorbells */
	char path[256];
	char mapping[160];     /* for nshm-stat: cache type and how it was mapped */
	struct nshm_doorbell db;
	/* A receiver's chunk buffer, kept between transfers while the region
	 * stays open (a resident's next transfer finds its pages touched):
	 * lib/proto/rx.c takes it and gives it back; nshm_close frees it. */
	void *spare_buf;
	size_t spare_len;
};

/* Value of owner_id.bell for this region: our peer ID + 1, 0 without a
 * doorbell. */
static inline uint32_t nshm_bell_word(const struct nshm_region *r)
{
	return r->db.fd >= 0 && r->db.self_id < 65536 ? r->db.self_id + 1 : 0;
}

/* nshm_dev.c: pci endpoints through the guest module's /dev/nshmN. */
int nshm_dev_find(const char *sysroot, const char *bdf, char *path, size_t pathlen);
int nshm_dev_setup(struct nshm_region *r, int fd, const char *path, unsigned flags,
		   char *msg, size_t msglen);
int nshm_devmem_setup(struct nshm_region *r, const char *resource2, char *msg, size_t msglen);
/* A sysfs-mapped ivshmem-doorbell without the module: ring through BAR0's
 * Doorbell register (root; db->fd stays -1: not wakeable). Else nothing. */
void nshm_bar0_attach(struct nshm_doorbell *db, const char *resource2);
const char *nshm_cache_name(uint32_t cache);
/* nshm_mtrr.c: write-back for BAR2 through /proc/mtrr (root, x86). Where
 * the kernel's files and the restore record are: nshm_mtrr_real, or plain
 * files and a step hook in tests (no environment is read as root). */
struct nshm_mtrr_sys {
	const char *proc_mtrr;   /* /proc/mtrr */
	const char *proc_iomem;  /* /proc/iomem */
	const char *record_dir;  /* /run/nshm: mtrr-BASE records, mtrr.lock */
	/* Tests: called with "waiting" (the lock is taken), "locked",
	 * "recorded" (synced, nothing changed yet), "changed" (still locked). */
	void (*step)(const char *what, void *arg);
	void *step_arg;
};
extern const struct nshm_mtrr_sys nshm_mtrr_real;
int nshm_mtrr_writeback(uint64_t bar, uint64_t barlen, char *note, size_t notelen);
int nshm_mtrr_writeback_in(const struct nshm_mtrr_sys *sys, uint64_t bar, uint64_t barlen,
			   char *note, size_t notelen);
/* wc_copy.c: copy n bytes out of the region into private memory, with
 * streaming loads when the mapping is write-combining (r->wc). */
void nshm_copy_in(const struct nshm_region *r, void *dst, const void *src, size_t n);

#endif
