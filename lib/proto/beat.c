/* SPDX-License-Identifier: BSD-2-Clause */
/* Holding one side of the region once claim.c took it: the owner's
 * identity beside the token, and a thread that beats the heartbeat while
 * the claim is held and declares how often it beats (its pace: busy, idle,
 * or asleep until rung, set by the side's waits). Apart from claim.c so
 * that the waits (bell.c, wait.c), which set the pace, and the taking,
 * which waits, call each other in no circle. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <string.h>
#include <time.h>

#include "proto.h"

/* Relaxed is enough for the heartbeat: the peer only compares its values
 * over time; nothing is published through them. */
static void bump(struct claim *c)
{
	atomic_fetch_add_explicit(&c->line->heartbeat, 1, memory_order_relaxed);
}

/* Asleep until rung: declared before the beats stop, so a claimant that
 * reads it rings instead of timing our silence; no timer while it lasts
 * (the waiter beats when woken, claim_beat). Called with c->lock held. */
static void sleep_on_ring(struct claim *c, struct timespec *next)
{
	atomic_store_explicit(&LIVE(c->line)->beat_ms, NSHM_BEAT_ON_RING,
			      memory_order_relaxed);
	while (!c->stop && c->pace == PACE_ON_RING)
		pthread_cond_wait(&c->wake, &c->lock);
	clock_gettime(CLOCK_MONOTONIC, next);
}

static void *beat(void *arg)
{
	struct claim *c = arg;
	struct line_live *live = LIVE(c->line);
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&c->lock);
	while (!c->stop &&
	       atomic_load_explicit(&c->line->owner, memory_order_relaxed) == c->token) {
		enum claim_pace pace = c->pace;
		long ms = pace == PACE_IDLE ? c->idle_beat_ms : NSHM_HEARTBEAT_MS;

		if (pace == PACE_ON_RING) {
			sleep_on_ring(c, &next);
			continue;
		}
		/* Declared before the longer sleep it announces, so a
		 * claimant never judges us by a shorter period than ours.
		 * Relaxed: a single value, read on its own. */
		atomic_store_explicit(&live->beat_ms, (uint32_t)ms, memory_order_relaxed);
		bump(c);
		next.tv_nsec += ms * 1000000L;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		/* A timed wait, not a sleep: claim_release and a new pace
		 * wake it at once (a new pace beats at once). */
		while (!c->stop && c->pace == pace &&
		       pthread_cond_timedwait(&c->wake, &c->lock, &next) == 0)
			;
		if (c->pace != pace)
			clock_gettime(CLOCK_MONOTONIC, &next);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

void claim_pace(struct claim *c, enum claim_pace pace)
{
	if (!c->running)
		return;
	pthread_mutex_lock(&c->lock);
	if (c->pace != pace) {
		c->pace = pace;
		pthread_cond_signal(&c->wake);
	}
	pthread_mutex_unlock(&c->lock);
}

bool claim_bell(struct claim *c, uint32_t word)
{
	/* Relaxed, as write_identity's: a peer reads it on each ring (the
	 * caller fences where a changed word must meet a peer's store). */
	if (atomic_load_explicit(&c->line->id.bell, memory_order_relaxed) == word)
		return false;
	atomic_store_explicit(&c->line->id.bell, word, memory_order_relaxed);
	return true;
}

void claim_beat(struct claim *c)
{
	if (c->running)
		bump(c);
}

static void write_identity(struct line_head *l, uint64_t token, const struct nshm_region *r)
{
	const struct nshm_self *me = nshm_self();
	struct line_live *live = LIVE(l);

	/* Relaxed like the rest: the peer reads it on each ring, and a stale
	 * value only costs it a wake-up sent to no one (it polls as floor). */
	atomic_store_explicit(&l->id.bell, nshm_bell_word(r), memory_order_relaxed);
	atomic_store_explicit(&l->id.pid, me->pid, memory_order_relaxed);
	atomic_store_explicit(&l->id.pidns, me->pidns, memory_order_relaxed);
	atomic_store_explicit(&l->id.boot[0], me->boot[0], memory_order_relaxed);
	atomic_store_explicit(&l->id.boot[1], me->boot[1], memory_order_relaxed);
	atomic_store_explicit(&l->version, NSHM_VERSION, memory_order_relaxed);
	atomic_store_explicit(&l->magic, NSHM_MAGIC, memory_order_relaxed);
	/* The liveness record is ours once its owner is our token: release,
	 * so a claimant that reads our token there (acquire) also reads our
	 * start time and period, never the previous owner's. */
	atomic_store_explicit(&live->start, me->start, memory_order_relaxed);
	atomic_store_explicit(&live->beat_ms, NSHM_HEARTBEAT_MS, memory_order_relaxed);
	atomic_store_explicit(&live->owner, token, memory_order_release);
}

bool claim_cas(struct line_head *l, uint64_t from, uint64_t to)
{
	/* seq_cst: two claimants on different CPUs (or machines) must agree
	 * on one winner; the CAS is the only arbiter. */
	return atomic_compare_exchange_strong(&l->owner, &from, to);
}

/* The identity written, the heartbeat thread started: 0, or -errno with
 * the line given back. */
int claim_hold(struct claim *c, const struct nshm_region *r)
{
	pthread_condattr_t attr;
	int rc;

	write_identity(c->line, c->token, r);

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, &attr);
	pthread_condattr_destroy(&attr);
	c->stop = false;
	rc = pthread_create(&c->thread, NULL, beat, c);
	if (rc != 0) {
		pthread_cond_destroy(&c->wake);
		pthread_mutex_destroy(&c->lock);
		claim_cas(c->line, c->token, 0);
		return -rc;
	}
	c->running = true;
	return 0;
}

bool claim_held(const struct claim *c)
{
	return atomic_load_explicit(&c->line->owner, memory_order_relaxed) == c->token;
}

void claim_release(struct claim *c)
{
	if (!c->line)
		return;
	if (c->running) {
		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_cond_signal(&c->wake);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->thread, NULL);
		pthread_cond_destroy(&c->wake);
		pthread_mutex_destroy(&c->lock);
		c->running = false;
	}
	claim_cas(c->line, c->token, 0);
	c->line = NULL;
}
