/* SPDX-License-Identifier: BSD-2-Clause */
/* The polling doorbell: the counter store is the ring, so ring() has
 * nothing to do, and wait() backs off from spinning to yielding to
 * sleeping up to a millisecond, so a waiting side uses almost no CPU while
 * a busy transfer sees the next chunk within microseconds. An interrupt
 * doorbell (ivshmem-doorbell + eventfds) would fill the same three hooks. */
#define _GNU_SOURCE      /* ppoll */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
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
/* At most one early wake-up (a ring, a futex wake or change) per
 * RING_GAP_NS: a peer waking us in a loop costs us 10000 wake-ups a
 * second, never a spin. */
#define RING_GAP_NS 100000

/* After an early wake-up: wait out the rest of RING_GAP_NS since the last. */
static void limit_wakeups(struct nshm_bell *b)
{
	int64_t now = nshm_now_ns();

	if (now - b->woke_ns < RING_GAP_NS) {
		nshm_sleep_ns(RING_GAP_NS - (now - b->woke_ns));
		now = nshm_now_ns();
	}
	b->woke_ns = now;
}

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

/* The low half of a 64-bit word in the region, for futex(2): its address
 * only, never read through (the value comes from the 64-bit load). */
static const void *low_half(const _Atomic uint64_t *w)
{
	return (const char *)w + (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? 0 : 4);
}

void nshm_offer_wake(const _Atomic uint64_t *echo)
{
	/* Nobody waiting, or a mapping futex(2) refuses (a BAR): nothing. */
	nshm_wake_on(low_half(echo));
}

/* Polling's sleep in a receiver's wait for an offer: in futex(2) on the
 * sender's ready_echo, for the same ns, so a sender on this kernel that
 * wakes it after its offer (nshm_offer_wake) is seen at once, idle or not.
 * The value is read first and the kernel sleeps only while the word still
 * holds it: an offer stored after our last look either makes futex return
 * at once or finds us queued and wakes us; none is lost. A word that
 * already says "come and look" (echo_want) but no offer yet: plain sleep,
 * so a peer that leaves it so never makes us spin. */
static void echo_sleep(struct nshm_bell *b, int64_t ns)
{
	/* Relaxed: a value to compare, nothing read through it. */
	uint32_t v = (uint32_t)atomic_load_explicit(b->echo, memory_order_relaxed);
	int rc;

	if (v == b->echo_want) {
		nshm_sleep_ns(ns);
		return;
	}
	rc = nshm_sleep_on(low_half(b->echo), v, ns);
	if (rc == 0 || rc == -EAGAIN) {
		limit_wakeups(b);       /* woken, or the word changed */
	} else if (rc != -ETIMEDOUT && rc != -EINTR) {
		b->futex_off = true;    /* EFAULT, ENOSYS...: a BAR mapping */
		nshm_sleep_ns(ns);
	}
}

static void poll_sleep(struct nshm_bell *b, int64_t ns)
{
	if (b->echo && !b->futex_off)
		echo_sleep(b, ns);
	else
		nshm_sleep_ns(ns);
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
	poll_sleep(b, b->sleep_ns < max_ns ? b->sleep_ns : max_ns);
	if (b->sleep_ns < cap)
		b->sleep_ns *= 2;
}

static void poll_reset(struct nshm_bell *b)
{
	b->spins = 0;
	b->sleep_ns = 0;
	b->fine_until_ns = b->handshake ? nshm_now_ns() + FINE_NS : 0;
}

/* The whole bell from one table: every field not named is zero, NULL or
 * false, so a field added later starts cleared too. */
static const struct nshm_bell polling_bell = {
	.ring = poll_ring,
	.wait = poll_wait,
	.reset = poll_reset,
};

void bell_init_polling(struct nshm_bell *b)
{
	*b = polling_bell;
	poll_reset(b);
}

/* The fd bell: a region with an interrupt doorbell (r->db: eventfds from
 * nshm-server on the host, /dev/nshmN in a guest). ring() wakes the peer
 * through the ID it published in its line's `bell` field; wait() spins as
 * polling does (a busy transfer never sleeps), then sleeps in ppoll() on
 * db.fd. A receiver's wait for an offer (b->deep) whose doorbell newcomers
 * can ring does not spin or back off: whoever comes rings on its offer, so
 * it sleeps on the bell at once (spinning and yielding for milliseconds
 * after every transfer only took a core from the sender then exiting).
 * How long it sleeps depends on whether anyone will ring:
 *   a live peer with a doorbell rings on every change: RING_CAP_NS bounds
 *     the cost of a lost ring only;
 *   a live peer without one never rings: polling's pace (SLEEP_MAX_NS);
 *   no peer yet, and idle in a receiver's wait (the resident's for the
 *     next sender; b->deep: a sender never sleeps so, as a receiver that
 *     cannot ring could not wake it): asleep
 *     until rung, no timeout at all, the heartbeat beaten only when woken
 *     (claim_pace PACE_ON_RING): whoever comes rings (bell_reaches tells a
 *     newcomer that cannot), and a claimant rings to see it beat;
 *   no peer yet, not idle: IDLE_CAP_NS (a newcomer without a doorbell is
 *     seen within it).
 * No ring is lost: the eventfd's counter (the module's interrupt count)
 * keeps a ring until drain() takes it, drain() comes before the caller
 * looks at the region again, and ppoll() returns at once on a ring that
 * came after that look. The counters stay the truth: a ring only ends a
 * sleep early. */

#define RING_CAP_NS 500000000
#define IDLE_CAP_NS 500000000

static void fd_ring(struct nshm_bell *b)
{
	struct head_snap h;

	/* Our store (offer, state, counter) before our load of the peer's ID,
	 * paired with bell_state's fence after a peer publishes a new ID:
	 * either its next look sees our store or we ring its new ID (a store
	 * then a load on each side: only seq_cst fences order those). */
	atomic_thread_fence(memory_order_seq_cst);
	snap_head(b->peer, &h);
	/* A failed ring (peer unknown to us, its doorbell gone) is a late
	 * wake-up for the peer, which polls as its floor: nothing to do. */
	if (h.owner != 0 && h.bell != 0)
		(void)b->r->db.ring(&b->r->db, h.bell - 1);
}

static int64_t fd_cap(const struct nshm_bell *b, const struct head_snap *h)
{
	if (h->owner == 0)
		return IDLE_CAP_NS;
	return h->bell != 0 ? RING_CAP_NS : poll_cap(b);
}

/* Whether a newcomer will ring this wait. */
enum bell_state {
	BELL_NONE,      /* not a deep wait, or no server to hear of us */
	BELL_CHANGED,   /* our ID just changed: look at the region first */
	BELL_RINGS,     /* a newcomer reads our ID and rings it */
};

/* A deep wait's doorbell, kept current busy or idle: joined again if its
 * server went away (restarted, or it dropped us), at most once a second
 * (iv_reachable), and our ID published anew. Checked at every wait, not
 * only once idle: a resident kept busy by senders never idles, and with a
 * stale ID it would only ever see them at its timeouts. After a change a
 * sender that read the old ID rang no one, so the caller looks at the
 * region once more before sleeping on the new one (the fence: fd_ring's). */
static enum bell_state bell_state(struct nshm_bell *b)
{
	struct nshm_region *r = b->r;

	if (!b->deep || !b->claim || (r->db.reachable && !r->db.reachable(&r->db)))
		return BELL_NONE;
	if (!claim_bell(b->claim, nshm_bell_word(r)))
		return BELL_RINGS;
	atomic_thread_fence(memory_order_seq_cst);
	return BELL_CHANGED;
}

static void set_on_ring(struct nshm_bell *b, bool on)
{
	if (b->on_ring == on)
		return;
	b->on_ring = on;
	claim_pace(b->claim, on ? PACE_ON_RING : b->idle ? PACE_IDLE : PACE_BUSY);
}

#ifdef NSHM_TEST_HOOKS
/* NSHM_TEST_STOP_ASLEEP=1 (tests only): stop once, the first time a wait
 * is about to sleep until rung, after its last look at the region: the
 * moment a lost wake-up would be lost (tests/serve.bats). */
static void hook_asleep(void)
{
	static bool done;
	const char *v = getenv("NSHM_TEST_STOP_ASLEEP");

	if (!done && v && v[0] == '1') {
		done = true;
		raise(SIGSTOP);
	}
}
#else
static void hook_asleep(void)
{
}
#endif

/* true when db.fd became readable within ns (INT64_MAX: no limit). */
static bool fd_sleep(int fd, int64_t ns)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };

	/* EINTR returns early: the caller re-checks its cancel flag. */
	return ppoll(&p, 1, ns == INT64_MAX ? NULL : &ts, NULL) > 0 &&
	       (p.revents & (POLLIN | POLLERR | POLLHUP));
}

/* Sleeps on the bell: until rung (idle, no peer, a newcomer rings), else
 * for the cap that says when a ring may not come, at once when a ring will
 * (st), else backing off as polling does. */
static void fd_sleep_capped(struct nshm_bell *b, enum bell_state st, int64_t max_ns)
{
	struct head_snap h;
	int64_t cap = 0, ns;

	snap_head(b->peer, &h);
	set_on_ring(b, st == BELL_RINGS && b->idle && h.owner == 0);
	if (b->on_ring) {
		hook_asleep();
		ns = max_ns;            /* the caller's deadline, if any */
	} else {
		cap = fd_cap(b, &h);
		/* A newcomer, or a peer with a doorbell, rings: no backoff. */
		if (st == BELL_RINGS && (h.owner == 0 || h.bell != 0))
			b->sleep_ns = cap;
		if (b->sleep_ns < SLEEP_MIN_NS)
			b->sleep_ns = SLEEP_MIN_NS;
		ns = b->sleep_ns < cap ? b->sleep_ns : cap;
		ns = ns < max_ns ? ns : max_ns;
	}
	if (!fd_sleep(b->r->db.fd, ns)) {
		if (!b->on_ring && b->sleep_ns < cap)
			b->sleep_ns *= 2;
		return;
	}
	b->r->db.drain(&b->r->db);
	/* Woken while asleep: whoever rang may be asking if we live. */
	if (b->on_ring)
		claim_beat(b->claim);
	limit_wakeups(b);
}

static void fd_wait(struct nshm_bell *b, int64_t max_ns)
{
	enum bell_state st = bell_state(b);

	if (st == BELL_CHANGED)
		return;                 /* look at the region first */
	if (st == BELL_NONE && b->spins < SPINS + YIELDS) {
		set_on_ring(b, false);  /* woken, and nobody can ring us now */
		poll_wait(b, max_ns);   /* its spin and yield phases only */
		return;
	}
	fd_sleep_capped(b, st, max_ns);
}

void nshm_bell_init(struct nshm_bell *b, struct nshm_region *r,
		    const struct line_head *peer)
{
	bell_init_polling(b);
	if (!r || !peer || !r->db.ring)
		return;
	/* Ring only (a guest without the module): poll, but wake the peer. */
	if (r->db.fd < 0) {
		b->r = r;
		b->peer = peer;
		b->ring = fd_ring;
		return;
	}
	b->r = r;
	b->peer = peer;
	b->ring = fd_ring;
	b->wait = fd_wait;
}

bool bell_reaches(const struct nshm_bell *b, const struct head_snap *h)
{
	return h->beat_ms != NSHM_BEAT_ON_RING || (b->r && b->r->db.ring && h->bell != 0);
}
