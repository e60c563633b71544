/* SPDX-License-Identifier: BSD-2-Clause */
/* One loop for every wait on the peer: the condition decides, the doorbell
 * paces, and a deadline and the cancel flag bound it. */
#include <errno.h>
#include <stdint.h>

#include "proto.h"

/* A wait that goes on past NSHM_IDLE_AFTER_NS is idle: the bell may sleep
 * longer between looks (with a doorbell, until rung) and the claim's
 * heartbeat slows, so a side that waits for hours costs next to nothing;
 * any result ends it. */
static void set_idle(struct nshm_bell *b, bool idle)
{
	/* Asleep until rung and woken, still idle: the bell decides on its
	 * next sleep, without waking the heartbeat thread twice for nothing. */
	if (b->idle == idle)
		return;
	b->idle = idle;
	b->on_ring = false;     /* the bell decides again on its next sleep */
	if (b->claim)
		claim_pace(b->claim, idle ? PACE_IDLE : PACE_BUSY);
}

int wait_until(struct nshm_bell *b, wait_cond cond, void *arg,
	       int64_t deadline_ns, volatile sig_atomic_t *cancel)
{
	int64_t start = nshm_now_ns();
	int rc;

	b->reset(b);
	for (;;) {
		int64_t now, left;

		rc = cond(arg);
		if (rc != WAIT_MORE)
			break;
		rc = -ECANCELED;
		if (cancel && *cancel)
			break;
		now = nshm_now_ns();
		/* No deadline: the bell's own caps decide how long to sleep. */
		left = deadline_ns ? deadline_ns - now : INT64_MAX;
		rc = -ETIMEDOUT;
		if (left <= 0)
			break;
		set_idle(b, now - start > NSHM_IDLE_AFTER_NS);
		b->wait(b, left);
	}
	set_idle(b, false);
	return rc == WAIT_DONE ? 0 : rc;
}

int wait_handshake(struct nshm_bell *b, wait_cond cond, void *arg,
		   int64_t deadline_ns, volatile sig_atomic_t *cancel)
{
	int rc;

	b->handshake = true;
	rc = wait_until(b, cond, arg, deadline_ns, cancel);
	b->handshake = false;
	return rc;
}
