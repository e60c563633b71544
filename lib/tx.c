/* SPDX-License-Identifier: BSD-2-Clause */
/* The sending side: offer a stream, fill slots, end it, await the verdict.
 *
 * Chunk k goes to slot k % nslots. The sender may fill it once the receiver
 * has freed chunk k - nslots (consumed > k - nslots); it then publishes the
 * slot's descriptor and rings by a release store of produced = k + 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define ANNOUNCE_NS 200000000  /* say "waiting" only after 0.2 s */
/* Between two offers: a fresh receiver rarely needs a second round. */
#define RETRY_PAUSE_MIN_NS 1000000
#define RETRY_PAUSE_MAX_NS 100000000

struct nshm_tx {
	struct nshm_region *r;
	struct nshm_params p;
	struct claim claim;
	struct nshm_bell bell;
	struct peer_watch watch;      /* on the receiver */
	struct rx_snap rx;            /* last snapshot of the receiver */
	uint64_t session, nonce;
	uint32_t nslots, chunk;
	uint64_t k;                   /* next chunk to publish */
	size_t fill;                  /* bytes in slot k not yet published */
	uint32_t slot_crc;            /* CRC-32 of those bytes, as they came */
	bool slot_free;               /* slot k may be written */
	uint64_t bytes, total;
	uint32_t crc, reason;
	bool ended, done;
	int64_t started_ns;
	bool announced;
	const char *waiting_for;
	char why[NSHM_WHY_LEN];
};

#define TXL(tx) TX((tx)->r->base)
#define STORE(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)
/* Release: everything written before it (offer, descriptors, slot data,
 * totals) is visible to a peer that loads the value with acquire. */
#define PUBLISH(x, v) atomic_store_explicit(&(x), (v), memory_order_release)

static unsigned char *slot_ptr(struct nshm_tx *tx, uint64_t k)
{
	return tx->r->base + NSHM_DATA_OFF + (size_t)(k % tx->nslots) * tx->chunk;
}

static void announce(struct nshm_tx *tx)
{
	if (!tx->announced && tx->p.waiting &&
	    nshm_now_ns() - tx->started_ns > ANNOUNCE_NS) {
		char msg[512];

		tx->announced = true;
		snprintf(msg, sizeof(msg), "waiting for %s on %s", tx->waiting_for,
			 tx->r->path);
		tx->p.waiting(tx->p.arg, msg);
	}
}

/* Fits the slots to the region: the asked chunk must fit; the default one
 * shrinks to fit (down to a page). */
static int plan_layout(struct nshm_tx *tx)
{
	size_t room = tx->r->size - NSHM_DATA_OFF;
	unsigned slots = tx->p.slots ? tx->p.slots : NSHM_DEFAULT_SLOTS;
	size_t chunk = tx->p.chunk;
	int rc;

	if (slots > NSHM_MAX_SLOTS) {
		snprintf(tx->why, sizeof(tx->why), "at most %u slots", NSHM_MAX_SLOTS);
		return -EINVAL;
	}
	if (!chunk) {
		chunk = room / slots / 4096 * 4096;
		if (chunk > NSHM_DEFAULT_CHUNK)
			chunk = NSHM_DEFAULT_CHUNK;
	}
	chunk = chunk > NSHM_MAX_CHUNK ? NSHM_MAX_CHUNK : chunk / 4096 * 4096;
	rc = validate_layout(slots, (uint32_t)chunk, tx->r->size);
	if (rc == -NSHM_ETOOSMALL || chunk < NSHM_MIN_CHUNK) {
		size_t c = chunk < NSHM_MIN_CHUNK ? NSHM_MIN_CHUNK : chunk;

		snprintf(tx->why, sizeof(tx->why),
			 "%s is %zu bytes, too small for %u slots of %zu bytes: "
			 "it needs at least %zu", tx->r->path, tx->r->size, slots, c,
			 (size_t)NSHM_DATA_OFF + slots * c);
		return -NSHM_ETOOSMALL;
	}
	tx->nslots = slots;
	tx->chunk = (uint32_t)chunk;
	return rc;
}

static int check_rx_head(struct nshm_tx *tx)
{
	int rc = validate_head(&tx->rx.head, tx->why);

	return rc < 0 ? rc : 0;
}

static int lost(struct nshm_tx *tx)
{
	snprintf(tx->why, sizeof(tx->why),
		 "another sender took %s over (this one was thought dead)", tx->r->path);
	return -NSHM_ELOST;
}

/* A receiver is READY, under a live claim. */
static int cond_ready(void *arg)
{
	struct nshm_tx *tx = arg;
	int rc;

	snap_rx(tx->r, &tx->rx);
	if ((rc = check_rx_head(tx)) < 0)
		return rc;
	if (!claim_held(&tx->claim))
		return lost(tx);
	announce(tx);
	/* Not known dead is enough: a stale READY costs one offer that a new
	 * receiver's fresh nonce (or the peer timeout) withdraws, while
	 * waiting to see a heartbeat move would add 50 ms to every transfer. */
	if (watch_update(&tx->watch, &tx->rx.head, peer_timeout_ns(&tx->p)) < 0)
		return WAIT_MORE;
	if (tx->rx.state != RX_READY || tx->rx.ready == 0 || tx->rx.head.magic == 0)
		return WAIT_MORE;
	return WAIT_DONE;
}

/* Before the offer that refers to it (same session, published with it). */
static void write_request(struct nshm_tx *tx, const struct nshm_meta *m)
{
	struct request *q = REQUEST(tx->r->base);
	size_t len = strlen(m->path);   /* checked <= NSHM_REQ_PATH_MAX */

	STORE(q->session, tx->session);
	STORE(q->kind, m->request);
	STORE(q->path_len, (uint32_t)len);
	memset(q->path, 0, sizeof(q->path));
	memcpy(q->path, m->path, len);
}

static void write_offer(struct nshm_tx *tx, const struct nshm_meta *m)
{
	struct offer *o = OFFER(tx->r->base);
	struct tx_line *t = TXL(tx);
	size_t len = strnlen(m->name, NSHM_NAME_MAX);

	STORE(o->session, tx->session);
	STORE(o->size, m->size_known ? m->size : 0);
	STORE(o->flags, (m->size_known ? NSHM_OFFER_SIZE_KNOWN : 0) |
			(m->archive ? NSHM_OFFER_ARCHIVE : 0) |
			(m->request ? NSHM_OFFER_REQUEST : 0));
	if (m->request)
		write_request(tx, m);
	STORE(o->mode, m->mode & 07777);
	STORE(o->mtime_sec, m->mtime_sec);
	STORE(o->mtime_nsec, m->mtime_nsec < 1000000000u ? m->mtime_nsec : 0);
	STORE(o->name_len, (uint32_t)len);
	memset(o->name, 0, sizeof(o->name));
	memcpy(o->name, m->name, len);
	for (uint32_t i = 0; i < NSHM_MAX_SLOTS; i++) {
		STORE(DESC(tx->r->base, i)->seq, UINT64_MAX);
		STORE(DESC(tx->r->base, i)->len, 0);
	}
	STORE(t->nslots, tx->nslots);
	STORE(t->chunk, tx->chunk);
	STORE(t->produced, 0);
	STORE(t->total_len, 0);
	STORE(t->total_crc, 0);
	STORE(t->reason, 0);
	STORE(t->session, tx->session);
	STORE(t->ready_echo, tx->nonce);
	PUBLISH(t->state, TX_OFFER);
}

enum { ANSWER_RETRY = 2 };

/* What the receiver said to our session, if anything. */
static int answer_of(struct nshm_tx *tx)
{
	if (tx->rx.session != tx->session || tx->rx.ready != tx->nonce)
		return WAIT_MORE;
	switch (tx->rx.state) {
	case RX_ACCEPT:
		return WAIT_DONE;
	case RX_REFUSE:
		tx->reason = tx->rx.reason < NSHM_R_MAX ? tx->rx.reason : NSHM_R_PROTO;
		snprintf(tx->why, sizeof(tx->why), "the receiver refused: %s",
			 nshm_reason_str(tx->reason));
		return -NSHM_EREFUSED;
	case RX_ABORT:
		return ANSWER_RETRY;
	default:
		return WAIT_MORE;
	}
}

/* The receiver answers our session, or goes away (then offer again). */
static int cond_answer(void *arg)
{
	struct nshm_tx *tx = arg;
	int rc;

	snap_rx(tx->r, &tx->rx);
	if (!claim_held(&tx->claim))
		return lost(tx);
	rc = answer_of(tx);
	if (rc != WAIT_MORE)
		return rc;
	if (watch_update(&tx->watch, &tx->rx.head, peer_timeout_ns(&tx->p)) < 0) {
		/* A receiver that refused and left at once: its answer was
		 * stored before its claim was released; look once more. */
		snap_rx(tx->r, &tx->rx);
		rc = answer_of(tx);
		return rc != WAIT_MORE ? rc : ANSWER_RETRY;
	}
	return tx->rx.ready != tx->nonce ? ANSWER_RETRY : WAIT_MORE;
}

static int offer(struct nshm_tx *tx, const struct nshm_meta *m)
{
	int64_t ready_deadline = tx->p.timeout_ms > 0
		? nshm_now_ns() + tx->p.timeout_ms * 1000000 : 0;
	int64_t pause_ns = RETRY_PAUSE_MIN_NS;
	int rc;

	/* One watch across retries: a receiver that never answered stays
	 * known dead until its line changes owner. */
	snap_rx(tx->r, &tx->rx);
	watch_reset(&tx->watch, &tx->rx.head);
	for (;;) {
		int64_t answer_deadline;

		rc = wait_until(&tx->bell, cond_ready, tx, ready_deadline, tx->p.cancel);
		if (rc == -ETIMEDOUT)
			snprintf(tx->why, sizeof(tx->why), "no receiver appeared on %s",
				 tx->r->path);
		if (rc < 0)
			return rc;
		tx->nonce = tx->rx.ready;
		tx->session = nshm_random64();
		write_offer(tx, m);
		tx->bell.ring(&tx->bell);
		/* --timeout bounds the whole wait for a peer, offers included. */
		answer_deadline = nshm_now_ns() + peer_timeout_ns(&tx->p);
		if (ready_deadline && ready_deadline < answer_deadline)
			answer_deadline = ready_deadline;
		rc = wait_until(&tx->bell, cond_answer, tx, answer_deadline, tx->p.cancel);
		if (rc == 0) {
			/* From here the receiver is the owner that accepted. */
			watch_pin(&tx->watch);
			return 0;
		}
		if (rc == -ETIMEDOUT && ready_deadline && nshm_now_ns() >= ready_deadline) {
			snprintf(tx->why, sizeof(tx->why), "no receiver answered on %s",
				 tx->r->path);
			return rc;
		}
		if (rc != ANSWER_RETRY && rc != -ETIMEDOUT)
			return rc;
		/* The receiver left or never answered: wait for another, after
		 * a pause that grows with each round, so that a receiver that
		 * keeps renewing its readiness cannot make us spin. */
		PUBLISH(TXL(tx)->state, TX_IDLE);
		nshm_sleep_ns(pause_ns);
		if (pause_ns < RETRY_PAUSE_MAX_NS)
			pause_ns *= 2;
	}
}

int nshm_tx_begin(struct nshm_region *r, const struct nshm_meta *meta,
		  const struct nshm_params *p, struct nshm_tx **out)
{
	struct nshm_tx *tx = calloc(1, sizeof(*tx));
	int rc;

	*out = tx;
	if (!tx)
		return -ENOMEM;
	tx->r = r;
	tx->p = *p;
	if ((rc = nshm_check_params(p)) < 0 || (rc = nshm_check_meta(meta)) < 0) {
		snprintf(tx->why, sizeof(tx->why), "reserved fields of the parameters "
			 "or the offer are not zero");
		return rc;
	}
	if (meta->request && (meta->request > NSHM_REQ_REPLY || !meta->path ||
			      strlen(meta->path) > NSHM_REQ_PATH_MAX)) {
		snprintf(tx->why, sizeof(tx->why), "bad request: a path of at most %d bytes",
			 NSHM_REQ_PATH_MAX);
		return -EINVAL;
	}
	tx->total = meta->size_known ? meta->size : 0;
	tx->waiting_for = "a receiver";
	tx->started_ns = nshm_now_ns();
	nshm_bell_init(&tx->bell, r, &RX(r->base)->head);
	rc = plan_layout(tx);
	if (rc < 0)
		return rc;
	rc = claim_take(&tx->claim, r, &TXL(tx)->head, p, "sender", tx->why);
	tx->bell.idle_flag = &tx->claim.idle;
	if (rc < 0)
		return rc;
	PUBLISH(TXL(tx)->state, TX_IDLE);
	return offer(tx, meta);
}

/* The receiver went wrong: say how. */
static int receiver_failed(struct nshm_tx *tx)
{
	uint32_t why = tx->rx.reason < NSHM_R_MAX ? tx->rx.reason : NSHM_R_PROTO;

	tx->reason = why;
	if (tx->rx.state == RX_ABORT) {
		snprintf(tx->why, sizeof(tx->why), "the receiver aborted (%s)",
			 nshm_reason_str(why));
		return -NSHM_EPEERABORT;
	}
	snprintf(tx->why, sizeof(tx->why), "the receiver failed: %s",
		 nshm_reason_str(why));
	return -NSHM_EPEERFAIL;
}

/* Common checks while a session runs: still ours, peer still there. */
static int check_session(struct nshm_tx *tx)
{
	snap_rx(tx->r, &tx->rx);
	if (!claim_held(&tx->claim))
		return lost(tx);
	if (tx->rx.session != tx->session || tx->rx.ready != tx->nonce) {
		snprintf(tx->why, sizeof(tx->why), "the receiver went away");
		return -NSHM_EPEERGONE;
	}
	if (tx->rx.state == RX_ABORT || tx->rx.state == RX_FAIL)
		return receiver_failed(tx);
	/* In a session the receiver is receiving or has said done; anything
	 * else would leave both sides waiting on each other. */
	if (tx->rx.state != RX_ACCEPT && tx->rx.state != RX_DONE) {
		snprintf(tx->why, sizeof(tx->why),
			 "the receiver left its session without ending it");
		tx->reason = NSHM_R_PROTO;
		return -NSHM_EPROTO;
	}
	if (watch_update(&tx->watch, &tx->rx.head, peer_timeout_ns(&tx->p)) < 0) {
		/* Its last word may have landed between our loads of its state
		 * and of its claim: look once more. */
		snap_rx(tx->r, &tx->rx);
		if (tx->rx.session == tx->session &&
		    (tx->rx.state == RX_ABORT || tx->rx.state == RX_FAIL))
			return receiver_failed(tx);
		snprintf(tx->why, sizeof(tx->why), "the receiver died or stopped responding");
		return -NSHM_EPEERGONE;
	}
	if (tx->rx.consumed > tx->k) {
		snprintf(tx->why, sizeof(tx->why), "the receiver freed chunks never sent");
		tx->reason = NSHM_R_PROTO;
		return -NSHM_EPROTO;
	}
	return 0;
}

/* Slot k is free once chunk k - nslots is consumed. */
static int cond_slot(void *arg)
{
	struct nshm_tx *tx = arg;
	uint64_t consumed = peek_rx_consumed(tx->r);
	int rc;

	if (consumed <= tx->k && tx->k - consumed < tx->nslots)
		return WAIT_DONE;
	rc = check_session(tx);
	return rc < 0 ? rc : WAIT_MORE;
}

static int wait_slot(struct nshm_tx *tx)
{
	int rc;

	if (tx->slot_free)
		return 0;
	/* No deadline: a slow but live receiver (its heartbeat moves) is
	 * waited for; a dead or silent one fails in check_session. */
	rc = wait_until(&tx->bell, cond_slot, tx, 0, tx->p.cancel);
	if (rc == 0)
		tx->slot_free = true;
	return rc;
}

/* The chunk's CRC was accumulated as its bytes arrived (slot_crc), from
 * private memory where it could be, never by reading the slot back at the
 * end: by then anyone with the region could have rewritten it. */
static void publish(struct nshm_tx *tx, size_t len)
{
	struct slot_desc *d = DESC(tx->r->base, (uint32_t)(tx->k % tx->nslots));
	uint32_t crc = tx->slot_crc;

	STORE(d->seq, tx->k);
	STORE(d->len, (uint32_t)len);
	STORE(d->crc, crc);
	tx->crc = nshm_crc32_combine(tx->crc, crc, len);
	tx->bytes += len;
	tx->k++;
	tx->fill = 0;
	tx->slot_crc = 0;
	tx->slot_free = false;
	publish_fence();
	PUBLISH(TXL(tx)->produced, tx->k);
	tx->bell.ring(&tx->bell);
	if (tx->p.progress)
		tx->p.progress(tx->p.arg, tx->bytes, tx->total);
}

/* Reads the input in cache-sized pieces into private memory, checksums
 * each piece there and copies it into the slot (nshm_tx_write). Reading
 * straight into the slot would save that copy, but then the checksum would
 * be of shared memory that anyone with the region may rewrite between the
 * read and the checksum (the scribbler test caught exactly that); the copy
 * from a cache-hot piece costs little beside the receiver's write. */
int nshm_tx_from_fd(struct nshm_tx *tx, int fd)
{
	enum { PIECE = 256 << 10 };
	unsigned char *buf = malloc(PIECE);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf, PIECE);

		if (n < 0 && errno == EINTR && !(tx->p.cancel && *tx->p.cancel))
			continue;
		if (n < 0) {
			rc = errno == EINTR ? -ECANCELED : -errno;
			tx_failf(tx, rc, rc == -ECANCELED ? NSHM_R_CANCELED : NSHM_R_IO,
				 "reading the input: %s", nshm_strerror(rc));
			break;
		}
		if (n == 0)
			break;          /* end of input; nshm_tx_end sends the rest */
		rc = nshm_tx_write(tx, buf, (size_t)n);
		if (rc < 0)
			break;
	}
	free(buf);
	return rc;
}

int nshm_tx_write(struct nshm_tx *tx, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len > 0) {
		size_t n;
		int rc = wait_slot(tx);

		if (rc < 0)
			return rc;
		n = tx->chunk - tx->fill;
		n = n < len ? n : len;
		/* The CRC of our own buffer: the slot copy may be rewritten. */
		tx->slot_crc = nshm_crc32(tx->slot_crc, p, n);
		memcpy(slot_ptr(tx, tx->k) + tx->fill, p, n);
		tx->fill += n;
		p += n;
		len -= n;
		if (tx->fill == tx->chunk)
			publish(tx, tx->fill);
	}
	return 0;
}

static bool said_done(struct nshm_tx *tx)
{
	return tx->rx.session == tx->session && tx->rx.ready == tx->nonce &&
	       tx->rx.state == RX_DONE;
}

static int cond_verdict(void *arg)
{
	struct nshm_tx *tx = arg;
	int rc;

	snap_rx(tx->r, &tx->rx);
	if (said_done(tx))
		return WAIT_DONE;
	rc = check_session(tx);
	/* A receiver that said "done" and let go at once: check_session's
	 * last snapshot, taken after it saw the claim released, has it. */
	if (rc < 0 && said_done(tx))
		return WAIT_DONE;
	return rc < 0 ? rc : WAIT_MORE;
}

int nshm_tx_end(struct nshm_tx *tx)
{
	struct tx_line *t = TXL(tx);
	int rc;

	if (tx->fill > 0)
		publish(tx, tx->fill);
	STORE(t->total_len, tx->bytes);
	STORE(t->total_crc, tx->crc);
	PUBLISH(t->state, TX_END);
	tx->ended = true;
	tx->bell.ring(&tx->bell);
	rc = wait_until(&tx->bell, cond_verdict, tx, 0, tx->p.cancel);
	tx->done = rc == 0;
	return rc;
}

void nshm_tx_close(struct nshm_tx *tx, enum nshm_reason why)
{
	if (!tx)
		return;
	if (tx->claim.line && claim_held(&tx->claim)) {
		if (!tx->done) {
			STORE(TXL(tx)->reason, why ? why : NSHM_R_CANCELED);
			PUBLISH(TXL(tx)->state, TX_ABORT);
		} else {
			PUBLISH(TXL(tx)->state, TX_IDLE);
		}
		tx->bell.ring(&tx->bell);
	}
	claim_release(&tx->claim);
	free(tx);
}

uint64_t nshm_tx_bytes(const struct nshm_tx *tx) { return tx->bytes; }
uint32_t nshm_tx_crc(const struct nshm_tx *tx) { return tx->crc; }
uint32_t nshm_tx_reason(const struct nshm_tx *tx) { return tx->reason; }
const char *nshm_tx_why(const struct nshm_tx *tx) { return tx->why; }

int tx_failf(struct nshm_tx *tx, int rc, uint32_t reason, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tx->why, sizeof(tx->why), fmt, ap);
	va_end(ap);
	tx->reason = reason;
	return rc;
}

const struct nshm_params *tx_params(const struct nshm_tx *tx) { return &tx->p; }
