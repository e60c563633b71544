/* SPDX-License-Identifier: BSD-2-Clause */
/* Test tool: peers that break the protocol on purpose, to show that the
 * real programs keep their deadlines and do not spin (issue 10, items 7-8).
 *
 * usage: hostile-peer MODE ENDPOINT SECONDS
 *   rotate-tx   hold the sender's line, changing its owner token every 0.1 ms
 *   rotate-rx   the same on the receiver's line
 *   session     act as a sender whose offer is accepted, then keep
 *               changing its owner token while the session runs
 *   flip        act as a receiver that renews its ready nonce every 50 us
 *   request P   offer an empty stream with a push-to request for path P,
 *               which the library's own checks would not send
 * It writes the region directly, as a compromised peer would. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

#define REL memory_order_relaxed

static void stamp(struct line_head *h)
{
	atomic_store_explicit(&h->version, NSHM_VERSION, REL);
	atomic_store_explicit(&h->magic, NSHM_MAGIC, REL);
	/* A pid that is not ours and not on this kernel's books. */
	atomic_store_explicit(&h->id.pid, 0, REL);
	atomic_fetch_add_explicit(&h->heartbeat, 1, REL);
}

/* The heartbeat stands still and only the token changes, faster than a
 * watcher polls: a watch that judged each new owner afresh would never
 * see one live or dead. */
static void rotate(struct line_head *h, int64_t end)
{
	stamp(h);
	while (nshm_now_ns() < end) {
		atomic_store(&h->owner, nshm_random64() | 1);
		nshm_sleep_ns(100000);
	}
}

/* Wait for a receiver's nonce, offer a stream of unknown size, wait for
 * the acceptance, then rotate the owner token while staying TX_OFFER. */
static int session(struct nshm_region *r, int64_t end)
{
	struct tx_line *t = TX(r->base);
	struct rx_line *x = RX(r->base);
	struct offer *o = OFFER(r->base);
	uint64_t nonce, sess = nshm_random64() | 1;

	stamp(&t->head);
	atomic_store(&t->head.owner, nshm_random64() | 1);
	while ((atomic_load(&x->state) != RX_READY || !(nonce = atomic_load(&x->ready))) &&
	       nshm_now_ns() < end)
		nshm_sleep_ns(1000000);
	atomic_store_explicit(&o->session, sess, REL);
	atomic_store_explicit(&o->flags, 0, REL);
	atomic_store_explicit(&o->mode, 0644, REL);
	atomic_store_explicit(&o->name_len, 4, REL);
	memcpy((void *)o->name, "evil", 5);
	atomic_store_explicit(&t->nslots, 1, REL);
	atomic_store_explicit(&t->chunk, NSHM_MIN_CHUNK, REL);
	atomic_store_explicit(&t->produced, 0, REL);
	atomic_store_explicit(&t->session, sess, REL);
	atomic_store_explicit(&t->ready_echo, nonce, REL);
	atomic_store(&t->state, TX_OFFER);
	while (atomic_load(&x->state) != RX_ACCEPT && nshm_now_ns() < end)
		nshm_sleep_ns(1000000);
	if (atomic_load(&x->state) != RX_ACCEPT) {
		fprintf(stderr, "hostile-peer: the offer was not accepted\n");
		return 1;
	}
	rotate(&t->head, end);
	return 0;
}

/* An offer carrying a request path of our choosing; exits 0 if refused. */
static int request(struct nshm_region *r, const char *path, int64_t end)
{
	struct tx_line *t = TX(r->base);
	struct rx_line *x = RX(r->base);
	struct offer *o = OFFER(r->base);
	struct request *q = REQUEST(r->base);
	uint64_t nonce = 0, sess = nshm_random64() | 1;
	size_t len = strlen(path);
	uint32_t st = 0;

	stamp(&t->head);
	atomic_store(&t->head.owner, nshm_random64() | 1);
	while (nshm_now_ns() < end && (atomic_load(&x->state) != RX_READY ||
				       !(nonce = atomic_load(&x->ready))))
		nshm_sleep_ns(1000000);
	atomic_store_explicit(&q->session, sess, REL);
	atomic_store_explicit(&q->kind, NSHM_REQ_PUSH_TO, REL);
	atomic_store_explicit(&q->path_len, (uint32_t)len, REL);
	memcpy((void *)q->path, path, len + 1);
	atomic_store_explicit(&o->session, sess, REL);
	atomic_store_explicit(&o->flags, NSHM_OFFER_REQUEST, REL);
	atomic_store_explicit(&o->mode, 0644, REL);
	atomic_store_explicit(&o->name_len, 4, REL);
	memcpy((void *)o->name, "evil", 5);
	atomic_store_explicit(&t->nslots, 1, REL);
	atomic_store_explicit(&t->chunk, NSHM_MIN_CHUNK, REL);
	atomic_store_explicit(&t->session, sess, REL);
	atomic_store_explicit(&t->ready_echo, nonce, REL);
	atomic_store(&t->state, TX_OFFER);
	while (nshm_now_ns() < end && ((st = atomic_load(&x->state)) == RX_READY ||
				       atomic_load(&x->session) != sess))
		nshm_sleep_ns(1000000);
	atomic_store(&t->state, TX_ABORT);
	atomic_store(&t->head.owner, 0);
	return st == RX_REFUSE ? 0 : 1;
}

static void flip(struct nshm_region *r, int64_t end)
{
	struct rx_line *x = RX(r->base);

	stamp(&x->head);
	atomic_store(&x->head.owner, nshm_random64() | 1);
	while (nshm_now_ns() < end) {
		atomic_fetch_add_explicit(&x->head.heartbeat, 1, REL);
		atomic_store_explicit(&x->ready, nshm_random64() | 1, REL);
		atomic_store(&x->state, RX_READY);
		nshm_sleep_ns(50000);
	}
}

int main(int argc, char **argv)
{
	struct nshm_region *r;
	char msg[1024];
	int64_t end;
	int rc = 0;

	if (argc == 4 && strcmp(argv[1], "request") == 0) {
		if (nshm_open(&r, argv[2], 0, msg, sizeof(msg)) != 0)
			return 3;
		rc = request(r, argv[3], nshm_now_ns() + 10000000000LL);
		nshm_close(r);
		return rc;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: hostile-peer rotate-tx|rotate-rx|session|flip "
			"ENDPOINT SECONDS\n");
		return 2;
	}
	if (nshm_open(&r, argv[2], 0, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "hostile-peer: %s\n", msg);
		return 3;
	}
	end = nshm_now_ns() + (int64_t)(atof(argv[3]) * 1e9);
	if (strcmp(argv[1], "rotate-tx") == 0)
		rotate(&TX(r->base)->head, end);
	else if (strcmp(argv[1], "rotate-rx") == 0)
		rotate(&RX(r->base)->head, end);
	else if (strcmp(argv[1], "session") == 0)
		rc = session(r, end);
	else if (strcmp(argv[1], "flip") == 0)
		flip(r, end);
	else
		rc = 2;
	nshm_close(r);
	return rc;
}
