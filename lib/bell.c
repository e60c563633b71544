/* The polling doorbell: the counter store is the ring, so ring() has
 * nothing to do, and wait() backs off from spinning to yielding to
 * sleeping up to a millisecond, so a waiting side uses almost no CPU while
 * a busy transfer sees the next chunk within microseconds. An interrupt
 * doorbell (ivshmem-doorbell + eventfds) would fill the same three hooks. */
#include <sched.h>

#include "internal.h"

#define SPINS  256u
#define YIELDS 64u
#define SLEEP_MIN_NS 10000
#define SLEEP_MAX_NS 1000000

static void poll_ring(struct nshm_bell *b)
{
	(void)b;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void poll_wait(struct nshm_bell *b, int64_t max_ns)
{
	if (b->spins < SPINS) {
		b->spins++;
		cpu_relax();
		return;
	}
	if (b->spins < SPINS + YIELDS) {
		b->spins++;
		sched_yield();
		return;
	}
	if (b->sleep_ns < SLEEP_MIN_NS)
		b->sleep_ns = SLEEP_MIN_NS;
	nshm_sleep_ns(b->sleep_ns < max_ns ? b->sleep_ns : max_ns);
	if (b->sleep_ns < SLEEP_MAX_NS)
		b->sleep_ns *= 2;
}

static void poll_reset(struct nshm_bell *b)
{
	b->spins = 0;
	b->sleep_ns = 0;
}

void bell_init_polling(struct nshm_bell *b)
{
	b->ring = poll_ring;
	b->wait = poll_wait;
	b->reset = poll_reset;
	poll_reset(b);
}
