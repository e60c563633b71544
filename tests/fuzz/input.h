/* SPDX-License-Identifier: BSD-2-Clause */
/* Reading a fuzzer's input as a stream of values: past the end every read
 * gives zeros, so any input, even an empty one, is a complete script. */
#ifndef NSHM_FUZZ_INPUT_H
#define NSHM_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct in {
	const uint8_t *p;
	size_t n;
};

static inline void in_bytes(struct in *in, void *dst, size_t len)
{
	size_t k = len < in->n ? len : in->n;

	memcpy(dst, in->p, k);
	memset((char *)dst + k, 0, len - k);
	in->p += k;
	in->n -= k;
}

static inline uint8_t in_u8(struct in *in)
{
	uint8_t v;

	in_bytes(in, &v, 1);
	return v;
}

static inline uint16_t in_u16(struct in *in)
{
	uint16_t v;

	in_bytes(in, &v, 2);
	return v;
}

static inline uint32_t in_u32(struct in *in)
{
	uint32_t v;

	in_bytes(in, &v, 4);
	return v;
}

static inline uint64_t in_u64(struct in *in)
{
	uint64_t v;

	in_bytes(in, &v, 8);
	return v;
}

#endif
