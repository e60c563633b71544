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

#include "proto.h"

#define SEEN_WAIT_NS 2000000000LL

struct nshm_rx {
	struct side s;                /* its watch is on the sender */
	struct tx_snap tx;            /* last snapshot of the sender */
	struct nshm_meta meta;
	uint64_t nonce;               /* our readiness, fresh each time */
	uint32_t nslots, chunk;
	uint64_t k;                   /* next chunk to take */
	unsigned char *buf;           /* private copy of one chunk */
	size_t buf_len;               /* its size (>= chunk: a kept one) */
	bool accepted, ended, completed;
	char req_path[NSHM_REQ_PATH_MAX + 1];  /* meta.path of a request */
};

#define RXL(rx) RX((rx)->s.r->base)
/* PUBLISH (proto.h): the fields stored before it, and for `consumed`
 * our reads of the slot, are complete before the peer sees the new value. */

static int cond_offer(void *arg)
{
	struct nshm_rx *rx = arg;
	struct finding f;
	int rc;

	snap_tx(rx->s.r, &rx->tx);
	rc = validate_head(&rx->tx.head, &f);
	if (rc < 0)
		return side_record(&rx->s, rc, &f);
	if (!claim_held(&rx->s.claim))
		return side_fail(&rx->s, -NSHM_ELOST, NSHM_R_PROTO,
				 "another receiver took %s over", rx->s.r->path);
	side_announce(&rx->s, "a sender");
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
	struct finding f;
	int rc;

	snap_request(rx->s.r, &q);
	rc = validate_request(&q, rx->s.session, &f);
	if (rc < 0) {
		side_record(&rx->s, rc, &f);
		nshm_rx_refuse(rx, NSHM_R_BADNAME);
		return rc;
	}
	memcpy(rx->req_path, q.path, q.path_len);
	rx->req_path[q.path_len] = '\0';
	meta->request = q.kind;
	meta->path = rx->req_path;
	return 0;
}

/* A chunk's private buffer: the one the region kept from the last
 * transfer if it is large enough (its pages are touched already: a fresh
 * 2 MiB costs milliseconds of page faults in a VM), else a new one. */
static int take_buffer(struct nshm_rx *rx)
{
	struct nshm_region *r = rx->s.r;

	if (r->spare_buf && r->spare_len >= rx->chunk) {
		rx->buf = r->spare_buf;
		rx->buf_len = r->spare_len;
		r->spare_buf = NULL;
		return 0;
	}
	if (posix_memalign((void **)&rx->buf, 4096, rx->chunk) != 0) {
		rx->buf = NULL;
		return -ENOMEM;
	}
	rx->buf_len = rx->chunk;
	return 0;
}

/* Kept for the region's next transfer, the larger one if there are two. */
static void give_buffer(struct nshm_rx *rx)
{
	struct nshm_region *r = rx->s.r;

	if (!rx->buf)
		return;
	if (r->spare_buf && r->spare_len >= rx->buf_len) {
		free(rx->buf);
	} else {
		free(r->spare_buf);
		r->spare_buf = rx->buf;
		r->spare_len = rx->buf_len;
	}
	rx->buf = NULL;
}

static int take_offer(struct nshm_rx *rx, struct nshm_meta *meta)
{
	struct offer_snap o;
	struct finding f;
	int rc;

	snap_offer(rx->s.r, &o);
	rx->s.session = rx->tx.session;
	rc = validate_offer(&o, rx->s.session, meta, &f);
	if (rc < 0)
		side_record(&rx->s, rc, &f);
	if (rc == 0 && validate_layout(rx->tx.nslots, rx->tx.chunk, rx->s.r->size) != 0) {
		rc = side_fail(&rx->s, -NSHM_EPROTO, NSHM_R_PROTO,
			       "the sender's layout (%u slots of %u bytes) does not fit %s",
			       rx->tx.nslots, rx->tx.chunk, rx->s.r->path);
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
	if (take_buffer(rx) < 0) {
		nshm_rx_refuse(rx, NSHM_R_IO);
		return -ENOMEM;
	}
	watch_reset(&rx->s.watch, &rx->tx.head);
	watch_pin(&rx->s.watch);
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
	rc = side_begin(&rx->s, r, p, &RX(r->base)->head, &TX(r->base)->head, "receiver");
	if (rc < 0)
		return rc;
	announce_ready(rx);
	rx->s.bell.ring(&rx->s.bell);
	deadline = p->timeout_ms > 0 ? rx->s.started_ns + p->timeout_ms * 1000000 : 0;
	/* This wait only: senders ring their offer, so with a doorbell it
	 * sleeps on it at once and, idle, until rung (bell.c). The data
	 * path's waits spin first: the next chunk comes within microseconds. */
	rx->s.bell.deep = true;
	/* Polling: asleep on the sender's ready_echo until it is our nonce
	 * (bell.c, echo_sleep): a sender on this kernel wakes it. */
	rx->s.bell.echo = &TX(r->base)->ready_echo;
	rx->s.bell.echo_want = (uint32_t)rx->nonce;
	rc = wait_handshake(&rx->s.bell, cond_offer, rx, deadline, p->cancel);
	rx->s.bell.deep = false;
	rx->s.bell.echo = NULL;
	if (rc == -ETIMEDOUT)
		return side_fail(&rx->s, rc, NSHM_R_TIMEOUT, "no sender appeared on %s",
				 r->path);
	if (rc < 0)
		return rc;
	return take_offer(rx, meta);
}

static void answer(struct nshm_rx *rx, uint32_t state, enum nshm_reason why)
{
	struct rx_line *x = RXL(rx);

	STORE(x->reason, why);
	STORE(x->session, rx->s.session);
	PUBLISH(x->state, state);
	rx->s.bell.ring(&rx->s.bell);
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

enum { CHUNK_READY = WAIT_DONE, STREAM_END = WAIT_OTHER };

static int sender_aborted(struct nshm_rx *rx)
{
	uint32_t why = peer_reason(rx->tx.reason);

	return side_fail(&rx->s, -NSHM_EPEERABORT, why, "the sender aborted (%s)",
			 nshm_reason_str(why));
}

static int cond_chunk(void *arg)
{
	struct nshm_rx *rx = arg;
	uint64_t produced = peek_tx_produced(rx->s.r);

	if (produced > rx->k && produced - rx->k <= rx->nslots)
		return CHUNK_READY;
	/* Our count of freed chunks, set back by anyone else before the
	 * sender read it, has the sender wait for a slot while we wait for a
	 * chunk, both alive, for ever (the scribbler found it): the mirror of
	 * the sender's check of its own count (tx.c, cond_slot). */
	if (peek_rx_consumed(rx->s.r) != rx->k)
		return side_fail(&rx->s, -NSHM_EPROTO, NSHM_R_PROTO,
			    "our count of freed chunks was overwritten");
	snap_tx(rx->s.r, &rx->tx);
	if (rx->tx.head.owner == 0 && rx->tx.state != TX_ABORT)
		snap_tx_last_word(rx->s.r, &rx->tx);
	if (!claim_held(&rx->s.claim))
		return side_fail(&rx->s, -NSHM_ELOST, NSHM_R_PROTO,
			    "another receiver took the region over");
	if ((rx->tx.head.owner == 0 && rx->tx.state != TX_ABORT) ||
	    rx->tx.session != rx->s.session)
		return side_fail(&rx->s, -NSHM_EPEERGONE, NSHM_R_TIMEOUT, "the sender went away");
	if (rx->tx.produced < rx->k || rx->tx.produced - rx->k > rx->nslots)
		return side_fail(&rx->s, -NSHM_EPROTO, NSHM_R_PROTO,
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
		return side_fail(&rx->s, -NSHM_EPROTO, NSHM_R_PROTO,
			    "the sender left its session without ending it");
	if (watch_update(&rx->s.watch, &rx->tx.head, peer_timeout_ns(&rx->s.p)) < 0) {
		snap_tx_last_word(rx->s.r, &rx->tx);
		if (rx->tx.session == rx->s.session && rx->tx.state == TX_ABORT)
			return sender_aborted(rx);
		return side_fail(&rx->s, -NSHM_EPEERGONE, NSHM_R_TIMEOUT,
			    "the sender died or stopped responding");
	}
	side_peer_silent(&rx->s, &rx->tx.head, "sender");
	return WAIT_MORE;
}

/* At the end: the totals in the region must match what we verified. */
static int check_end(struct nshm_rx *rx)
{
	if (rx->tx.total_len != rx->s.bytes)
		return side_fail(&rx->s, -NSHM_ECHECKSUM, NSHM_R_CHECKSUM,
			    "the stream's length does not match its end record");
	if (rx->tx.total_crc != rx->s.crc)
		return side_fail(&rx->s, -NSHM_ECHECKSUM, NSHM_R_CHECKSUM,
			    "the stream's CRC-32 does not match its end record");
	if (rx->meta.size_known && rx->s.bytes != rx->meta.size)
		return side_fail(&rx->s, -NSHM_ECHECKSUM, NSHM_R_CHECKSUM,
			    "the sender sent a different size than it offered");
	rx->ended = true;
	return 0;
}

/* The descriptor of chunk k, copied once and checked against the slot
 * size and the offer. */
static int take_desc(struct nshm_rx *rx, struct desc_snap *d)
{
	snap_desc(rx->s.r, (uint32_t)(rx->k % rx->nslots), d);
	if (d->seq != rx->k || d->len == 0 || d->len > rx->chunk)
		return side_fail(&rx->s, -NSHM_EPROTO, NSHM_R_PROTO,
			    "a chunk descriptor did not validate");
	if (rx->meta.size_known && d->len > rx->meta.size - rx->s.bytes)
		return side_fail(&rx->s, -NSHM_EPROTO, NSHM_R_PROTO,
			    "the sender sent more than it offered");
	if (rx->s.p.max_bytes && d->len > rx->s.p.max_bytes - rx->s.bytes)
		return side_fail(&rx->s, -EFBIG, NSHM_R_NOSPACE,
				 "the stream passes the receiver's limit of %llu bytes (--max-bytes)",
				 (unsigned long long)rx->s.p.max_bytes);
	return 0;
}

static const unsigned char *slot_data(const struct nshm_rx *rx)
{
	return rx->s.r->base + NSHM_DATA_OFF + (size_t)(rx->k % rx->nslots) * rx->chunk;
}

/* Frees slot k for the sender. Release: our reads of the slot are done
 * before the sender can see it free and overwrite it. */
static void free_slot(struct nshm_rx *rx)
{
	PUBLISH(RXL(rx)->consumed, rx->k + 1);
	rx->s.bell.ring(&rx->s.bell);
}

/* crc is of our private copy of the chunk, never of the slot. */
static ssize_t account(struct nshm_rx *rx, const struct desc_snap *d, uint32_t crc)
{
	if (crc != d->crc)
		return side_fail(&rx->s, -NSHM_ECHECKSUM, NSHM_R_CHECKSUM,
			    "a chunk did not match its CRC-32");
	rx->s.crc = nshm_crc32_combine(rx->s.crc, d->crc, d->len);
	rx->s.bytes += d->len;
	rx->k++;
	STORE(RXL(rx)->bytes, rx->s.bytes);
	/* An archive's offered size counts its files' bytes: for progress only. */
	if (rx->s.p.progress)
		rx->s.p.progress(rx->s.p.arg, rx->s.bytes,
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
	rc = wait_until(&rx->s.bell, cond_chunk, rx, 0, rx->s.p.cancel);
	if (rc == -ECANCELED)
		return side_fail(&rx->s, rc, NSHM_R_CANCELED, "interrupted");
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
	nshm_copy_in(rx->s.r, rx->buf, slot_data(rx), d.len);
	free_slot(rx);
	side_digest(&rx->s, rx->buf, d.len);
	*buf = rx->buf;
	return account(rx, &d, nshm_crc32(0, rx->buf, d.len));
}

/* Pieces small enough to stay in cache between the copy out of the slot,
 * the checksum and the write. */
#define PIECE (256u << 10)

static int write_failed(struct nshm_rx *rx, int rc)
{
	return side_fail(&rx->s, rc, nshm_errno_reason(-rc, NSHM_R_IO),
			 "writing the output: %s", nshm_strerror(rc));
}

/* The other way to checksum what reached a regular file: write straight
 * from the slot, then read the written range back through a read-only
 * mapping of the file. Kept to measure against the copy (NSHM_VERIFY=
 * readback); see README "Why the receiver copies". */
static int readback_crc(struct nshm_rx *rx, int fd, uint64_t pos, size_t len,
			uint32_t *crc)
{
	size_t skew = (size_t)(pos % 4096);
	void *map = mmap(NULL, len + skew, PROT_READ, MAP_SHARED, fd, (off_t)(pos - skew));

	if (map == MAP_FAILED)
		return -errno;
	*crc = nshm_crc32(0, (unsigned char *)map + skew, len);
	side_digest(&rx->s, (unsigned char *)map + skew, len);
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

		nshm_copy_in(rx->s.r, rx->buf, slot_data(rx) + off, len);
		*crc = nshm_crc32(*crc, rx->buf, len);
		side_digest(&rx->s, rx->buf, len);
		rc = nshm_write_all(fd, rx->buf, len, rx->s.p.cancel);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Write from the slot, then checksum the written range of the file. */
static int store_readback(struct nshm_rx *rx, int fd, const struct desc_snap *d,
			  uint32_t *crc)
{
	int rc = nshm_write_all(fd, slot_data(rx), d->len, rx->s.p.cancel);

	return rc < 0 ? rc : readback_crc(rx, fd, rx->s.bytes, d->len, crc);
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
	/* A refused offer has had its answer (nshm_rx_tree refuses one it
	 * cannot read): a verdict would overwrite the refusal's reason. */
	if (!rx->accepted)
		return rx->completed ? 0 : -EINVAL;
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

	snap_tx(rx->s.r, &rx->tx);
	if (rx->tx.head.owner == 0 || rx->tx.session != rx->s.session ||
	    (rx->tx.state != TX_OFFER && rx->tx.state != TX_END))
		return WAIT_DONE;
	if (watch_update(&rx->s.watch, &rx->tx.head, peer_timeout_ns(&rx->s.p)) < 0)
		return WAIT_DONE;
	return WAIT_MORE;
}

/* Our last word (done, failed, refused) must reach the sender before the
 * line can carry another readiness: a resident receiver claims again at
 * once, and a fresh READY would hide the verdict. Bounded: a sender that
 * never looks is not waited for long. */
static void await_seen(struct nshm_rx *rx)
{
	if (rx->s.session == 0)
		return;
	(void)wait_handshake(&rx->s.bell, cond_seen, rx, nshm_now_ns() + SEEN_WAIT_NS,
			     rx->s.p.cancel);
}

void nshm_rx_close(struct nshm_rx *rx, enum nshm_reason why)
{
	if (!rx)
		return;
	if (rx->s.claim.line && claim_held(&rx->s.claim)) {
		if (rx->accepted && !rx->completed)
			answer(rx, why == NSHM_R_CANCELED ? RX_ABORT : RX_FAIL,
			       why ? why : NSHM_R_IO);
		else if (!rx->accepted && !rx->completed)
			PUBLISH(RXL(rx)->state, RX_IDLE);
		rx->s.bell.ring(&rx->s.bell);
		await_seen(rx);
	}
	claim_release(&rx->s.claim);
	give_buffer(rx);
	free(rx);
}

/* A deliberate mirror of tx.c's accessors (duplicates pairs them): the
 * public API has one per side, over the side both begin with. */
uint64_t nshm_rx_bytes(const struct nshm_rx *rx) { return rx->s.bytes; }
uint32_t nshm_rx_crc(const struct nshm_rx *rx) { return rx->s.crc; }
uint32_t nshm_rx_reason(const struct nshm_rx *rx) { return rx->s.fail.reason; }
const char *nshm_rx_why(const struct nshm_rx *rx) { return rx->s.fail.why; }


struct side *rx_side(struct nshm_rx *rx) { return &rx->s; }
bool rx_answered(const struct nshm_rx *rx) { return rx->accepted || rx->completed; }

int nshm_rx_digest(struct nshm_rx *rx, unsigned char out[32])
{
	return side_digest_final(&rx->s, rx->ended, out);
}
