/* CRC-32 behind one function: ISA-L when the build found it (ten times
 * zlib's speed on these machines), zlib otherwise; the values are zlib's. */
#include "nshm.h"

#include <zlib.h>
#ifdef HAVE_ISAL
#include <isa-l/crc.h>
#endif

uint32_t nshm_crc32(uint32_t crc, const void *buf, size_t len)
{
#ifdef HAVE_ISAL
	/* crc32_gzip_refl takes the running value as zlib's crc32 does. */
	return crc32_gzip_refl(crc, buf, len);
#else
	/* zlib takes uInt lengths: feed it in pieces that fit. */
	const unsigned char *p = buf;

	while (len > 0) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		crc = (uint32_t)crc32(crc, p, n);
		p += n;
		len -= n;
	}
	return crc;
#endif
}

uint32_t nshm_crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t len2)
{
	return (uint32_t)crc32_combine64(crc1, crc2, (z_off64_t)len2);
}

const char *nshm_crc32_impl(void)
{
#ifdef HAVE_ISAL
	return "isa-l";
#else
	return "zlib";
#endif
}
