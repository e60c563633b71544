/* SPDX-License-Identifier: BSD-2-Clause */
/* CRC-32 behind one function, with zlib's values. Two implementations:
 * ISA-L's crc32_gzip_refl (when the build found libisal: ten times zlib's
 * speed on a host with PCLMULQDQ) and zlib's crc32. On a CPU without
 * PCLMULQDQ, as in an emulated (TCG) guest, ISA-L falls back to a byte-wise
 * loop three times slower than zlib's; so the first call times both on a
 * small buffer and keeps the faster. nshm_crc32_use() overrides the choice:
 * the library reads no environment for it (the programs pass NSHM_CRC in).
 *
 * The choice is one atomic pointer: threads that compute CRCs while another
 * calls nshm_crc32_use() each see one implementation or the other, both of
 * which give the same values. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <zlib.h>
#ifdef HAVE_ISAL
#include <isa-l/crc.h>
#endif

#include "util.h"

uint32_t nshm_crc32_zlib(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	/* zlib takes uInt lengths: feed it in pieces that fit. */
	while (len > 0) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		crc = (uint32_t)crc32(crc, p, n);
		p += n;
		len -= n;
	}
	return crc;
}

#ifdef HAVE_ISAL
uint32_t nshm_crc32_isal(uint32_t crc, const void *buf, size_t len)
{
	/* crc32_gzip_refl takes the running value as zlib's crc32 does. */
	return crc32_gzip_refl(crc, buf, len);
}
#endif

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
struct crc_impl {
	crc_fn fn;
	const char *name;
};
static const struct crc_impl zlib_impl = { nshm_crc32_zlib, "zlib" };
#ifdef HAVE_ISAL
static const struct crc_impl isal_impl = { nshm_crc32_isal, "isa-l" };
#endif

/* NULL until the first use (or after nshm_crc32_use("auto")). Acquire/release: a reader
 * that sees the pointer sees the constant it points to (the constants are
 * static, so relaxed would do; acquire costs nothing once per call). */
static _Atomic(const struct crc_impl *) chosen;
static const struct crc_impl *timed = &zlib_impl;   /* set once, in time_both */
static pthread_once_t timed_once = PTHREAD_ONCE_INIT;

#ifdef HAVE_ISAL
/* Best of three runs over 64 KiB: microseconds on a host, a fraction of a
 * millisecond under emulation, once per process. */
static int64_t time_fn(crc_fn f, const unsigned char *buf, size_t len)
{
	int64_t best = INT64_MAX;
	volatile uint32_t sink = 0;

	for (int i = 0; i < 3; i++) {
		int64_t t0 = nshm_now_ns();

		sink ^= f(0, buf, len);
		t0 = nshm_now_ns() - t0;
		best = t0 < best ? t0 : best;
	}
	(void)sink;
	return best;
}
#endif

/* The faster of the two on this CPU, once per process. */
static void time_both(void)
{
#ifdef HAVE_ISAL
	static unsigned char buf[65536];

	int64_t zlib_ns;

	memset(buf, 0x5a, sizeof(buf));
	zlib_ns = time_fn(nshm_crc32_zlib, buf, sizeof(buf));
	if (time_fn(nshm_crc32_isal, buf, sizeof(buf)) <= zlib_ns)
		timed = &isal_impl;
#endif
}

static const struct crc_impl *timed_choice(void)
{
	pthread_once(&timed_once, time_both);
	return timed;
}

static const struct crc_impl *current(void)
{
	const struct crc_impl *c = atomic_load_explicit(&chosen, memory_order_acquire);
	const struct crc_impl *none = NULL;

	if (c)
		return c;
	/* First use: the timed choice, unless nshm_crc32_use() got in first. */
	c = timed_choice();
	if (!atomic_compare_exchange_strong_explicit(&chosen, &none, c,
						     memory_order_acq_rel,
						     memory_order_acquire))
		c = none;
	return c;
}

int nshm_crc32_use(const char *impl)
{
	const struct crc_impl *c;

	if (!impl || !*impl || strcmp(impl, "auto") == 0)
		c = NULL;          /* timed at the first use, not now */
	else if (strcmp(impl, "zlib") == 0)
		c = &zlib_impl;
	else if (strcmp(impl, "isal") == 0 || strcmp(impl, "isa-l") == 0)
#ifdef HAVE_ISAL
		c = &isal_impl;
#else
		return -ENOTSUP;
#endif
	else
		return -EINVAL;
	atomic_store_explicit(&chosen, c, memory_order_release);
	return 0;
}

uint32_t nshm_crc32(uint32_t crc, const void *buf, size_t len)
{
	return current()->fn(crc, buf, len);
}

uint32_t nshm_crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t len2)
{
	return (uint32_t)crc32_combine64(crc1, crc2, (z_off64_t)len2);
}

const char *nshm_crc32_impl(void)
{
	return current()->name;
}
