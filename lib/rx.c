/* SPDX-License-Identifier: BSD-2-Clause */
/* The receiving side: announce readiness, take an offer, then copy each
 * chunk out of its slot into private memory, verify that copy, free the
 * slot, and hand the copy on. Verifying the private copy, never the slot,
 * is what makes the checksum cover the bytes that reach the destination:
 * the peer may rewrite a slot after any check of it. nshm_rx_to_fd frees
 * the slot only after the whole chunk has been copied out in cache-sized
 * pieces, checksummed and written; nshm_rx_chunk frees it as soon as its
 * private copy of the whole chunk is made, before the caller writes it. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define ANNOUNCE_NS 200000000
#define SEEN_WAIT_NS 2000000000LL

struct nshm_rx {
	struct nshm_region *r;
	struct nshm_params p;
	struct claim claim;
	struct nshm_bell bell;
	struct peer_watch watch;      /* on the sender */
	struct tx_snap tx;
	struct nshm_meta meta;
	uint64_t nonce, session;
	uint32_t nslots, chunk;
	uint64_t k, bytes;
	uint32_t crc, reason;
	unsigned char *buf;           /* private copy of one chunk */
	bool accepted, ended, completed, announced;
	int64_t started_ns;
	char why[NSHM_WHY_LEN];
	char req_path[NSHM_REQ_PATH_MAX + 1];  /* meta.path of a request */
};

#define RXL(rx) RX((rx)->r->base)
#define STORE(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)
/* Release: the fields stored before it, and for `consumed` our reads of
 * the slot, are complete before the peer sees the new value (acquire). */
#define PUBLISH(x, v) atomic_store_explicit(&(x), (v), memory_order_release)

static int cond_offer(void *arg)
{
	struct nshm_rx *rx = arg;
	int rc;

	snap_tx(rx->r, &rx->tx);
	rc = validate_head(&rx->tx.head, rx->why);
	if (rc < 0)
		return rc;
	if (!claim_held(&rx->claim)) {
		snprintf(rx->why, sizeof(rx->why), "another receiver took %s over",
			 rx->r->path);
		return -NSHM_ELOST;
	}
	if (!rx->announced && rx->p.waiting &&
	    nshm_now_ns() - rx->started_ns > ANNOUNCE_NS) {
		char msg[512];

		rx->announced = true;
		snprintf(msg, sizeof(msg), "waiting for a sender on %s", rx->r->path);
		rx->p.waiting(rx->p.arg, msg);
	}
	if (rc == 0 && rx->tx.state == TX_OFFER && rx->tx.ready_echo == rx->nonce &&
	    rx->tx.session != 0 && rx->tx.head.owner != 0)
		return WAIT_DONE;
	return WAIT_MORE;
}

static void announce_ready(struct nshm_rx *rx)
{
	struct rx_line *x = RXL(rx);

	rx->nonce = nshm_random64();
	STORE(x->consumed, 0);
	STORE(x->bytes, 0);
	STORE(x->session, 0);
	STORE(x->reason, 0);
	STORE(x->ready, rx->nonce);
	PUBLISH(x->state, RX_READY);
}

/* The offer, copied once and checked; a bad one is refused. */
/* The request that came with the offer, copied once and checked; the
 * path stays ours, in rx, for the caller. */
static int take_request(struct nshm_rx *rx, struct nshm_meta *meta)
{
	struct request_snap q;
	int rc;

	snap_request(rx->r, &q);
	rc = validate_request(&q, rx->session, rx->why);
	if (rc < 0) {
		nshm_rx_refuse(rx, NSHM_R_BADNAME);
		return rc;
	}
	memcpy(rx->req_path, q.path, q.path_len);
	rx->req_path[q.path_len] = '\0';
	meta->request = q.kind;
	meta->path = rx->req_path;
	return 0;
}

static int take_offer(struct nshm_rx *rx, struct nshm_meta *meta)
{
	struct offer_snap o;
	int rc;

	snap_offer(rx->r, &o);
	rx->session = rx->tx.session;
	rc = validate_offer(&o, rx->session, meta, rx->why);
	if (rc == 0 && validate_layout(rx->tx.nslots, rx->tx.chunk, rx->r->size) != 0) {
		snprintf(rx->why, sizeof(rx->why),
			 "the sender's layout (%u slots of %u bytes) does not fit %s",
			 rx->tx.nslots, rx->tx.chunk, rx->r->path);
		rc = -NSHM_EPROTO;
	}
	if (rc < 0) {
		nshm_rx_refuse(rx, NSHM_R_PROTO);
		return rc;
	}
	if (o.flags & NSHM_OFFER_REQUEST) {
		rc = take_request(rx, meta);
		if (rc < 0)
			return rc;
	}
	rx->nslots = rx->tx.nslots;
	rx->chunk = rx->tx.chunk;
	rx->meta = *meta;
	if (posix_memalign((void **)&rx->buf, 4096, rx->chunk) != 0) {
		rx->buf = NULL;
		nshm_rx_refuse(rx, NSHM_R_IO);
		return -ENOMEM;
	}
	watch_reset(&rx->watch, &rx->tx.head);
	watch_pin(&rx->watch);
	return 0;
}

int nshm_rx_begin(struct nshm_region *r, const struct nshm_params *p,
		  struct nshm_rx **out, struct nshm_meta *meta)
{
	struct nshm_rx *rx = calloc(1, sizeof(*rx));
	int64_t deadline;
	int rc;

	*out = rx;
	if (!rx)
		return -ENOMEM;
	rx->r = r;
	rx->p = *p;
	if ((rc = nshm_check_params(p)) < 0) {
		snprintf(rx->why, sizeof(rx->why), "reserved parameter fields are not zero");
		return rc;
	}
	rx->started_ns = nshm_now_ns();
	nshm_bell_init(&rx->bell, r, &TX(r->base)->head);
	rc = claim_take(&rx->claim, r, &RXL(rx)->head, p, "receiver", rx->why);
	rx->bell.idle_flag = &rx->claim.idle;
	if (rc < 0)
		return rc;
	announce_ready(rx);
	rx->bell.ring(&rx->bell);
	deadline = p->timeout_ms > 0 ? rx->started_ns + p->timeout_ms * 1000000 : 0;
	rc = wait_until(&rx->bell, cond_offer, rx, deadline, p->cancel);
	if (rc == -ETIMEDOUT)
		snprintf(rx->why, sizeof(rx->why), "no sender appeared on %s", r->path);
	if (rc < 0)
		return rc;
	return take_offer(rx, meta);
}

static void answer(struct nshm_rx *rx, uint32_t state, enum nshm_reason why)
{
	struct rx_line *x = RXL(rx);

	STORE(x->reason, why);
	STORE(x->session, rx->session);
	PUBLISH(x->state, state);
	rx->bell.ring(&rx->bell);
}

int nshm_rx_accept(struct nshm_rx *rx)
{
	answer(rx, RX_ACCEPT, NSHM_R_NONE);
	rx->accepted = true;
	return 0;
}

int nshm_rx_refuse(struct nshm_rx *rx, enum nshm_reason why)
{
	answer(rx, RX_REFUSE, why);
	rx->completed = true;
	return 0;
}

enum { CHUNK_READY = WAIT_DONE, STREAM_END = 2 };

static int sender_aborted(struct nshm_rx *rx)
{
	rx->reason = rx->tx.reason < NSHM_R_MAX ? rx->tx.reason : NSHM_R_PROTO;
	snprintf(rx->why, sizeof(rx->why), "the sender aborted (%s)",
		 nshm_reason_str(rx->reason));
	return -NSHM_EPEERABORT;
}

static int cond_chunk(void *arg)
{
	struct nshm_rx *rx = arg;
	uint64_t produced = peek_tx_produced(rx->r);

	if (produced > rx->k && produced - rx->k <= rx->nslots)
		return CHUNK_READY;
	snap_tx(rx->r, &rx->tx);
	if (rx->tx.head.owner == 0 && rx->tx.state != TX_ABORT)
		snap_tx(rx->r, &rx->tx);   /* its last word, if it left one */
	if (!claim_held(&rx->claim))
		return rx_failf(rx, -NSHM_ELOST, NSHM_R_PROTO,
			    "another receiver took the region over");
	if ((rx->tx.head.owner == 0 && rx->tx.state != TX_ABORT) ||
	    rx->tx.session != rx->session)
		return rx_failf(rx, -NSHM_EPEERGONE, NSHM_R_TIMEOUT, "the sender went away");
	if (rx->tx.produced < rx->k || rx->tx.produced - rx->k > rx->nslots)
		return rx_failf(rx, -NSHM_EPROTO, NSHM_R_PROTO,
			    "the sender published chunks out of order");
	if (rx->tx.state == TX_ABORT)
		return sender_aborted(rx);
	if (rx->tx.produced > rx->k)
		return CHUNK_READY;
	if (rx->tx.state == TX_END)
		return STREAM_END;
	/* In a session the sender is sending, has ended, or has aborted;
	 * anything else would leave both sides waiting on each other. */
	if (rx->tx.state != TX_OFFER)
		return rx_failf(rx, -NSHM_EPROTO, NSHM_R_PROTO,
			    "the sender left its session without ending it");
	if (watch_update(&rx->watch, &rx->tx.head, peer_timeout_ns(&rx->p)) < 0) {
		snap_tx(rx->r, &rx->tx);   /* its last word, if it left one */
		if (rx->tx.session == rx->session && rx->tx.state == TX_ABORT)
			return sender_aborted(rx);
		return rx_failf(rx, -NSHM_EPEERGONE, NSHM_R_TIMEOUT,
			    "the sender died or stopped responding");
	}
	return WAIT_MORE;
}

/* At the end: the totals in the region must match what we verified. */
static int check_end(struct nshm_rx *rx)
{
	if (rx->tx.total_len != rx->bytes)
		return rx_failf(rx, -NSHM_ECHECKSUM, NSHM_R_CHECKSUM,
			    "the stream's length does not match its end record");
	if (rx->tx.total_crc != rx->crc)
		return rx_failf(rx, -NSHM_ECHECKSUM, NSHM_R_CHECKSUM,
			    "the stream's CRC-32 does not match its end record");
	if (rx->meta.size_known && rx->bytes != rx->meta.size)
		return rx_failf(rx, -NSHM_ECHECKSUM, NSHM_R_CHECKSUM,
			    "the sender sent a different size than it offered");
	rx->ended = true;
	return 0;
}

/* The descriptor of chunk k, copied once and checked against the slot
 * size and the offer. */
static int take_desc(struct nshm_rx *rx, struct desc_snap *d)
{
	snap_desc(rx->r, (uint32_t)(rx->k % rx->nslots), d);
	if (d->seq != rx->k || d->len == 0 || d->len > rx->chunk)
		return rx_failf(rx, -NSHM_EPROTO, NSHM_R_PROTO,
			    "a chunk descriptor did not validate");
	if (rx->meta.size_known && d->len > rx->meta.size - rx->bytes)
		return rx_failf(rx, -NSHM_EPROTO, NSHM_R_PROTO,
			    "the sender sent more than it offered");
	return 0;
}

static const unsigned char *slot_data(const struct nshm_rx *rx)
{
	return rx->r->base + NSHM_DATA_OFF + (size_t)(rx->k % rx->nslots) * rx->chunk;
}

/* Frees slot k for the sender. Release: our reads of the slot are done
 * before the sender can see it free and overwrite it. */
static void free_slot(struct nshm_rx *rx)
{
	PUBLISH(RXL(rx)->consumed, rx->k + 1);
	rx->bell.ring(&rx->bell);
}

/* crc is of our private copy of the chunk, never of the slot. */
static ssize_t account(struct nshm_rx *rx, const struct desc_snap *d, uint32_t crc)
{
	if (crc != d->crc)
		return rx_failf(rx, -NSHM_ECHECKSUM, NSHM_R_CHECKSUM,
			    "a chunk did not match its CRC-32");
	rx->crc = nshm_crc32_combine(rx->crc, d->crc, d->len);
	rx->bytes += d->len;
	rx->k++;
	STORE(RXL(rx)->bytes, rx->bytes);
	/* An archive's offered size counts its files' bytes: for progress only. */
	if (rx->p.progress)
		rx->p.progress(rx->p.arg, rx->bytes,
			       rx->meta.size_known || rx->meta.archive ? rx->meta.size : 0);
	return (ssize_t)d->len;
}

/* Waits for chunk k; 1 with its descriptor, 0 at the verified end. */
static int next_chunk(struct nshm_rx *rx, struct desc_snap *d)
{
	int rc;

	if (rx->ended)
		return 0;
	/* No deadline: a slow sender whose heartbeat moves (a slow pipe into
	 * nshm-put) is waited for; a dead or silent one fails in cond_chunk. */
	rc = wait_until(&rx->bell, cond_chunk, rx, 0, rx->p.cancel);
	if (rc == -ECANCELED)
		return rx_failf(rx, rc, NSHM_R_CANCELED, "interrupted");
	if (rc < 0)
		return rc;
	if (rc == STREAM_END)
		return check_end(rx);
	rc = take_desc(rx, d);
	return rc < 0 ? rc : 1;
}

ssize_t nshm_rx_chunk(struct nshm_rx *rx, const void **buf)
{
	struct desc_snap d;
	int rc = next_chunk(rx, &d);

	if (rc <= 0)
		return rc;
	/* The whole chunk into private memory, then the slot is free. */
	nshm_copy_in(rx->r, rx->buf, slot_data(rx), d.len);
	free_slot(rx);
	*buf = rx->buf;
	return account(rx, &d, nshm_crc32(0, rx->buf, d.len));
}

/* Pieces small enough to stay in cache between the copy out of the slot,
 * the checksum and the write. */
#define PIECE (256u << 10)

static int write_failed(struct nshm_rx *rx, int rc)
{
	rx->reason = rc == -ENOSPC || rc == -EDQUOT ? NSHM_R_NOSPACE
		   : rc == -ECANCELED ? NSHM_R_CANCELED : NSHM_R_IO;
	snprintf(rx->why, sizeof(rx->why), "writing the output: %s", nshm_strerror(rc));
	return rc;
}

/* The other way to checksum what reached a regular file: write straight
 * from the slot, then read the written range back through a read-only
 * mapping of the file. Kept to measure against the copy (NSHM_VERIFY=
 * readback); see README "Why the receiver copies". */
static int readback_crc(int fd, uint64_t pos, size_t len, uint32_t *crc)
{
	size_t skew = (size_t)(pos % 4096);
	void *map = mmap(NULL, len + skew, PROT_READ, MAP_SHARED, fd, (off_t)(pos - skew));

	if (map == MAP_FAILED)
		return -errno;
	*crc = nshm_crc32(0, (unsigned char *)map + skew, len);
	munmap(map, len + skew);
	return 0;
}

/* Two ways to store chunk k in fd with the CRC-32 of what reached it. */
typedef int (*store_fn)(struct nshm_rx *rx, int fd, const struct desc_snap *d,
			uint32_t *crc);

/* Copy out in cache-sized pieces; checksum and write each private copy. */
static int store_copy(struct nshm_rx *rx, int fd, const struct desc_snap *d,
		      uint32_t *crc)
{
	*crc = 0;
	for (uint32_t off = 0; off < d->len; off += PIECE) {
		size_t len = d->len - off < PIECE ? d->len - off : PIECE;
		int rc;

		nshm_copy_in(rx->r, rx->buf, slot_data(rx) + off, len);
		*crc = nshm_crc32(*crc, rx->buf, len);
		rc = nshm_write_all(fd, rx->buf, len, rx->p.cancel);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Write from the slot, then checksum the written range of the file. */
static int store_readback(struct nshm_rx *rx, int fd, const struct desc_snap *d,
			  uint32_t *crc)
{
	int rc = nshm_write_all(fd, slot_data(rx), d->len, rx->p.cancel);

	return rc < 0 ? rc : readback_crc(fd, rx->bytes, d->len, crc);
}

static bool use_readback(int fd)
{
	const char *v = getenv("NSHM_VERIFY");
	struct stat st;

	return v && strcmp(v, "readback") == 0 && fstat(fd, &st) == 0 &&
	       S_ISREG(st.st_mode) && lseek(fd, 0, SEEK_CUR) == 0;
}

int nshm_rx_to_fd(struct nshm_rx *rx, int fd)
{
	store_fn store = use_readback(fd) ? store_readback : store_copy;

	for (;;) {
		struct desc_snap d;
		uint32_t crc;
		ssize_t n;
		int rc = next_chunk(rx, &d);

		if (rc <= 0)
			return rc;
		rc = store(rx, fd, &d, &crc);
		if (rc < 0)
			return write_failed(rx, rc);
		free_slot(rx);
		n = account(rx, &d, crc);
		if (n < 0)
			return (int)n;
	}
}

int nshm_rx_complete(struct nshm_rx *rx, int ok, enum nshm_reason why)
{
	/* Interrupted is an abort, not a failure of the destination. */
	answer(rx, ok ? RX_DONE : why == NSHM_R_CANCELED ? RX_ABORT : RX_FAIL,
	       ok ? NSHM_R_NONE : why);
	rx->completed = true;
	return 0;
}

/* The sender has left the session we answered (or is gone). */
static int cond_seen(void *arg)
{
	struct nshm_rx *rx = arg;

	snap_tx(rx->r, &rx->tx);
	if (rx->tx.head.owner == 0 || rx->tx.session != rx->session ||
	    (rx->tx.state != TX_OFFER && rx->tx.state != TX_END))
		return WAIT_DONE;
	if (watch_update(&rx->watch, &rx->tx.head, peer_timeout_ns(&rx->p)) < 0)
		return WAIT_DONE;
	return WAIT_MORE;
}

/* Our last word (done, failed, refused) must reach the sender before the
 * line can carry another readiness: a resident receiver claims again at
 * once, and a fresh READY would hide the verdict. Bounded: a sender that
 * never looks is not waited for long. */
static void await_seen(struct nshm_rx *rx)
{
	if (rx->session == 0)
		return;
	(void)wait_until(&rx->bell, cond_seen, rx, nshm_now_ns() + SEEN_WAIT_NS,
			 rx->p.cancel);
}

void nshm_rx_close(struct nshm_rx *rx, enum nshm_reason why)
{
	if (!rx)
		return;
	if (rx->claim.line && claim_held(&rx->claim)) {
		if (rx->accepted && !rx->completed)
			answer(rx, why == NSHM_R_CANCELED ? RX_ABORT : RX_FAIL,
			       why ? why : NSHM_R_IO);
		else if (!rx->accepted && !rx->completed)
			PUBLISH(RXL(rx)->state, RX_IDLE);
		rx->bell.ring(&rx->bell);
		await_seen(rx);
	}
	claim_release(&rx->claim);
	free(rx->buf);
	free(rx);
}

uint64_t nshm_rx_bytes(const struct nshm_rx *rx) { return rx->bytes; }
uint32_t nshm_rx_crc(const struct nshm_rx *rx) { return rx->crc; }
uint32_t nshm_rx_reason(const struct nshm_rx *rx) { return rx->reason; }
const char *nshm_rx_why(const struct nshm_rx *rx) { return rx->why; }

int rx_failf(struct nshm_rx *rx, int rc, uint32_t reason, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rx->why, sizeof(rx->why), fmt, ap);
	va_end(ap);
	rx->reason = reason;
	return rc;
}

const struct nshm_params *rx_params(const struct nshm_rx *rx) { return &rx->p; }
