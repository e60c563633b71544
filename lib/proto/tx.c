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
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto.h"

/* Between two offers: a fresh receiver rarely needs a second round. */
#define RETRY_PAUSE_MIN_NS 1000000
#define RETRY_PAUSE_MAX_NS 100000000

struct nshm_tx {
	struct side s;                /* its watch is on the receiver */
	struct rx_snap rx;            /* last snapshot of the receiver */
	uint64_t nonce;               /* the readiness our offer answers */
	uint32_t nslots, chunk;
	uint64_t k;                   /* next chunk to publish */
	uint64_t consumed_seen;       /* the receiver's count, never to go back */
	size_t fill;                  /* bytes in slot k not yet published */
	uint32_t slot_crc;            /* CRC-32 of those bytes, as they came */
	bool slot_free;               /* slot k may be written */
	uint64_t total;               /* offered size, for progress */
	bool size_known;              /* total is a promise: the input must keep it */
	bool archive;                 /* offered a set of files */
	bool said_retry;              /* "went away without answering" said */
	bool ended, done;
	tx_sink_fn sink;              /* no region: the stream goes here */
	void *sink_arg;
};

#define TXL(tx) TX((tx)->s.r->base)
/* PUBLISH (proto.h): everything written before it (offer, descriptors,
 * slot data, totals) is visible to a peer that loads it with acquire. */

static unsigned char *slot_ptr(struct nshm_tx *tx, uint64_t k)
{
	return tx->s.r->base + NSHM_DATA_OFF + (size_t)(k % tx->nslots) * tx->chunk;
}

/* Fits the slots to the region: the asked chunk must fit; the default one
 * shrinks to fit (down to a page). */
static int plan_layout(struct nshm_tx *tx)
{
	size_t room = tx->s.r->size - NSHM_DATA_OFF;
	unsigned slots = tx->s.p.slots ? tx->s.p.slots : NSHM_DEFAULT_SLOTS;
	size_t chunk = tx->s.p.chunk;
	int rc;

	if (slots > NSHM_MAX_SLOTS) {
		return side_fail(&tx->s, -EINVAL, NSHM_R_NONE, "at most %u slots",
				 NSHM_MAX_SLOTS);
	}
	if (!chunk) {
		chunk = room / slots / 4096 * 4096;
		if (chunk > NSHM_DEFAULT_CHUNK)
			chunk = NSHM_DEFAULT_CHUNK;
	}
	chunk = chunk > NSHM_MAX_CHUNK ? NSHM_MAX_CHUNK : chunk / 4096 * 4096;
	rc = validate_layout(slots, (uint32_t)chunk, tx->s.r->size);
	if (rc == -NSHM_ETOOSMALL || chunk < NSHM_MIN_CHUNK) {
		size_t c = chunk < NSHM_MIN_CHUNK ? NSHM_MIN_CHUNK : chunk;

		return side_fail(&tx->s, -NSHM_ETOOSMALL, NSHM_R_NONE,
				 "%s is %zu bytes, too small for %u slots of %zu bytes: "
				 "it needs at least %zu", tx->s.r->path, tx->s.r->size, slots,
				 c, (size_t)NSHM_DATA_OFF + slots * c);
	}
	tx->nslots = slots;
	tx->chunk = (uint32_t)chunk;
	return rc;
}

static int check_rx_head(struct nshm_tx *tx)
{
	struct finding f;
	int rc = validate_head(&tx->rx.head, &f);

	return rc < 0 ? side_record(&tx->s, rc, &f) : 0;
}

static int lost(struct nshm_tx *tx)
{
	return side_fail(&tx->s, -NSHM_ELOST, NSHM_R_PROTO,
			 "another sender took %s over (this one was thought dead)",
			 tx->s.r->path);
}

/* A receiver is READY, under a live claim. */
static int cond_ready(void *arg)
{
	struct nshm_tx *tx = arg;
	int rc;

	snap_rx(tx->s.r, &tx->rx);
	if ((rc = check_rx_head(tx)) < 0)
		return rc;
	if (!claim_held(&tx->s.claim))
		return lost(tx);
	side_announce(&tx->s, "a receiver");
	/* Not known dead is enough: a stale READY costs one offer that a new
	 * receiver's fresh nonce (or the peer timeout) withdraws, while
	 * waiting to see a heartbeat move would add 50 ms to every transfer. */
	if (watch_update(&tx->s.watch, &tx->rx.head, peer_timeout_ns(&tx->s.p)) < 0)
		return WAIT_MORE;
	if (tx->rx.state != RX_READY || tx->rx.ready == 0 || tx->rx.head.magic == 0)
		return WAIT_MORE;
	/* It sleeps until rung: an offer we cannot ring about is never seen. */
	if (!bell_reaches(&tx->s.bell, &tx->rx.head))
		return side_fail(&tx->s, -EHOSTUNREACH, NSHM_R_NONE,
				 "the receiver on %s sleeps until rung and this side has no "
				 "doorbell to ring it (%s): run this program where it can reach "
				 "nshm-server's socket, or load the guest module (nshm(7), "
				 "DOORBELLS)", tx->s.r->path, nshm_region_doorbell(tx->s.r));
	return WAIT_DONE;
}

/* Before the offer that refers to it (same session, published with it). */
static void write_request(struct nshm_tx *tx, const struct nshm_meta *m)
{
	struct request *q = REQUEST(tx->s.r->base);
	size_t len = strlen(m->path);   /* checked <= NSHM_REQ_PATH_MAX */

	STORE(q->session, tx->s.session);
	STORE(q->kind, m->request);
	STORE(q->path_len, (uint32_t)len);
	memset(q->path, 0, sizeof(q->path));
	memcpy(q->path, m->path, len);
}

static void write_offer(struct nshm_tx *tx, const struct nshm_meta *m)
{
	struct offer *o = OFFER(tx->s.r->base);
	struct tx_line *t = TXL(tx);
	size_t len = strnlen(m->name, NSHM_NAME_MAX);

	STORE(o->session, tx->s.session);
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
		STORE(DESC(tx->s.r->base, i)->seq, UINT64_MAX);
		STORE(DESC(tx->s.r->base, i)->len, 0);
	}
	STORE(t->nslots, tx->nslots);
	STORE(t->chunk, tx->chunk);
	STORE(t->produced, 0);
	/* No stream is this long: an END stored by anyone but nshm_tx_end
	 * (a stray write to state) fails the receiver's length check, where
	 * zeros would pass as an empty stream. */
	STORE(t->total_len, NSHM_NO_END_LEN);
	STORE(t->total_crc, 0);
	STORE(t->reason, 0);
	STORE(t->session, tx->s.session);
	STORE(t->ready_echo, tx->nonce);
	PUBLISH(t->state, TX_OFFER);
}

enum { ANSWER_RETRY = WAIT_OTHER };  /* offer again */

static int receiver_failed(struct nshm_tx *tx);

/* What the receiver said to our session, if anything. Its every word to
 * our session is final: a receiver that accepted and failed before we
 * looked (no libarchive, no space) has failed this transfer, and going
 * back to wait for another would lose its word. */
static int answer_of(struct nshm_tx *tx)
{
	uint32_t why = peer_reason(tx->rx.reason);

	if (tx->rx.session != tx->s.session || tx->rx.ready != tx->nonce)
		return WAIT_MORE;
	switch (tx->rx.state) {
	case RX_ACCEPT:
		return WAIT_DONE;
	case RX_REFUSE:
		if (why == NSHM_R_UNSUPPORTED && tx->archive)
			return side_fail(&tx->s, -NSHM_EREFUSED, why,
					 "the receiver refused: it cannot take a set of files "
					 "(it needs libarchive; Debian: apt-get install libarchive13)");
		return side_fail(&tx->s, -NSHM_EREFUSED, why,
				 "the receiver refused: %s", nshm_reason_str(why));
	case RX_FAIL:
	case RX_ABORT:
	case RX_DONE:   /* done before we sent anything: not a verdict */
		return tx->rx.state == RX_DONE
			? side_fail(&tx->s, -NSHM_EPROTO, NSHM_R_PROTO,
				    "the receiver said done before the stream began")
			: receiver_failed(tx);
	default:
		return WAIT_MORE;
	}
}

/* The receiver answers our session, or goes away (then offer again). */
static int cond_answer(void *arg)
{
	struct nshm_tx *tx = arg;
	int rc;

	snap_rx(tx->s.r, &tx->rx);
	if (!claim_held(&tx->s.claim))
		return lost(tx);
	rc = answer_of(tx);
	if (rc != WAIT_MORE)
		return rc;
	if (watch_update(&tx->s.watch, &tx->rx.head, peer_timeout_ns(&tx->s.p)) < 0) {
		/* A receiver that refused and left at once. */
		snap_rx_last_word(tx->s.r, &tx->rx);
		rc = answer_of(tx);
		return rc != WAIT_MORE ? rc : ANSWER_RETRY;
	}
	return tx->rx.ready != tx->nonce ? ANSWER_RETRY : WAIT_MORE;
}

/* Once, on the terminal: the receiver we offered to is gone without a
 * word (killed, or a readiness it left when it died): another is waited
 * for, as when none was there. */
static void say_retry(struct nshm_tx *tx)
{
	char msg[NSHM_WHY_LEN];

	if (tx->said_retry || !tx->s.p.waiting)
		return;
	tx->said_retry = true;
	snprintf(msg, sizeof(msg), "the receiver on %s (pid %u%s) went away without answering; "
		 "waiting for another", tx->s.r->path, tx->rx.head.pid,
		 head_same_kernel(&tx->rx.head) ? "" : " on the other side");
	tx->s.p.waiting(tx->s.p.arg, msg);
}

static int offer(struct nshm_tx *tx, const struct nshm_meta *m)
{
	int64_t ready_deadline = tx->s.p.timeout_ms > 0
		? nshm_now_ns() + tx->s.p.timeout_ms * 1000000 : 0;
	int64_t pause_ns = RETRY_PAUSE_MIN_NS;
	int rc;

	/* One watch across retries: a receiver that never answered stays
	 * known dead until its line changes owner. */
	snap_rx(tx->s.r, &tx->rx);
	watch_reset(&tx->s.watch, &tx->rx.head);
	for (;;) {
		int64_t answer_deadline;

		rc = wait_handshake(&tx->s.bell, cond_ready, tx, ready_deadline, tx->s.p.cancel);
		if (rc == -ETIMEDOUT)
			return side_fail(&tx->s, rc, NSHM_R_TIMEOUT,
					 "no receiver appeared on %s", tx->s.r->path);
		if (rc < 0)
			return rc;
		tx->nonce = tx->rx.ready;
		tx->s.session = nshm_random64();
		write_offer(tx, m);
		tx->s.bell.ring(&tx->s.bell);
		nshm_offer_wake(&TXL(tx)->ready_echo);
		/* --timeout bounds the whole wait for a peer, offers included. */
		answer_deadline = nshm_now_ns() + peer_timeout_ns(&tx->s.p);
		if (ready_deadline && ready_deadline < answer_deadline)
			answer_deadline = ready_deadline;
		rc = wait_handshake(&tx->s.bell, cond_answer, tx, answer_deadline, tx->s.p.cancel);
		if (rc == 0) {
			/* From here the receiver is the owner that accepted. */
			watch_pin(&tx->s.watch);
			return 0;
		}
		if (rc == -ETIMEDOUT && ready_deadline && nshm_now_ns() >= ready_deadline) {
			return side_fail(&tx->s, rc, NSHM_R_TIMEOUT,
					 "no receiver answered on %s", tx->s.r->path);
		}
		if (rc != ANSWER_RETRY && rc != -ETIMEDOUT)
			return rc;
		say_retry(tx);
		/* The receiver left or never answered: wait for another, after
		 * a pause that grows with each round, so that a receiver that
		 * keeps renewing its readiness cannot make us spin. */
		PUBLISH(TXL(tx)->state, TX_IDLE);
		nshm_sleep_ns(pause_ns);
		if (pause_ns < RETRY_PAUSE_MAX_NS)
			pause_ns *= 2;
	}
}

int tx_open_sink(const struct nshm_meta *meta, const struct nshm_params *p,
		 tx_sink_fn sink, void *arg, struct nshm_tx **out)
{
	struct nshm_tx *tx = calloc(1, sizeof(*tx));

	*out = tx;
	if (!tx)
		return -ENOMEM;
	tx->s.p = *p;
	tx->total = meta->size_known ? meta->size : 0;
	tx->size_known = meta->size_known;
	tx->archive = meta->archive;
	tx->sink = sink;
	tx->sink_arg = arg;
	return 0;
}

/* A sink's word is final: its failure is the stream's. len 0 asks only
 * whether anyone still wants the stream (an input that waits). */
static int to_sink(struct nshm_tx *tx, const void *buf, size_t len)
{
	int rc = tx->sink(tx->sink_arg, buf, len);

	if (rc < 0)
		return side_fail(&tx->s, rc, nshm_stop_reason(rc),
				 "%s", nshm_strerror(rc));
	tx->s.bytes += len;
	return 0;
}

int nshm_tx_begin(struct nshm_region *r, const struct nshm_meta *meta,
		  const struct nshm_params *p, struct nshm_tx **out)
{
	struct nshm_tx *tx = calloc(1, sizeof(*tx));
	int rc;

	*out = tx;
	if (!tx)
		return -ENOMEM;
	tx->s.r = r;
	tx->s.p = *p;     /* plan_layout reads them; side_begin sets them too */
	if ((rc = nshm_check_meta(meta)) < 0)
		return side_fail(&tx->s, rc, NSHM_R_NONE,
				 "reserved fields of the offer are not zero");
	if (meta->request && (meta->request > NSHM_REQ_REPLY || !meta->path ||
			      strlen(meta->path) > NSHM_REQ_PATH_MAX))
		return side_fail(&tx->s, -EINVAL, NSHM_R_NONE,
				 "bad request: a path of at most %d bytes", NSHM_REQ_PATH_MAX);
	tx->total = meta->size_known ? meta->size : 0;
	tx->size_known = meta->size_known;
	tx->archive = meta->archive;
	rc = plan_layout(tx);
	if (rc < 0)
		return rc;
	rc = side_begin(&tx->s, r, p, &TX(r->base)->head, &RX(r->base)->head, "sender");
	if (rc < 0)
		return rc;
	PUBLISH(TXL(tx)->state, TX_IDLE);
	return offer(tx, meta);
}

/* The receiver went wrong: say how. */
static int receiver_failed(struct nshm_tx *tx)
{
	uint32_t why = peer_reason(tx->rx.reason);

	if (tx->rx.state == RX_ABORT)
		return side_fail(&tx->s, -NSHM_EPEERABORT, why, "the receiver aborted (%s)",
				 nshm_reason_str(why));
	return side_fail(&tx->s, -NSHM_EPEERFAIL, why, "the receiver failed: %s",
			 nshm_reason_str(why));
}

/* Common checks while a session runs: still ours, peer still there. */
static int check_session(struct nshm_tx *tx)
{
	snap_rx(tx->s.r, &tx->rx);
	if (!claim_held(&tx->s.claim))
		return lost(tx);
	if (tx->rx.session != tx->s.session || tx->rx.ready != tx->nonce) {
		return side_fail(&tx->s, -NSHM_EPEERGONE, NSHM_R_TIMEOUT,
				 "the receiver went away");
	}
	if (tx->rx.state == RX_ABORT || tx->rx.state == RX_FAIL)
		return receiver_failed(tx);
	/* In a session the receiver is receiving or has said done; anything
	 * else would leave both sides waiting on each other. */
	if (tx->rx.state != RX_ACCEPT && tx->rx.state != RX_DONE) {
		return side_fail(&tx->s, -NSHM_EPROTO, NSHM_R_PROTO,
				 "the receiver left its session without ending it");
	}
	if (watch_update(&tx->s.watch, &tx->rx.head, peer_timeout_ns(&tx->s.p)) < 0) {
		snap_rx_last_word(tx->s.r, &tx->rx);
		if (tx->rx.session == tx->s.session &&
		    (tx->rx.state == RX_ABORT || tx->rx.state == RX_FAIL))
			return receiver_failed(tx);
		return side_fail(&tx->s, -NSHM_EPEERGONE, NSHM_R_TIMEOUT,
				 "the receiver died or stopped responding");
	}
	side_peer_silent(&tx->s, &tx->rx.head, "receiver");
	if (tx->rx.consumed > tx->k) {
		return side_fail(&tx->s, -NSHM_EPROTO, NSHM_R_PROTO,
				 "the receiver freed chunks never sent");
	}
	return 0;
}

/* Slot k is free once chunk k - nslots is consumed. */
static int cond_slot(void *arg)
{
	struct nshm_tx *tx = arg;
	uint64_t consumed = peek_rx_consumed(tx->s.r);
	int rc;

	/* A count that went back would leave both sides waiting on each
	 * other, alive, forever (the scribbler found it). */
	if (consumed < tx->consumed_seen)
		return side_fail(&tx->s, -NSHM_EPROTO, NSHM_R_PROTO,
				 "the receiver's count of freed chunks went back");
	tx->consumed_seen = consumed;
	/* Our own count, rewritten by anyone else, wedges both sides the
	 * same way (the receiver waits for a chunk it thinks unpublished). */
	if (peek_tx_produced(tx->s.r) != tx->k)
		return side_fail(&tx->s, -NSHM_EPROTO, NSHM_R_PROTO,
				 "our count of published chunks was overwritten");
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
	rc = wait_until(&tx->s.bell, cond_slot, tx, 0, tx->s.p.cancel);
	if (rc == 0)
		tx->slot_free = true;
	return rc;
}

/* The chunk's CRC was accumulated as its bytes arrived (slot_crc), from
 * private memory where it could be, never by reading the slot back at the
 * end: by then anyone with the region could have rewritten it. */
static void publish(struct nshm_tx *tx, size_t len)
{
	struct slot_desc *d = DESC(tx->s.r->base, (uint32_t)(tx->k % tx->nslots));
	uint32_t crc = tx->slot_crc;

	STORE(d->seq, tx->k);
	STORE(d->len, (uint32_t)len);
	STORE(d->crc, crc);
	tx->s.crc = nshm_crc32_combine(tx->s.crc, crc, len);
	tx->s.bytes += len;
	tx->k++;
	tx->fill = 0;
	tx->slot_crc = 0;
	tx->slot_free = false;
	publish_fence();
	PUBLISH(TXL(tx)->produced, tx->k);
	tx->s.bell.ring(&tx->s.bell);
	if (tx->s.p.progress)
		tx->s.p.progress(tx->s.p.arg, tx->s.bytes, tx->total);
}

/* Pieces small enough to stay in cache between the checksum and the copy
 * into the slot. */
enum { PIECE = 256 << 10, WINDOW = 8 << 20 };

/* A file truncated under its mapping (logrotate's copytruncate) raises
 * SIGBUS at the next access past its new end. The copy out of a window
 * runs under a handler of the library's, installed for that window and
 * restored after (counted: threads share it), which jumps back to the
 * copy when the fault is in the window this thread maps; any other fault
 * (the region itself shrinking, say) goes on to the handler that was
 * there before, or to the default action. */
struct bus_window {
	sigjmp_buf jmp;
	const unsigned char *lo, *hi;
};
static _Thread_local struct bus_window *volatile bus_here;
static pthread_mutex_t bus_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned bus_users;
static struct sigaction bus_before;

static void on_bus(int sig, siginfo_t *si, void *uc)
{
	struct bus_window *w = bus_here;
	const unsigned char *at = si ? si->si_addr : NULL;

	if (w && at >= w->lo && at < w->hi)
		siglongjmp(w->jmp, 1);
	if (bus_before.sa_flags & SA_SIGINFO) {
		bus_before.sa_sigaction(sig, si, uc);
	} else if (bus_before.sa_handler != SIG_DFL && bus_before.sa_handler != SIG_IGN) {
		bus_before.sa_handler(sig);
	} else {
		/* The access is retried on return and faults again, now with
		 * the default action. */
		signal(SIGBUS, SIG_DFL);
	}
}

static int bus_catch(bool on)
{
	struct sigaction sa = { .sa_sigaction = on_bus, .sa_flags = SA_SIGINFO | SA_NODEFER };
	int rc = 0;

	pthread_mutex_lock(&bus_lock);
	if (on && bus_users++ == 0)
		rc = sigaction(SIGBUS, &sa, &bus_before);
	else if (!on && --bus_users == 0)
		rc = sigaction(SIGBUS, &bus_before, NULL);
	pthread_mutex_unlock(&bus_lock);
	return rc == 0 ? 0 : -errno;
}

/* One mapped window into the slots; -EIO with "source shrank" when the
 * file was cut under it. */
static int send_window(struct nshm_tx *tx, const unsigned char *map, size_t skew, size_t len)
{
	struct bus_window w = { .lo = map, .hi = map + skew + len };
	int rc = bus_catch(true);

	if (rc < 0)
		return side_fail(&tx->s, rc, NSHM_R_IO, "reading the input: %s",
				 nshm_strerror(rc));
	if (sigsetjmp(w.jmp, 1) == 0) {
		bus_here = &w;
		for (size_t off = 0; off < len && rc == 0; off += PIECE)
			rc = nshm_tx_write(tx, map + skew + off,
					   len - off < PIECE ? len - off : PIECE);
	} else {
		rc = side_fail(&tx->s, -EIO, NSHM_R_IO,
			       "source shrank while it was sent (truncated under the sender)");
	}
	bus_here = NULL;
	bus_catch(false);
	return rc;
}

/* A regular file is sent from a read-only mapping of it, window by window:
 * the checksum and the copy into the slot read the page cache itself, one
 * pass over the bytes fewer than read() into a buffer, and the mapping is
 * ours alone (the slot, which the peer may rewrite, is never checksummed).
 * Sends what the file held when we began; *pos is where read() goes on
 * (a file that grew; or any file where mapping fails). A file truncated
 * meanwhile fails the transfer (send_window), never with a signal. */
static int tx_from_map(struct nshm_tx *tx, int fd, off_t *pos)
{
	long page = sysconf(_SC_PAGESIZE);
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || page <= 0)
		return 0;
	while (*pos < st.st_size) {
		size_t skew = (size_t)(*pos % page);
		size_t len = st.st_size - *pos < WINDOW ? (size_t)(st.st_size - *pos) : WINDOW;
		unsigned char *map = mmap(NULL, len + skew, PROT_READ, MAP_SHARED | MAP_POPULATE,
					  fd, *pos - (off_t)skew);
		int rc;

		if (map == MAP_FAILED)
			return 0;
		rc = send_window(tx, map, skew, len);
		munmap(map, len + skew);
		if (rc < 0)
			return rc;
		*pos += (off_t)len;
	}
	return 0;
}

/* A regular file offered with its size must keep it: one that shrank or
 * grew while it was sent fails the transfer with a message. */
static int check_size(struct nshm_tx *tx, bool reg, bool at_end)
{
	uint64_t fed = tx->s.bytes + tx->fill;

	if (!reg || !tx->size_known)
		return 0;
	if (fed > tx->total)
		return side_fail(&tx->s, -EIO, NSHM_R_IO,
				 "source changed size while it was sent (it grew past the "
				 "%llu bytes offered)", (unsigned long long)tx->total);
	if (at_end && fed < tx->total)
		return side_fail(&tx->s, -EIO, NSHM_R_IO,
				 "source shrank while it was sent (%llu of the %llu bytes "
				 "offered)", (unsigned long long)fed,
				 (unsigned long long)tx->total);
	return 0;
}

/* How often a sender whose input has nothing looks at its receiver: soon
 * at first, then at an idle pace (a `tail -f` that is quiet for hours). */
#define INPUT_LOOK_MS 100
#define INPUT_IDLE_LOOK_MS 500

/* Wait until fd has something to read (or an end, or an error: read()
 * says which), looking at the receiver between looks: one that failed or
 * died is heard within the peer timeout, not once the input moves again.
 * A regular file is always readable: no wait. */
static int await_input(struct nshm_tx *tx, int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int64_t start = nshm_now_ns();
	bool idle = false;
	int rc = 0;

	for (;;) {
		int n = poll(&pfd, 1, idle ? INPUT_IDLE_LOOK_MS : INPUT_LOOK_MS);

		if (n > 0 || (n < 0 && errno != EINTR))
			break;
		if (tx->s.p.cancel && *tx->s.p.cancel) {
			rc = side_fail(&tx->s, -ECANCELED, NSHM_R_CANCELED, "interrupted");
			break;
		}
		rc = tx->sink ? to_sink(tx, NULL, 0) : check_session(tx);
		if (rc < 0)
			break;
		if (!idle && nshm_now_ns() - start > NSHM_IDLE_AFTER_NS) {
			/* A long wait: our heartbeat slows too (wait.c's rule). */
			idle = true;
			claim_pace(&tx->s.claim, PACE_IDLE);
		}
	}
	if (idle)
		claim_pace(&tx->s.claim, PACE_BUSY);
	return rc;
}

/* Anything else is read in cache-sized pieces into private memory, which
 * is checksummed and copied into the slot (nshm_tx_write). Reading
 * straight into the slot would save that copy, but then the checksum would
 * be of shared memory that anyone with the region may rewrite between the
 * read and the checksum (the scribbler test caught exactly that). */
int nshm_tx_from_fd(struct nshm_tx *tx, int fd)
{
	off_t pos = lseek(fd, 0, SEEK_CUR);
	unsigned char *buf = NULL;
	struct stat st;
	bool reg = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	int rc = 0;

	if (pos >= 0) {
		rc = tx_from_map(tx, fd, &pos);
		if (rc < 0)
			return rc;
		if (lseek(fd, pos, SEEK_SET) < 0) {
			rc = -errno;
			return side_fail(&tx->s, rc, NSHM_R_IO, "reading the input: %s",
					 nshm_strerror(rc));
		}
	}
	buf = malloc(PIECE);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		rc = await_input(tx, fd);
		if (rc < 0)
			break;
		n = read(fd, buf, PIECE);

		if (n < 0 && errno == EINTR && !(tx->s.p.cancel && *tx->s.p.cancel))
			continue;
		if (n < 0) {
			rc = errno == EINTR ? -ECANCELED : -errno;
			side_fail(&tx->s, rc, nshm_stop_reason(rc),
				 "reading the input: %s", nshm_strerror(rc));
			break;
		}
		if (n == 0) {
			rc = check_size(tx, reg, true);
			break;          /* end of input; nshm_tx_end sends the rest */
		}
		rc = nshm_tx_write(tx, buf, (size_t)n);
		if (rc == 0)
			rc = check_size(tx, reg, false);
		if (rc < 0)
			break;
	}
	free(buf);
	return rc;
}

int nshm_tx_write(struct nshm_tx *tx, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	if (tx->sink)
		return to_sink(tx, buf, len);
	while (len > 0) {
		size_t n;
		int rc = wait_slot(tx);

		if (rc < 0)
			return rc;
		n = tx->chunk - tx->fill;
		n = n < len ? n : len;
		/* The CRC of our own buffer: the slot copy may be rewritten. */
		tx->slot_crc = nshm_crc32(tx->slot_crc, p, n);
		side_digest(&tx->s, p, n);
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
	/* "Done" counts only with every byte we sent verified (rx.bytes,
	 * stored before the state): a stray write of the state alone, seen
	 * by the scribbler mid-stream, is not a verdict. */
	return tx->rx.session == tx->s.session && tx->rx.ready == tx->nonce &&
	       tx->rx.state == RX_DONE && tx->rx.bytes == tx->s.bytes;
}

static int cond_verdict(void *arg)
{
	struct nshm_tx *tx = arg;
	int rc;

	snap_rx(tx->s.r, &tx->rx);
	if (said_done(tx))
		return WAIT_DONE;
	/* Our end state rewritten by anyone else (to offer: the receiver then
	 * waits for a chunk) would leave both sides waiting, alive, forever
	 * (the scribbler found it). */
	if (peek_tx_state(tx->s.r) != TX_END)
		return side_fail(&tx->s, -NSHM_EPROTO, NSHM_R_PROTO,
				 "our end record was overwritten");
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
	STORE(t->total_len, tx->s.bytes);
	STORE(t->total_crc, tx->s.crc);
	PUBLISH(t->state, TX_END);
	tx->ended = true;
	tx->s.bell.ring(&tx->s.bell);
	rc = wait_handshake(&tx->s.bell, cond_verdict, tx, 0, tx->s.p.cancel);
	tx->done = rc == 0;
	return rc;
}

void nshm_tx_close(struct nshm_tx *tx, enum nshm_reason why)
{
	if (!tx)
		return;
	if (tx->s.claim.line && claim_held(&tx->s.claim)) {
		if (!tx->done) {
			STORE(TXL(tx)->reason, why ? why : NSHM_R_CANCELED);
			PUBLISH(TXL(tx)->state, TX_ABORT);
		} else {
			PUBLISH(TXL(tx)->state, TX_IDLE);
		}
		tx->s.bell.ring(&tx->s.bell);
	}
	claim_release(&tx->s.claim);
	free(tx);
}

/* A deliberate mirror of rx.c's accessors (duplicates pairs them). */
uint64_t nshm_tx_bytes(const struct nshm_tx *tx) { return tx->s.bytes; }
uint32_t nshm_tx_crc(const struct nshm_tx *tx) { return tx->s.crc; }
uint32_t nshm_tx_reason(const struct nshm_tx *tx) { return tx->s.fail.reason; }
const char *nshm_tx_why(const struct nshm_tx *tx) { return tx->s.fail.why; }


struct side *tx_side(struct nshm_tx *tx) { return &tx->s; }

int nshm_tx_digest(struct nshm_tx *tx, unsigned char out[32])
{
	return side_digest_final(&tx->s, tx->done, out);
}
