/* SPDX-License-Identifier: BSD-2-Clause */
/* Clocks, sleeps and session ids. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int64_t nshm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void nshm_sleep_ns(int64_t ns)
{
	struct timespec ts = { ns / 1000000000, ns % 1000000000 };

	/* An interrupted sleep returns early; callers re-check and cancel. */
	nanosleep(&ts, NULL);
}

/* Never 0: 0 means "none" in the region. */
uint64_t nshm_random64(void)
{
	uint64_t v = 0;

	while (v == 0) {
		if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
			v = (uint64_t)nshm_now_ns() * 0x9e3779b97f4a7c15ull ^
			    (uint64_t)getpid();
	}
	return v;
}
