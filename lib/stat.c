/* SPDX-License-Identifier: BSD-2-Clause */
/* A read-only look at a region for nshm-stat: two snapshots, interval
 * apart, so a moving heartbeat can be told from a still one. */
#include <string.h>

#include "internal.h"

static void side(struct nshm_side_stat *s, const struct head_snap *a,
		 const struct head_snap *b, uint32_t state, uint32_t reason)
{
	struct side scratch = { 0 };   /* for the validators' messages */

	s->present = validate_head(b, &scratch) == 0;
	s->version = b->version;
	s->claimed = b->owner != 0;
	s->pid = b->pid;
	s->same_host = head_same_kernel(b);
	s->heartbeat = b->heartbeat;
	s->bell = b->bell;
	s->alive = !s->claimed ? 0 : a->heartbeat != b->heartbeat ? 1
		 : a->owner == b->owner ? 0 : -1;
	s->state = state;
	s->reason = reason;
}

static bool still(const struct head_snap *a, const struct head_snap *b)
{
	return b->owner != 0 && a->owner == b->owner && a->heartbeat == b->heartbeat;
}

int nshm_stat(struct nshm_region *r, struct nshm_stat *st, int interval_ms)
{
	struct tx_snap t0, t1;
	struct rx_snap x0, x1;
	struct offer_snap o;
	struct nshm_meta m;
	struct side scratch = { 0 };   /* for the validators' messages */

	memset(st, 0, sizeof(*st));
	st->size = r->size;
	snap_tx(r, &t0);
	snap_rx(r, &x0);
	nshm_sleep_ns((int64_t)(interval_ms > 0 ? interval_ms : 1) * 1000000);
	snap_tx(r, &t1);
	snap_rx(r, &x1);
	/* An idle side beats only every NSHM_IDLE_BEAT_MS: give a still one
	 * that long before calling it dead. */
	for (int waited = interval_ms; waited < NSHM_IDLE_BEAT_MS + 200 &&
	     ((still(&t0.head, &t1.head)) || still(&x0.head, &x1.head)); waited += 100) {
		nshm_sleep_ns(100000000);
		snap_tx(r, &t1);
		snap_rx(r, &x1);
		interval_ms = waited + 100;
	}
	side(&st->tx, &t0.head, &t1.head, t1.state, t1.reason);
	side(&st->rx, &x0.head, &x1.head, x1.state, x1.reason);
	st->session = t1.session;
	if (st->tx.present && t1.session) {
		snap_offer(r, &o);
		if (validate_offer(&o, t1.session, &m, &scratch) == 0) {
			memcpy(st->name, m.name, sizeof(st->name));
			st->total = m.size;
			st->size_known = m.size_known;
			st->archive = m.archive;
		}
		if (validate_layout(t1.nslots, t1.chunk, r->size) == 0) {
			st->slots = t1.nslots;
			st->chunk = t1.chunk;
		}
	}
	if (st->rx.present && x1.session == t1.session) {
		st->bytes = x1.bytes;
		if (x0.session == x1.session && x1.bytes >= x0.bytes)
			st->rate = (x1.bytes - x0.bytes) * 1000 /
				   (uint64_t)(interval_ms > 0 ? interval_ms : 1);
	}
	return 0;
}
