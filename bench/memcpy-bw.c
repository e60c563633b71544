/* SPDX-License-Identifier: BSD-2-Clause */
/* memcpy-bw: the memory-bandwidth ceiling for moving SIZE bytes.
 *
 *   memcpy-bw SIZE
 *
 * Prints the seconds one memcpy() of SIZE bytes takes, measured in-process
 * (a process start would swamp small sizes), and exits 0 only if the copy is
 * byte-identical.  Both buffers are touched and copied once before timing,
 * because memory touched for the first time is several times slower on this
 * VM and that is page allocation, not bandwidth.  The timed loop repeats the
 * copy until about 256 MiB have moved and reports the mean, so that sizes
 * far below the clock's resolution still give a stable figure.  Sizes that
 * fit in the caches (1 MiB, 16 MiB) measure the cache, which is still a
 * ceiling for that size: nothing can move those bytes faster.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "size.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned long long size, reps, r;
	unsigned char *src, *dst;
	double t0, t1;
	size_t i;

	if (argc != 2 || parse_size(argv[1], &size) || size == 0) {
		fputs("usage: memcpy-bw SIZE\n", stderr);
		return 2;
	}
	src = malloc(size);
	dst = malloc(size);
	if (!src || !dst) {
		perror("memcpy-bw: malloc");
		return 1;
	}
	for (i = 0; i < size; i++)
		src[i] = (unsigned char)(i * 131u + (i >> 12));
	memset(dst, 0, size);
	memcpy(dst, src, size); /* warm: caches, TLB, page tables */

	reps = (256ull << 20) / size;
	if (reps < 1)
		reps = 1;
	t0 = now();
	for (r = 0; r < reps; r++) {
		memcpy(dst, src, size);
		/* Keep the compiler from merging or dropping identical copies. */
		__asm__ __volatile__("" : : "r"(dst) : "memory");
	}
	t1 = now();

	if (memcmp(dst, src, size) != 0) {
		fputs("memcpy-bw: copy differs\n", stderr);
		return 1;
	}
	printf("%.9f\n", (t1 - t0) / (double)reps);
	free(src);
	free(dst);
	return 0;
}
