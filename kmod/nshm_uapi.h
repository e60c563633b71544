/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * nshm_uapi.h - the user-space interface of the nshm guest module (/dev/nshmN).
 *
 * Shared by kmod/nshm.c and libnshm (lib/endpoint/nshm_dev.c). Fixed-size types only,
 * so that 32-bit and 64-bit callers see the same layout.
 *
 *   mmap(fd, offset 0..BAR2 size)  BAR2, the shared memory, with the cache
 *                                  type chosen by NSHM_IOC_SET_CACHE
 *                                  (default write-back); NSHM_IOC_INFO then
 *                                  reports the type the kernel granted.
 *   read(fd, &u64, 8)              blocks until an interrupt arrived since
 *                                  this file's last read; returns the total
 *                                  interrupt count (all vectors).
 *   poll(fd)                       POLLIN when the count moved since the last
 *                                  read.
 *   ioctl(fd, NSHM_IOC_RING, &r)   rings peer r.peer's vector r.vector.
 */
#ifndef NSHM_UAPI_H
#define NSHM_UAPI_H

#ifdef __KERNEL__
#include <linux/ioctl.h>
#include <linux/types.h>
#else
#include <stdint.h>
#include <sys/ioctl.h>
typedef uint32_t __u32;
typedef uint64_t __u64;
#endif

#define NSHM_UAPI_VERSION 1

/* Cache types (requested with NSHM_IOC_SET_CACHE, reported in map_cache). */
#define NSHM_CACHE_NONE 0 /* not mapped yet through this file */
#define NSHM_CACHE_WB 1   /* write-back */
#define NSHM_CACHE_WC 2   /* write-combining */
#define NSHM_CACHE_UC_MINUS 3
#define NSHM_CACHE_UC 4
#define NSHM_CACHE_OTHER 5 /* write-through or write-protect */

struct nshm_info {
	__u32 version;      /* NSHM_UAPI_VERSION */
	__u32 ivposition;   /* BAR0 offset 8: our peer ID (0 without a server) */
	__u64 bar2_addr;    /* physical address of BAR2 */
	__u64 bar2_size;    /* bytes */
	__u32 vectors;      /* MSI-X vectors in use (0: no interrupts) */
	__u32 map_cache;    /* NSHM_CACHE_*: what this file's last mmap got */
	__u64 irq_count;    /* interrupts so far, all vectors */
	__u32 want_cache;   /* NSHM_CACHE_*: what this file's next mmap asks */
	__u32 reserved0;
	__u64 reserved[4];
};

struct nshm_ring {
	__u32 peer;         /* 0..65535 */
	__u32 vector;       /* 0..65535 */
};

/*
 * 0xBA is in no row of the kernel's
 * Documentation/userspace-api/ioctl/ioctl-number.rst (its neighbours: 0xB5
 * rpmsg, 0xB6 fpga-dfl, 0xB7 remoteproc/nsfs, 0xC0 iowarrior), and no uapi
 * header of 6.1 or 6.12 uses it as an ioctl type.
 */
#define NSHM_IOC_MAGIC 0xBA
#define NSHM_IOC_INFO _IOR(NSHM_IOC_MAGIC, 0, struct nshm_info)
#define NSHM_IOC_RING _IOW(NSHM_IOC_MAGIC, 1, struct nshm_ring)
/* Argument: NSHM_CACHE_WB, _WC or _UC_MINUS, by value. */
#define NSHM_IOC_SET_CACHE _IO(NSHM_IOC_MAGIC, 2)

/*
 * The numbers of nshm.ko 0.1.0, under rpmsg's 0xB5 (SET_CACHE was
 * RPMSG_DESTROY_EPT_IOCTL's). Only libnshm uses them, to talk to such a
 * module still loaded; this module answers them with ENOTTY.
 */
#define NSHM_IOC_OLD_INFO _IOR(0xB5, 0, struct nshm_info)
#define NSHM_IOC_OLD_RING _IOW(0xB5, 1, struct nshm_ring)
#define NSHM_IOC_OLD_SET_CACHE _IO(0xB5, 2)

#endif /* NSHM_UAPI_H */
