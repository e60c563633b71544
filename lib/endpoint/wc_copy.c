/* SPDX-License-Identifier: BSD-2-Clause */
/* Copies out of the region. A write-combining mapping of BAR2
 * (resource2_wc, or /dev/nshmN where write-back could not be had) is
 * uncached for loads: ordinary loads fetch it a few bytes at a time. SSE4.1's
 * streaming load (movntdqa) fetches a whole 64-byte line into a fill buffer
 * and serves the next loads of that line from it, the documented way to read
 * write-combining memory at speed (Intel, "Increasing memory throughput with
 * Intel SSE4 streaming load", 2007). Other mappings: memcpy. */
#include <stdint.h>
#include <string.h>

#include "endpoint.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

__attribute__((target("sse4.1")))
static void stream_copy(unsigned char *dst, const unsigned char *src, size_t n)
{
	size_t head = (16 - ((uintptr_t)src & 15)) & 15;

	/* Streaming loads on write-combining memory are weakly ordered: the
	 * fence keeps them after the acquire load that said the data is
	 * there. One per call (a piece of up to 256 KiB). */
	_mm_mfence();
	if (head > n)
		head = n;
	memcpy(dst, src, head);
	dst += head;
	src += head;
	n -= head;
	for (; n >= 64; n -= 64, src += 64, dst += 64) {
		/* The whole line first, then the stores. */
		__m128i a = _mm_stream_load_si128((__m128i *)(uintptr_t)src);
		__m128i b = _mm_stream_load_si128((__m128i *)(uintptr_t)(src + 16));
		__m128i c = _mm_stream_load_si128((__m128i *)(uintptr_t)(src + 32));
		__m128i d = _mm_stream_load_si128((__m128i *)(uintptr_t)(src + 48));

		_mm_storeu_si128((__m128i *)(void *)dst, a);
		_mm_storeu_si128((__m128i *)(void *)(dst + 16), b);
		_mm_storeu_si128((__m128i *)(void *)(dst + 32), c);
		_mm_storeu_si128((__m128i *)(void *)(dst + 48), d);
	}
	for (; n >= 16; n -= 16, src += 16, dst += 16)
		_mm_storeu_si128((__m128i *)(void *)dst,
				 _mm_stream_load_si128((__m128i *)(uintptr_t)src));
	memcpy(dst, src, n);
}

static bool have_stream_load(void)
{
	static int have = -1;

	/* A race here only computes the same answer twice. */
	if (have < 0)
		have = __builtin_cpu_supports("sse4.1") ? 1 : 0;
	return have;
}
#endif

void nshm_copy_in(const struct nshm_region *r, void *dst, const void *src, size_t n)
{
#if defined(__x86_64__) || defined(__i386__)
	if (r->wc && have_stream_load()) {
		stream_copy(dst, src, n);
		return;
	}
#endif
	(void)r;
	memcpy(dst, src, n);
}
