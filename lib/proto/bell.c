/* SPDX-License-Identifier: BSD-2-Clause */
/* The polling doorbell: the counter store is the ring, so ring() has
 * nothing to do, and wait() backs off from spinning to yielding to
 * sleeping up to a millisecond, so a waiting side uses almost no CPU while
 * a busy transfer sees the next chunk within microseconds. An interrupt
 * doorbell (ivshmem-doorbell + eventfds) would fill the same three hooks. */
#define _GNU_SOURCE      /* ppoll */
#include <poll.h>
#include <sched.h>
#include <time.h>

#include "proto.h"

#define SPINS  256u
#define YIELDS 64u
#define SLEEP_MIN_NS 10000
#define SLEEP_MAX_NS 1000000
/* The first FINE_NS of a handshake's wait (wait_handshake), when the peer
 * is likeliest to move (the next file of a burst to a resident, the answer
 * to what we just published), sleeps stay under FINE_SLEEP_MAX_NS: a busy
 * resident answers a new sender within 0.1 ms instead of 1, for at most
 * 500 more wake-ups a wait. Not in the data path: there a sender waiting on
 * a slow guest woke ten times as often for nothing (host CPU per GiB 1.14
 * -> 2.00 s in the vm bench, guest 8.5 -> 10.6). */
#define FINE_NS 50000000
#define FINE_SLEEP_MAX_NS 100000
/* Idle (a wait past NSHM_IDLE_AFTER_NS): a new transfer starts within this.
 * 200 ms: about 6 wake-ups a second with the idle heartbeat. A wake-up
 * costs 70-80 us of CPU in this VM (perf stat of an idle resident), so at
 * 100 ms an idle resident spent 8.8-10 ms of CPU per 10 s, at the 0.1 %
 * goal's edge, and at 50 ms 6-13 ms. */
#define IDLE_SLEEP_MAX_NS 200000000

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

/* Polling's longest sleep: shortest as a wait begins, longer in a
 * transfer, longest once idle. */
static int64_t poll_cap(const struct nshm_bell *b)
{
	if (b->idle)
		return IDLE_SLEEP_MAX_NS;
	return nshm_now_ns() < b->fine_until_ns ? FINE_SLEEP_MAX_NS : SLEEP_MAX_NS;
}

static void poll_wait(struct nshm_bell *b, int64_t max_ns)
{
	int64_t cap;

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
	cap = poll_cap(b);
	if (b->sleep_ns < SLEEP_MIN_NS)
		b->sleep_ns = SLEEP_MIN_NS;
	if (b->sleep_ns > cap)
		b->sleep_ns = cap;
	nshm_sleep_ns(b->sleep_ns < max_ns ? b->sleep_ns : max_ns);
	if (b->sleep_ns < cap)
		b->sleep_ns *= 2;
}

static void poll_reset(struct nshm_bell *b)
{
	b->spins = 0;
	b->sleep_ns = 0;
	b->fine_until_ns = b->handshake ? nshm_now_ns() + FINE_NS : 0;
}

void bell_init_polling(struct nshm_bell *b)
{
	b->ring = poll_ring;
	b->wait = poll_wait;
	b->reset = poll_reset;
	b->idle = false;
	b->idle_flag = NULL;
	b->handshake = false;
	poll_reset(b);
}

/* The fd bell: a region with an interrupt doorbell (r->db: eventfds from
 * nshm-server on the host, /dev/nshmN in a guest). ring() wakes the peer
 * through the ID it published in its line's `bell` field; wait() spins as
 * polling does (a busy transfer never sleeps), then sleeps in ppoll() on
 * db.fd. How long it sleeps depends on whether anyone will ring:
 *   a live peer with a doorbell rings on every change: RING_CAP_NS bounds
 *     the cost of a lost ring only;
 *   a live peer without one never rings: polling's pace (SLEEP_MAX_NS);
 *   no peer yet: whoever comes rings if it can; one that cannot is seen
 *     within IDLE_CAP_NS (so an idle waiter wakes rarely).
 * The counters stay the truth: a ring only ends a sleep early. */

#define RING_CAP_NS 500000000
#define IDLE_CAP_NS 500000000
/* At most one wake-up by ring per RING_GAP_NS: a peer ringing in a loop
 * costs us 10000 wake-ups a second, never a spin. */
#define RING_GAP_NS 100000

static void fd_ring(struct nshm_bell *b)
{
	struct head_snap h;

	snap_head(b->peer, &h);
	/* A failed ring (peer unknown to us, its doorbell gone) is a late
	 * wake-up for the peer, which polls as its floor: nothing to do. */
	if (h.owner != 0 && h.bell != 0)
		(void)b->r->db.ring(b->r, h.bell - 1);
}

static int64_t fd_cap(const struct nshm_bell *b)
{
	struct head_snap h;

	snap_head(b->peer, &h);
	if (h.owner == 0)
		return IDLE_CAP_NS;
	return h.bell != 0 ? RING_CAP_NS : poll_cap(b);
}

/* true when db.fd became readable within ns. */
static bool fd_sleep(int fd, int64_t ns)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };

	/* EINTR returns early: the caller re-checks its cancel flag. */
	return ppoll(&p, 1, &ts, NULL) > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP));
}

static void fd_wait(struct nshm_bell *b, int64_t max_ns)
{
	int64_t cap, ns, now;

	if (b->spins < SPINS + YIELDS) {
		poll_wait(b, max_ns);   /* its spin and yield phases only */
		return;
	}
	cap = fd_cap(b);
	if (b->sleep_ns < SLEEP_MIN_NS)
		b->sleep_ns = SLEEP_MIN_NS;
	ns = b->sleep_ns < cap ? b->sleep_ns : cap;
	ns = ns < max_ns ? ns : max_ns;
	if (!fd_sleep(b->r->db.fd, ns)) {
		if (b->sleep_ns < cap)
			b->sleep_ns *= 2;
		return;
	}
	b->r->db.drain(b->r);
	now = nshm_now_ns();
	if (now - b->woke_ns < RING_GAP_NS) {
		nshm_sleep_ns(RING_GAP_NS - (now - b->woke_ns));
		now = nshm_now_ns();
	}
	b->woke_ns = now;
}

void nshm_bell_init(struct nshm_bell *b, struct nshm_region *r,
		    const struct line_head *peer)
{
	bell_init_polling(b);
	if (!r || r->db.fd < 0 || !peer)
		return;
	b->r = r;
	b->peer = peer;
	b->woke_ns = 0;
	b->ring = fd_ring;
	b->wait = fd_wait;
}
