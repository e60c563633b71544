/* CRC-32 behind one function, with zlib's values. Two implementations:
 * ISA-L's crc32_gzip_refl (when the build found libisal: ten times zlib's
 * speed on a host with PCLMULQDQ) and zlib's crc32. On a CPU without
 * PCLMULQDQ, as in an emulated (TCG) guest, ISA-L falls back to a byte-wise
 * loop three times slower than zlib's; so the first call times both on a
 * small buffer and keeps the faster. NSHM_CRC=isal|zlib overrides. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#ifdef HAVE_ISAL
#include <isa-l/crc.h>
#endif

#include "internal.h"

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
static crc_fn chosen = nshm_crc32_zlib;
static const char *chosen_name = "zlib";
static pthread_once_t choose_once = PTHREAD_ONCE_INIT;

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

static void choose(void)
{
#ifdef HAVE_ISAL
	const char *force = getenv("NSHM_CRC");
	static unsigned char buf[65536];

	if (force && strcmp(force, "zlib") == 0)
		return;
	if (!(force && strcmp(force, "isal") == 0)) {
		memset(buf, 0x5a, sizeof(buf));
		if (time_fn(nshm_crc32_zlib, buf, sizeof(buf)) <
		    time_fn(nshm_crc32_isal, buf, sizeof(buf)))
			return;
	}
	chosen = nshm_crc32_isal;
	chosen_name = "isa-l";
#endif
}

uint32_t nshm_crc32(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&choose_once, choose);
	return chosen(crc, buf, len);
}

uint32_t nshm_crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t len2)
{
	return (uint32_t)crc32_combine64(crc1, crc2, (z_off64_t)len2);
}

const char *nshm_crc32_impl(void)
{
	pthread_once(&choose_once, choose);
	return chosen_name;
}
