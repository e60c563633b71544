/* SPDX-License-Identifier: BSD-2-Clause */
/* What the receiver and sender harnesses share: a region in a memfd that
 * nshm_open maps through /proc/self/fd/N, the peer's own mapping of it,
 * small waits that keep the fake peer's heartbeat moving, and a capped
 * nshm_sleep_ns (linked with -Wl,--wrap=nshm_sleep_ns) so that joining the
 * library's heartbeat thread costs a millisecond, not up to 50. */
#ifndef NSHM_FUZZ_FAKE_REGION_H
#define NSHM_FUZZ_FAKE_REGION_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define FAIL(...)                                                          \
	do {                                                               \
		fprintf(stderr, "%s:%d: invariant failed: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                              \
		fputc('\n', stderr);                                       \
		abort();                                                   \
	} while (0)
#define CHECK(c) do { if (!(c)) FAIL("%s", #c); } while (0)

#define RLX(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)
#define REL(x, v) atomic_store_explicit(&(x), (v), memory_order_release)
#define GET(x)    atomic_load_explicit(&(x), memory_order_acquire)

void __real_nshm_sleep_ns(int64_t ns);
void __wrap_nshm_sleep_ns(int64_t ns);

/* Sleeps in the library are "up to": an early return is allowed. */
void __wrap_nshm_sleep_ns(int64_t ns)
{
	static int real = -1;

	if (real < 0)
		real = getenv("NSHM_FUZZ_REAL_SLEEP") != NULL;
	if (!real && ns > 1000000)
		ns = 1000000;
	__real_nshm_sleep_ns(ns);
}

static int region_fd = -1;
static char region_path[64];

/* A fresh, zeroed region of size bytes; returns the peer's mapping. */
static unsigned char *region_new(size_t size)
{
	void *p;

	if (region_fd < 0) {
		region_fd = memfd_create("nshm-fuzz", MFD_CLOEXEC);
		if (region_fd < 0) {
			perror("memfd_create");
			abort();
		}
		snprintf(region_path, sizeof(region_path), "/proc/self/fd/%d", region_fd);
	}
	if (ftruncate(region_fd, 0) != 0 || ftruncate(region_fd, (off_t)size) != 0) {
		perror("ftruncate");
		abort();
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, region_fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		abort();
	}
	return p;
}

static struct nshm_region *region_open(void)
{
	struct nshm_region *r;
	char msg[256];

	if (nshm_open(&r, region_path, 0, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "nshm_open: %s\n", msg);
		abort();
	}
	return r;
}

/* A claimed line of this process: alive as long as its heartbeat moves. */
static void fake_head(struct line_head *l, uint64_t owner)
{
	const struct nshm_self *me = nshm_self();

	RLX(l->id.pid, me->pid);
	RLX(l->id.pidns, me->pidns);
	RLX(l->id.boot[0], me->boot[0]);
	RLX(l->id.boot[1], me->boot[1]);
	RLX(l->owner, owner);
	RLX(l->version, NSHM_VERSION);
	RLX(l->magic, NSHM_MAGIC);
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pause_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* Tiny deterministic generator for slot contents. */
static uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s ? *s : 0x9e3779b9u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* IN_SET(rc, a, b, ...): rc is one of the results a harness allows. */
static inline bool in_set(long v, const long *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v == set[i])
			return true;
	return false;
}
#define IN_SET(v, ...) \
	in_set((v), (const long[]){ __VA_ARGS__ }, sizeof((long[]){ __VA_ARGS__ }) / sizeof(long))

#endif
