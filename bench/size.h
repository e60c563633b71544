/* SPDX-License-Identifier: BSD-2-Clause */
/* size.h: SIZE arguments of the bench tools (mkdata, memcpy-bw), one reading
 * for both: a decimal count of bytes with an optional K, M or G (powers of 2)
 * and an optional "iB" after it. Header-only: bench/run builds each tool from
 * its one .c file. Needs <errno.h> and <stdlib.h>. */
#ifndef NSHM_BENCH_SIZE_H
#define NSHM_BENCH_SIZE_H

static int parse_size(const char *s, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	if (*end)
		return -1;
	*out = v;
	return 0;
}

#endif
