/* SPDX-License-Identifier: BSD-2-Clause */
/* A read-only look at a region for nshm-stat: two snapshots, interval
 * apart, so a moving heartbeat can be told from a still one. */
#include <string.h>

#include "proto.h"

static void side(struct nshm_side_stat *s, const struct head_snap *a,
		 const struct head_snap *b, uint32_t state, uint32_t reason)
{
	struct finding scratch;       /* the validators' messages, unread */

	s->present = validate_head(b, &scratch) == 0;
	s->version = b->version;
	s->claimed = b->owner != 0;
	s->pid = b->pid;
	s->same_host = head_same_kernel(b);
	s->heartbeat = b->heartbeat;
	s->bell = b->bell;
	s->asleep = b->beat_ms == NSHM_BEAT_ON_RING;
	s->alive = !s->claimed ? 0 : a->heartbeat != b->heartbeat ? 1
		 : a->owner == b->owner ? 0 : -1;
	s->state = state;
	s->reason = reason;
}

static bool still(const struct head_snap *a, const struct head_snap *b)
{
	return b->owner != 0 && a->owner == b->owner && a->heartbeat == b->heartbeat;
}

/* How far to sample, in steps: a still heartbeat gets an idle beat's time
 * to move; a transfer gets time for its byte count to move twice, since
 * the receiver counts whole chunks (2 MiB at 5 MB/s: one every 0.4 s). */
#define STEP_NS 10000000LL
#define RATE_MAX_NS 3000000000LL

struct rate {
	uint64_t session;
	int64_t t0, t1;         /* first and last change of the count seen */
	uint64_t b0, b1;
	int changes;
};

static bool receiving(const struct tx_snap *t, const struct rx_snap *x)
{
	return t->state == TX_OFFER && x->state == RX_ACCEPT && x->session == t->session;
}

static void rate_see(struct rate *q, const struct rx_snap *x, int64_t now)
{
	if (x->session != q->session || x->bytes == q->b1)
		return;
	if (x->bytes < q->b1) {         /* a new stream: start again */
		q->changes = 0;
		q->t0 = q->t1 = now;
		q->b0 = q->b1 = x->bytes;
		return;
	}
	if (q->changes++ == 0) {
		q->t0 = now;
		q->b0 = x->bytes;
	}
	q->t1 = now;
	q->b1 = x->bytes;
}

/* Between the first and the last change seen: the count moves a chunk
 * at a time, so the time before the first step and after the last says
 * nothing. One step or none: what moved over the whole time. */
static uint64_t rate_of(const struct rate *q, uint64_t start_bytes, int64_t elapsed)
{
	if (q->changes >= 2 && q->t1 > q->t0)
		return (uint64_t)((double)(q->b1 - q->b0) * 1e9 / (double)(q->t1 - q->t0));
	if (elapsed <= 0 || q->b1 < start_bytes)
		return 0;
	return (uint64_t)((double)(q->b1 - start_bytes) * 1e9 / (double)elapsed);
}

/* A side asleep until rung beats when rung: ring it, if we can, so that
 * its heartbeat moves while we sample. */
static void wake(struct nshm_region *r, const struct head_snap *h)
{
	if (h->owner != 0 && h->beat_ms == NSHM_BEAT_ON_RING && h->bell != 0 &&
	    r->db.ring)
		(void)r->db.ring(&r->db, h->bell - 1);
}

/* Past the interval: sample on? An idle side beats only every
 * NSHM_IDLE_BEAT_MS: a still one gets that long before it is called dead;
 * a transfer gets time for two changes of its count. */
static bool sample_more(const struct tx_snap *t0, const struct tx_snap *t1,
			const struct rx_snap *x0, const struct rx_snap *x1,
			const struct rate *q, int64_t elapsed)
{
	bool more = elapsed < (NSHM_IDLE_BEAT_MS + 200) * 1000000LL &&
		    (still(&t0->head, &t1->head) || still(&x0->head, &x1->head));

	return more || (receiving(t1, x1) && x1->session == q->session &&
			q->changes < 2 && elapsed < RATE_MAX_NS);
}

/* The offer in force and its layout, when they pass the checks. */
static void stat_offer(struct nshm_region *r, struct nshm_stat *st, const struct tx_snap *t)
{
	struct finding scratch;       /* the validators' messages, unread */
	struct offer_snap o;
	struct nshm_meta m;

	snap_offer(r, &o);
	if (validate_offer(&o, t->session, &m, &scratch) == 0) {
		memcpy(st->name, m.name, sizeof(st->name));
		st->total = m.size;
		st->size_known = m.size_known;
		st->archive = m.archive;
	}
	if (validate_layout(t->nslots, t->chunk, r->size) == 0) {
		st->slots = t->nslots;
		st->chunk = t->chunk;
	}
}

int nshm_stat(struct nshm_region *r, struct nshm_stat *st, int interval_ms)
{
	struct tx_snap t0, t1;
	struct rx_snap x0, x1;
	struct rate q = { 0 };
	int64_t start, now, want = (int64_t)(interval_ms > 0 ? interval_ms : 1) * 1000000;

	memset(st, 0, sizeof(*st));
	st->size = r->size;
	snap_tx(r, &t0);
	snap_rx(r, &x0);
	wake(r, &t0.head);
	wake(r, &x0.head);
	t1 = t0;
	x1 = x0;
	start = nshm_now_ns();
	q.session = x0.session;
	q.b0 = q.b1 = x0.bytes;
	for (;;) {
		int64_t step;

		now = nshm_now_ns();
		step = start + want - now;
		if (step <= 0) {
			if (!sample_more(&t0, &t1, &x0, &x1, &q, now - start))
				break;
			step = STEP_NS;
		}
		nshm_sleep_ns(step < STEP_NS ? step : STEP_NS);
		snap_tx(r, &t1);
		snap_rx(r, &x1);
		rate_see(&q, &x1, nshm_now_ns());
	}
	side(&st->tx, &t0.head, &t1.head, t1.state, t1.reason);
	side(&st->rx, &x0.head, &x1.head, x1.state, x1.reason);
	st->session = t1.session;
	if (st->tx.present && t1.session)
		stat_offer(r, st, &t1);
	if (st->rx.present && x1.session == t1.session) {
		st->bytes = x1.bytes;
		if (x0.session == x1.session && x1.bytes >= x0.bytes)
			st->rate = rate_of(&q, x0.bytes, now - start);
	}
	return 0;
}
