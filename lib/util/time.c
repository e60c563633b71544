/* SPDX-License-Identifier: BSD-2-Clause */
/* Clocks, sleeps and session ids. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/random.h>
#include <sys/syscall.h>
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

int nshm_sleep_on(const void *addr, uint32_t v, int64_t ns)
{
	struct timespec ts = { ns / 1000000000, ns % 1000000000 };

	/* Shared, not private: the other process maps the same object. */
	return syscall(SYS_futex, addr, FUTEX_WAIT, v, &ts, NULL, 0) == 0 ? 0 : -errno;
}

void nshm_wake_on(const void *addr)
{
	(void)syscall(SYS_futex, addr, FUTEX_WAKE, 1, NULL, NULL, 0);
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
