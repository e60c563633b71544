/* SPDX-License-Identifier: BSD-2-Clause */
/* nshm_copy_in: the streaming-load copy (write-combining mappings) gives
 * the same bytes as memcpy for every length and alignment around its
 * 16- and 64-byte steps. The mapping type only matters for speed, so an
 * ordinary buffer tests the arithmetic. */
#include <stdlib.h>
#include <string.h>

#include "endpoint/endpoint.h"
#include "tap.h"

int main(void)
{
	static unsigned char src[4096 + 64], dst[4096 + 64], want[4096 + 64];
	struct nshm_region r = { .wc = true };
	size_t lens[] = { 0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 200, 4096 };
	int bad = 0;

	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (unsigned char)(i * 131 + 7);
	for (size_t a = 0; a < 32; a++)
		for (size_t d = 0; d < 3; d++)
			for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
				size_t n = lens[k];

				memset(dst, 0xee, sizeof(dst));
				memset(want, 0xee, sizeof(want));
				memcpy(want + d, src + a, n);
				nshm_copy_in(&r, dst + d, src + a, n);
				bad += memcmp(dst, want, sizeof(dst)) != 0;
			}
	ok(bad == 0, "streaming copy equals memcpy (%d cases differ)", bad);
	r.wc = false;
	nshm_copy_in(&r, dst, src + 3, 100);
	ok(memcmp(dst, src + 3, 100) == 0, "memcpy path for other mappings");
	return done_testing();
}
