/* SPDX-License-Identifier: BSD-2-Clause */
/* util: the leaf wing (lib/README.md). Time, randomness, whole
 * writes, CRC-32 and SHA-256, escaping, the checks on what a caller passes.
 * May include: lib/nshm.h and the C library, nothing else of lib/. */
#ifndef NSHM_UTIL_H
#define NSHM_UTIL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

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

/* io.c */
int nshm_write_all(int fd, const void *buf, size_t len,
		   volatile sig_atomic_t *cancel);

#endif
