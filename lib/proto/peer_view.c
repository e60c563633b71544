/* SPDX-License-Identifier: BSD-2-Clause */
/* The one place that reads the peer's parts of the region.
 *
 * A hostile peer can change any of these bytes at any moment, so each value
 * is loaded exactly once into a private snapshot; validation and use look
 * only at the snapshot. Ordering: the peer publishes with a release store of
 * its state or counter after writing the fields that go with it, so each
 * snapshot loads that state or counter first with acquire and the fields
 * after it, relaxed: they are then at least as new as the state they
 * belong to. Our own lines we read and write where we own them.
 */
#include <string.h>

#include "endpoint/endpoint.h"
#include "wire.h"

#define LOAD(x)  atomic_load_explicit(&(x), memory_order_relaxed)
#define ACQ(x)   atomic_load_explicit(&(x), memory_order_acquire)

/* The owner stores start and beat_ms, then the record's owner with
 * release; loaded with acquire here, a token equal to the line's owner
 * brings the values that owner stored. Another token: not declared. */
static void snap_live(const struct line_live *v, struct head_snap *h)
{
	h->start = 0;
	h->beat_ms = 0;
	if (h->owner == 0 || ACQ(v->owner) != h->owner)
		return;
	h->start = LOAD(v->start);
	h->beat_ms = LOAD(v->beat_ms);
}

void snap_head(const struct line_head *l, struct head_snap *h)
{
	/* Acquire on owner: a peer stores its last state (done, failed,
	 * aborted) before the seq_cst CAS that releases its claim, so once we
	 * see the claim released, a state loaded after this shows that word. */
	h->owner = ACQ(l->owner);
	h->magic = LOAD(l->magic);
	h->version = LOAD(l->version);
	h->heartbeat = LOAD(l->heartbeat);
	h->pid = LOAD(l->id.pid);
	h->bell = LOAD(l->id.bell);
	if (h->bell > 65536)    /* IDs are 16 bits: anything else rings no one */
		h->bell = 0;
	h->pidns = LOAD(l->id.pidns);
	h->boot[0] = LOAD(l->id.boot[0]);
	h->boot[1] = LOAD(l->id.boot[1]);
	snap_live((const struct line_live *)((const char *)l + NSHM_LIVE_OFF), h);
}

/* snap_tx and snap_rx are a deliberate mirror (duplicates pairs them): one
 * line each, their own fields, the same rule (acquire the published
 * counters first, then the rest once). */
void snap_tx(const struct nshm_region *r, struct tx_snap *s)
{
	struct tx_line *t = TX(r->base);

	s->state = ACQ(t->state);
	s->produced = ACQ(t->produced);
	snap_head(&t->head, &s->head);
	s->session = LOAD(t->session);
	s->ready_echo = LOAD(t->ready_echo);
	s->reason = LOAD(t->reason);
	s->nslots = LOAD(t->nslots);
	s->chunk = LOAD(t->chunk);
	s->total_len = LOAD(t->total_len);
	s->total_crc = LOAD(t->total_crc);
}

void snap_rx(const struct nshm_region *r, struct rx_snap *s)
{
	struct rx_line *x = RX(r->base);

	s->state = ACQ(x->state);
	s->consumed = ACQ(x->consumed);
	snap_head(&x->head, &s->head);
	s->ready = LOAD(x->ready);
	s->session = LOAD(x->session);
	s->reason = LOAD(x->reason);
	s->bytes = LOAD(x->bytes);
}

/* Only after TX_OFFER was seen with acquire (in snap_tx). */
void snap_offer(const struct nshm_region *r, struct offer_snap *s)
{
	struct offer *o = OFFER(r->base);

	s->session = LOAD(o->session);
	s->size = LOAD(o->size);
	s->flags = LOAD(o->flags);
	s->mode = LOAD(o->mode);
	s->mtime_sec = LOAD(o->mtime_sec);
	s->mtime_nsec = LOAD(o->mtime_nsec);
	s->name_len = LOAD(o->name_len);
	/* Copied whole, once; validate_offer checks the copy. */
	memcpy(s->name, o->name, sizeof(s->name));
	s->name[NSHM_NAME_MAX] = '\0';
}

/* Written before the offer it belongs to (same session): loaded after the
 * offer's state, like the offer itself. */
void snap_request(const struct nshm_region *r, struct request_snap *s)
{
	struct request *q = REQUEST(r->base);

	s->session = LOAD(q->session);
	s->kind = LOAD(q->kind);
	s->path_len = LOAD(q->path_len);
	memcpy(s->path, q->path, sizeof(s->path));
	s->path[NSHM_REQ_PATH_MAX] = '\0';
}

/* Only after `produced` covering this slot was loaded with acquire; slot
 * must already be checked < NSHM_MAX_SLOTS by the caller. */
void snap_desc(const struct nshm_region *r, uint32_t slot, struct desc_snap *s)
{
	struct slot_desc *d = DESC(r->base, slot);

	s->seq = LOAD(d->seq);
	s->len = LOAD(d->len);
	s->crc = LOAD(d->crc);
}

/* Single values for the hot loops: the doorbell counters and states. */
uint64_t peek_tx_produced(const struct nshm_region *r)
{
	return ACQ(TX(r->base)->produced);
}

uint64_t peek_rx_consumed(const struct nshm_region *r)
{
	return ACQ(RX(r->base)->consumed);
}

/* Relaxed: the sender reads back its own word, to see whether anyone
 * else wrote it; nothing is read through it. */
uint32_t peek_tx_state(const struct nshm_region *r)
{
	return LOAD(TX(r->base)->state);
}

/* A peer stores its last word (done, failed, refused, aborted) before the
 * seq_cst CAS that releases its claim. We may load its state before that
 * store and its owner after the release: then the state we hold is stale.
 * A snapshot taken now loads the owner with acquire first, so it sees the
 * last word. The one place this rule lives; the sides call it when they
 * see the peer's claim released or its heartbeat dead. */
void snap_tx_last_word(const struct nshm_region *r, struct tx_snap *s)
{
	snap_tx(r, s);
}

void snap_rx_last_word(const struct nshm_region *r, struct rx_snap *s)
{
	snap_rx(r, s);
}
