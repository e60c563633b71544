/* SPDX-License-Identifier: BSD-2-Clause */
/* Taking one side of the region: a token taken by compare-and-swap. A
 * live holder makes a second one fail with "busy"; a dead one (pid gone on
 * this kernel, or heartbeat still for its lapse: lapse_ns) is taken over.
 * Holding it (the identity, the heartbeat thread, release) is beat.c's. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proto.h"

/* NSHM_P_WAIT_BUSY: how often to look at a live holder again. */
#define BUSY_RETRY_NS 5000000
/* Say what we wait for once the holder's heartbeat has stood still this
 * long: longer than an idle beat, so a live holder has shown itself. */
#define SAY_STILL_NS 600000000LL
/* A holder asleep until rung is rung this often while it is judged. */
#define ASK_EVERY_NS 200000000LL

struct take_ctx {
	struct nshm_region *r;
	const struct nshm_params *p;
	struct finding *f;      /* what went wrong, for the side to record */
	const char *role;
	unsigned *said;
	struct line_head *line;
	struct peer_watch watch;
	int64_t timeout_ns;     /* the peer timeout */
	uint64_t stale;         /* owner judged dead */
	int busy;
	int64_t asked_ns;       /* last ring to a holder asleep until rung */
	struct head_snap h;
};

/* A holder asleep until rung (NSHM_BEAT_ON_RING) beats when rung: ring it
 * now and then while judging it. false: it does not sleep so, or we
 * cannot ring it. */
static bool ask_holder(struct take_ctx *t)
{
	struct nshm_region *r = t->r;
	int64_t now;

	if (t->h.beat_ms != NSHM_BEAT_ON_RING || !r->db.ring || t->h.bell == 0)
		return false;
	now = nshm_now_ns();
	if (now - t->asked_ns >= ASK_EVERY_NS) {
		t->asked_ns = now;
		(void)r->db.ring(&r->db, t->h.bell - 1);
	}
	return true;
}

/* Once, on the terminal: whose claim we wait for and for how long. */
static void say_waiting(struct take_ctx *t, int64_t lapse)
{
	const struct nshm_params *p = t->p;
	int64_t still = watch_still_ns(&t->watch);
	char msg[NSHM_WHY_LEN];

	if (!p->waiting || *t->said || still < SAY_STILL_NS)
		return;
	(*t->said)++;
	snprintf(msg, sizeof(msg), "waiting for the previous %s's claim on %s (pid %u%s): "
		 "its heartbeat has stood still for %.1f s; taken over at %.1f s",
		 t->role, t->r->path, t->h.pid,
		 head_same_kernel(&t->h) ? ", still running" : " on the other side",
		 (double)still / 1e9, (double)lapse / 1e9);
	p->waiting(p->arg, msg);
}

static int judge_holder(void *arg)
{
	struct take_ctx *t = arg;
	int64_t lapse;
	bool rung;
	int alive;

	snap_head(t->line, &t->h);
	if (t->h.owner == 0)
		return WAIT_DONE;       /* released meanwhile: try again */
	if (t->h.owner != t->watch.owner) {
		/* Someone live is writing the line (a holder that keeps
		 * changing its token would otherwise never be judged). */
		t->busy = 1;
		return WAIT_DONE;
	}
	/* The lapse follows the period the holder declares now (it beats
	 * slower once idle, or only when rung). */
	rung = ask_holder(t);
	lapse = lapse_ns(&t->h, t->timeout_ns, rung);
	alive = watch_update(&t->watch, &t->h, lapse);
	/* On our kernel its pid lives (watch_update checked): asleep, never
	 * rung, it is alive. */
	if (alive == 0 && !rung && t->h.beat_ms == NSHM_BEAT_ON_RING &&
	    head_same_kernel(&t->h))
		alive = 1;
	if (alive > 0) {
		t->busy = 1;
		return WAIT_DONE;
	}
	if (alive < 0) {
		t->stale = t->h.owner;
		return WAIT_DONE;
	}
	say_waiting(t, lapse);
	return WAIT_MORE;
}

/* Idle, beat a fifth of the peer timeout (peers usually share it), at
 * most twice a second: still several beats before a peer would judge us
 * dead (NSHM_LAPSE_BEATS of the period we declare), and few wake-ups. */
static int idle_beat_ms(const struct nshm_params *p)
{
	int64_t ms = peer_timeout_ns(p) / 5000000;

	return ms > NSHM_IDLE_BEAT_MS ? NSHM_IDLE_BEAT_MS
	     : ms < NSHM_HEARTBEAT_MS ? NSHM_HEARTBEAT_MS : (int)ms;
}

/* The line has a holder: is it alive (busy), dead (t->stale), or not
 * judged within the deadline? 0 to go on, < 0 a failure said in t->f. */
static int judge(struct take_ctx *t, int64_t deadline, unsigned *said)
{
	const struct nshm_params *p = t->p;
	const char *where = head_same_kernel(&t->h) ? "" : " on the other side";
	struct nshm_bell bell;
	int rc;

	bell_init_polling(&bell);
	watch_reset(&t->watch, &t->h);
	t->said = said;
	/* --timeout bounds this wait too: a holder on the other side takes
	 * the peer timeout to be judged dead. */
	rc = wait_until(&bell, judge_holder, t, deadline, p->cancel);
	if (rc == -ETIMEDOUT)
		return finding_set(t->f, rc, NSHM_R_TIMEOUT, "%s is held by a %s (pid %u%s) "
				   "that could not be judged alive or dead within --timeout",
				   t->r->path, t->role, t->h.pid, where);
	if (rc < 0 || !t->busy)
		return rc;
	if ((p->flags & NSHM_P_WAIT_BUSY) && !(p->cancel && *p->cancel) &&
	    (!deadline || nshm_now_ns() < deadline)) {
		/* Asked to take turns: look again shortly. */
		nshm_sleep_ns(BUSY_RETRY_NS);
		return 0;
	}
	return finding_set(t->f, -NSHM_EBUSY, NSHM_R_NONE, "%s is busy: another %s (pid %u%s) "
			   "is using it", t->r->path, t->role, t->h.pid, where);
}

int claim_take(struct claim *c, struct nshm_region *r, const struct nshm_params *p,
	       struct line_head *line, const char *role, struct finding *f)
{
	int64_t deadline = p->timeout_ms > 0 ? nshm_now_ns() + p->timeout_ms * 1000000 : 0;
	unsigned said = 0;
	int rc;

	memset(c, 0, sizeof(*c));
	c->line = line;
	c->idle_beat_ms = idle_beat_ms(p);
	c->token = nshm_random64();
	for (;;) {
		struct take_ctx t = { .r = r, .p = p, .f = f, .role = role, .line = line,
				      .timeout_ns = peer_timeout_ns(p) };

		snap_head(line, &t.h);
		rc = validate_head(&t.h, f);
		if (rc < 0)
			return rc;
		if (t.h.owner == 0) {
			if (claim_cas(line, 0, c->token))
				break;
			continue;
		}
		rc = judge(&t, deadline, &said);
		if (rc < 0)
			return rc;
		if (t.stale && claim_cas(line, t.stale, c->token))
			break;
	}
	rc = claim_hold(c, r);
	if (rc < 0)
		return finding_set(f, rc, NSHM_R_NONE, "cannot start the heartbeat thread");
	return 0;
}
