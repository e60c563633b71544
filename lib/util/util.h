/* SPDX-License-Identifier: BSD-2-Clause */
/* util: the leaf wing (lib/README.md). Time, randomness, whole
 * writes, CRC-32 and SHA-256, escaping, the checks on what a caller passes.
 * May include: lib/nshm.h and the C library, nothing else of lib/. */
#ifndef NSHM_UTIL_H
#define NSHM_UTIL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "nshm.h"

/* crc.c: the implementations behind nshm_crc32, for the tests. */
uint32_t nshm_crc32_zlib(uint32_t crc, const void *buf, size_t len);
#ifdef HAVE_ISAL
uint32_t nshm_crc32_isal(uint32_t crc, const void *buf, size_t len);
#endif

/* time.c */
int64_t nshm_now_ns(void);
uint64_t nshm_random64(void);
void nshm_sleep_ns(int64_t ns);
/* Asleep up to ns while the 32-bit word at addr (in memory shared with
 * another process on this kernel) holds v, or until woken there (futex(2),
 * FUTEX_WAIT): 0 woken, -EAGAIN it held no longer, -ETIMEDOUT, -EINTR, or
 * another -errno when the mapping cannot take a futex (a BAR). */
int nshm_sleep_on(const void *addr, uint32_t v, int64_t ns);
/* Wakes one sleeper of nshm_sleep_on on addr, if any. */
void nshm_wake_on(const void *addr);

/* sha256.c: the stream's SHA-256, with NSHM_P_DIGEST. */
struct nshm_sha256 {
	uint32_t h[8];
	uint64_t len;
	unsigned char buf[64];
	size_t fill;
};
void nshm_sha256_init(struct nshm_sha256 *s);
void nshm_sha256_update(struct nshm_sha256 *s, const void *buf, size_t len);
void nshm_sha256_final(struct nshm_sha256 *s, unsigned char out[32]);

/* abi.c: what a caller passes has its reserved fields zero: 0 or -EINVAL. */
int nshm_check_params(const struct nshm_params *p);
int nshm_check_meta(const struct nshm_meta *m);

/* run_dir.c: nshm-server's sockets: NSHM_RUN_DIR, a build-time path,
 * never from the environment (root runs these programs). */
#ifndef NSHM_RUN_DIR
#define NSHM_RUN_DIR "/run/nshm"
#endif
const char *nshm_run_dir(void);

/* io.c: the one full-write loop: short counts retried, EINTR too unless
 * *cancel is set (then -ECANCELED); at off, or at the file position when
 * off < 0. 0 or -errno. */
int nshm_pwrite_all(int fd, const void *buf, size_t len, off_t off,
		    volatile sig_atomic_t *cancel);
static inline int nshm_write_all(int fd, const void *buf, size_t len,
				 volatile sig_atomic_t *cancel)
{
	return nshm_pwrite_all(fd, buf, len, -1, cancel);
}

/* publish.c: a temporary name, then the final one (fsync policy there). */
#define NSHM_TEMP_PREFIX ".nshm-"
#define NSHM_TEMP_LEN 13          /* ".nshm-XXXXXX" and its NUL */
/* ".nshm-" and six random characters: from *seed (xorshift64, cheap; not
 * zero) or, seed NULL, nshm_random64. */
void nshm_temp_name(char tmp[NSHM_TEMP_LEN], uint64_t *seed);
/* A new file of that name in dirfd (O_EXCL, O_NOFOLLOW), its name in tmp:
 * the fd, or -errno (-EEXIST after 16 taken names). */
int nshm_temp_open(int dirfd, char tmp[NSHM_TEMP_LEN], mode_t mode, uint64_t *seed);
/* tmp, in dirfd, to name: never over anything that exists unless replace
 * (RENAME_NOREPLACE; link and unlink where a file system has no such
 * rename). 0 or -errno: -EEXIST, or with replace -EISDIR over a directory. */
int nshm_publish(int dirfd, const char *tmp, const char *name, bool replace);

/* relpath.c: the one syntactic rule for a path from a peer (a request's
 * path, a push's SUBDIR, a pull's PATH), shared by sender and receiver:
 * components that are not empty, "." or "..", without control bytes;
 * absolute only if allow_abs. NULL if it passes, else why not. */
const char *rel_path_problem(const char *path, size_t len, bool allow_abs);

/* beneath.c: the one confinement: path opened beneath dirfd by the
 * kernel (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS; O_CLOEXEC added). The fd, or -errno: -ELOOP a
 * symlink, -EXDEV outside, -ENOSYS no openat2 (Linux < 5.6). */
int nshm_open_beneath(int dirfd, const char *path, int flags);
/* The same rule for one name (no '/', not empty, "." or ".."), without
 * openat2: openat with O_NOFOLLOW (O_CLOEXEC added). The fd, or -errno:
 * -ELOOP or -ENOTDIR (with O_DIRECTORY) a symlink, -EINVAL not one name. */
int nshm_open_child(int dirfd, const char *name, int flags);

/* errors.c: the one errno -> reason table (what a peer is told a local
 * failure was): err a positive errno; otherwise for the rest. */
uint32_t nshm_errno_reason(int err, uint32_t otherwise);
/* The reason a side gives when it stops for a failure of its own that is
 * not about the destination (its input, its sink, a signal): rc -errno. */
uint32_t nshm_stop_reason(int rc);

#endif
