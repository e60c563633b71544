/* SPDX-License-Identifier: BSD-2-Clause */
#define _POSIX_C_SOURCE 200809L
/* Is the owner of a line alive? A heartbeat that moves says yes; one that
 * stands still for the peer timeout says no. On the same kernel and pid
 * namespace a vanished pid says no at once (kill -9 leaves no time to
 * release a claim, and nobody should wait 15 s for a dead local process),
 * and so does a pid that another process took since (its start time is
 * not the owner's). A claimant of a line whose owner it cannot check that
 * way waits for the lapse the owner's own heartbeat period sets
 * (lapse_ns), not the peer timeout. */
#include <errno.h>
#include <signal.h>

#include "proto.h"

/* A peer whose ivshmem ID the server says has left (its VM's QEMU is gone)
 * is dead once its heartbeat has also stood still this long: far less than
 * the peer timeout, and more than an idle beat (at most 1 s), so that a
 * stale ID (a server restarted under a running VM, its IDs counted afresh)
 * never condemns a peer that still beats. */
#define GONE_SILENCE_NS 3000000000LL

/* The one meaning of "same kernel": the owner wrote our boot ID and our
 * pid namespace, so its pid is one we can ask about (kill, /proc). Liveness
 * (pid_gone, lapse_ns), claims and messages ("on the other side") all ask
 * here. */
bool head_same_kernel(const struct head_snap *h)
{
	const struct nshm_self *me = nshm_self();

	return me->boot[0] != 0 && h->boot[0] == me->boot[0] &&
	       h->boot[1] == me->boot[1] && h->pidns == me->pidns;
}

static bool bell_gone(const struct peer_watch *w, const struct head_snap *h)
{
	struct nshm_region *r = w->r;

	return r && h->bell != 0 && r->db.gone && r->db.gone(&r->db, h->bell - 1);
}

void watch_reset(struct peer_watch *w, const struct head_snap *h)
{
	w->owner = h->owner;
	w->heartbeat = h->heartbeat;
	w->changed_ns = nshm_now_ns();
	w->moved = false;
	w->pinned = false;
}

void watch_pin(struct peer_watch *w)
{
	w->pinned = true;
}

static bool pid_gone(const struct head_snap *h)
{
	uint64_t start;
	char state;

	if (!head_same_kernel(h) || h->pid == 0 || h->pid > 0x7fffffffu)
		return false;
	if (kill((pid_t)h->pid, 0) != 0 && errno == ESRCH)
		return true;
	/* The pid lives: the owner's own process, or one that took its
	 * number since? (0: the owner could not say when it started.) */
	if (h->start == 0)
		return false;
	switch (nshm_proc_stat(h->pid, &state, &start)) {
	case 0:
		return start != h->start;
	case -ESRCH:
		return true;
	default:
		return false;   /* cannot tell: the heartbeat decides */
	}
}

/* On our kernel the pid tells dead from alive, so a still heartbeat
 * there is a stopped or starved process: the peer timeout, as for a peer
 * in a session. Elsewhere, a period the owner declared bounds the lapse:
 * NSHM_LAPSE_BEATS of them, at least NSHM_LAPSE_MIN_NS (a live owner's
 * beat, from a thread of its own, is late by far less even on a loaded
 * machine), at most the peer timeout. An owner that declared nothing (an
 * older program) gets the peer timeout, and so does one asleep until rung
 * (NSHM_BEAT_ON_RING) that the claimant cannot ring. */
int64_t lapse_ns(const struct head_snap *h, int64_t peer_timeout_ns, bool rung)
{
	int64_t ns;

	/* An owner asleep until rung beats when rung: elsewhere, rung, it is
	 * judged over the shortest lapse; not rung, it never beats. */
	if (h->beat_ms == NSHM_BEAT_ON_RING && !head_same_kernel(h))
		return rung ? NSHM_LAPSE_MIN_NS : peer_timeout_ns;
	if (head_same_kernel(h) || h->beat_ms == 0)
		return peer_timeout_ns;
	ns = (int64_t)h->beat_ms * 1000000 * NSHM_LAPSE_BEATS;
	if (ns < NSHM_LAPSE_MIN_NS)
		ns = NSHM_LAPSE_MIN_NS;
	return ns < peer_timeout_ns ? ns : peer_timeout_ns;
}

int64_t watch_still_ns(const struct peer_watch *w)
{
	return nshm_now_ns() - w->changed_ns;
}

int watch_update(struct peer_watch *w, const struct head_snap *h,
		 int64_t timeout_ns)
{
	int64_t now = nshm_now_ns();

	if (h->owner != w->owner) {
		/* In a session the peer is the owner we saw at its start:
		 * another owner means it went away. Outside one a new owner
		 * is judged afresh (a peer that keeps changing owners is then
		 * bounded by the caller's deadline, never by this watch). */
		if (w->pinned)
			return -1;
		watch_reset(w, h);
	} else if (h->heartbeat != w->heartbeat) {
		w->heartbeat = h->heartbeat;
		w->changed_ns = now;
		w->moved = true;
	}
	if (h->owner == 0 || pid_gone(h))
		return -1;
	if (now - w->changed_ns > timeout_ns)
		return -1;
	if (now - w->changed_ns > GONE_SILENCE_NS && bell_gone(w, h))
		return -1;
	return w->moved ? 1 : 0;
}
