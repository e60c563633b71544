/* SPDX-License-Identifier: BSD-2-Clause */
/* nshm_crc32 must give zlib's values, whichever implementation is built,
 * and nshm_crc32_combine must agree with one pass over the whole. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/util.h"
#include "tap.h"

int main(void)
{
	static const size_t lens[] = { 0, 1, 3, 15, 16, 63, 64, 255, 4096, 65537, 1 << 20 };
	size_t max = 1 << 20;
	unsigned char *buf = malloc(max + 1);   /* + 1: some checks start at buf + 1 */
	int all = 1;

	srand(42);
	for (size_t i = 0; i <= max; i++)
		buf[i] = (unsigned char)rand();
	ok(nshm_crc32(0, "123456789", 9) == 0xcbf43926u, "check value of CRC-32 (%s)",
	   nshm_crc32_impl());
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint32_t z = (uint32_t)crc32(0, buf, (uInt)lens[i]);

		all &= nshm_crc32(0, buf, lens[i]) == z;
	}
	ok(all, "same values as zlib's crc32 at %zu lengths", sizeof(lens) / sizeof(lens[0]));
	/* Unaligned starts and running values. */
	all = 1;
	for (size_t off = 1; off < 9; off++) {
		uint32_t z = (uint32_t)crc32(0x12345678u, buf + off, 1000);

		all &= nshm_crc32(0x12345678u, buf + off, 1000) == z;
	}
	ok(all, "running value and unaligned start match zlib");
	all = 1;
	for (size_t cut = 0; cut <= 8192; cut += 1021) {
		uint32_t a = nshm_crc32(0, buf, cut);
		uint32_t b = nshm_crc32(0, buf + cut, 8192 - cut);

		all &= nshm_crc32_combine(a, b, 8192 - cut) ==
		       (uint32_t)crc32(0, buf, 8192);
	}
	ok(all, "crc32_combine of two parts equals the whole");
	ok(nshm_crc32(nshm_crc32(0, buf, 100), buf + 100, 900) ==
	   (uint32_t)crc32(0, buf, 1000), "chained calls equal one call");
	/* Both implementations, whichever the calibration picked. */
	all = 1;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint32_t z = (uint32_t)crc32(7, buf + 1, (uInt)lens[i]);

		all &= nshm_crc32_zlib(7, buf + 1, lens[i]) == z;
#ifdef HAVE_ISAL
		all &= nshm_crc32_isal(7, buf + 1, lens[i]) == z;
#endif
	}
	ok(all, "zlib%s implementation%s give zlib's values",
#ifdef HAVE_ISAL
	   " and ISA-L", "s"
#else
	   "", ""
#endif
	);
	/* The choice the programs make from NSHM_CRC, through the API. */
	ok(nshm_crc32_use("zlib") == 0 && strcmp(nshm_crc32_impl(), "zlib") == 0 &&
	   nshm_crc32(0, "123456789", 9) == 0xcbf43926u, "nshm_crc32_use(\"zlib\") uses zlib");
#ifdef HAVE_ISAL
	ok(nshm_crc32_use("isal") == 0 && strcmp(nshm_crc32_impl(), "isa-l") == 0 &&
	   nshm_crc32(0, "123456789", 9) == 0xcbf43926u, "nshm_crc32_use(\"isal\") uses isa-l");
#else
	ok(nshm_crc32_use("isal") == -ENOTSUP && strcmp(nshm_crc32_impl(), "zlib") == 0,
	   "nshm_crc32_use(\"isal\") without ISA-L: -ENOTSUP, choice kept");
#endif
	ok(nshm_crc32_use("crc32c") == -EINVAL, "an unknown implementation is refused");
	ok(nshm_crc32_use(NULL) == 0 && nshm_crc32_use("auto") == 0 &&
	   nshm_crc32(0, "123456789", 9) == 0xcbf43926u, "back to the timed choice (%s)",
	   nshm_crc32_impl());
	free(buf);
	return done_testing();
}
