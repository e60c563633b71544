/* SPDX-License-Identifier: BSD-2-Clause */
/* libFuzzer harness: the receiver's state machine against a hostile sender.
 *
 * The input is a script for a fake sender that writes the region
 * directly (as tests/unit/test_protocol.c does by hand): it waits for the
 * receiver's READY, offers, publishes chunks and an end record, pokes and
 * flaps any value while the receiver reads it, and changes its identity.
 * The receiver is the real library, run in the calling thread with
 * peer_timeout_ms 50 and timeout_ms 200; when the script ends the fake
 * sender cancels it, or falls silent, so that every input finishes. The
 * fake sender is a coroutine and time is virtual (no thread, no real wait:
 * fake_region.h); NSHM_FUZZ_THREADS=1 makes it a thread in real time.
 *
 * Asserted: each call returns one of the codes it documents; an accepted
 * offer's name is a safe single component; the bytes handed out are the
 * bytes whose CRC-32 the receiver verified (nshm_rx_crc / nshm_rx_bytes),
 * and so is what nshm_rx_to_fd left in its file (also with
 * NSHM_VERIFY=readback, which writes straight from the slot);
 * a verified end matches the offered size; a canceled receiver returns
 * promptly; the claim is released at close. Crashes, sanitizer reports and
 * hangs (libFuzzer -timeout) are failures too.
 *
 * Input: [region pages] [receiver flags] then ops, one byte each plus
 * their operands (see the OP_ list).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>

#define FAKE_PEER_COROUTINE     /* see fake_region.h */
#include "fake_region.h"
#include "input.h"

enum {
	OP_WAIT_READY, OP_OFFER, OP_WAIT_ANSWER, OP_CHUNK, OP_END, OP_ABORT,
	OP_POKE, OP_FLAP, OP_SLEEP, OP_WAIT_CONSUMED, OP_WAIT_VERDICT, OP_OWNER,
	OP_CHUNKS, OP_COUNT
};
#define MAX_OPS 64

/* Receiver flags (second input byte). */
#define RF_REFUSE   0x01  /* refuse the offer instead of accepting */
#define RF_TO_FD    0x02  /* nshm_rx_to_fd into a file, not chunk by chunk */
#define RF_FAIL     0x04  /* chunk by chunk: after a verified end, complete
			   * with failure; to_fd: NSHM_VERIFY=readback */
#define RF_TAIL     0xf8  /* how the script ends: see fake_tail */

struct fake {
	unsigned char *base;
	size_t size;
	struct in in;
	unsigned tail;
	uint64_t owner, nonce, session, k, bytes, beats;
	int64_t budget_ns;
	uint32_t nslots, chunk, crc;
	bool beating, rx_line_touched;
	int64_t last_beat;
	atomic_bool rx_done;
	volatile sig_atomic_t cancel;
};

static struct tx_line *T(struct fake *f) { return TX(f->base); }
static struct rx_line *X(struct fake *f) { return RX(f->base); }

static void beat(struct fake *f)
{
	int64_t now = mono_ns();

	if (f->beating && now - f->last_beat > 1000000) {
		RLX(T(f)->head.heartbeat, ++f->beats);
		f->last_beat = now;
	}
}

typedef bool (*fake_cond)(struct fake *f);

/* Up to ms milliseconds, beating; false if it timed out or the receiver
 * already returned. All waits of one script share a budget, so that a
 * script of waits that never come true still ends in tens of ms. */
static bool fake_wait(struct fake *f, fake_cond c, int ms)
{
	int64_t t0 = mono_ns(), end = t0 + (int64_t)ms * 1000000;
	bool ok = true;

	if (end - t0 > f->budget_ns)
		end = t0 + f->budget_ns;
	while (!c(f)) {
		if (atomic_load(&f->rx_done) || mono_ns() > end) {
			ok = false;
			break;
		}
		beat(f);
		pause_us(20);
	}
	f->budget_ns -= mono_ns() - t0;
	if (f->budget_ns < 0)
		f->budget_ns = 0;
	return ok;
}

static bool c_ready(struct fake *f)
{
	return GET(X(f)->state) == RX_READY && GET(X(f)->ready) != 0;
}

static bool c_answer(struct fake *f)
{
	uint32_t s = GET(X(f)->state);

	return s != RX_READY && s != RX_IDLE;
}

static bool c_slot_free(struct fake *f)
{
	uint64_t consumed = GET(X(f)->consumed);
	uint32_t s = GET(X(f)->state);

	return consumed + f->nslots > f->k || (s != RX_ACCEPT && s != RX_READY);
}

static bool c_consumed(struct fake *f)
{
	uint32_t s = GET(X(f)->state);

	return GET(X(f)->consumed) >= f->k || (s != RX_ACCEPT && s != RX_READY);
}

static bool c_verdict(struct fake *f)
{
	uint32_t s = GET(X(f)->state);

	return s == RX_DONE || s == RX_FAIL || s == RX_ABORT || s == RX_REFUSE;
}

/* Where the fake writes slot k: its own view of the layout, clamped to the
 * region so the harness never writes outside its mapping. */
static unsigned char *slot_at(struct fake *f, uint64_t k, size_t *room)
{
	uint32_t n = f->nslots ? f->nslots : 1;
	uint64_t off = NSHM_DATA_OFF + (k % n) * (uint64_t)f->chunk;

	if (off >= f->size) {
		*room = 0;
		return NULL;
	}
	*room = f->size - off;
	if (*room > f->chunk)
		*room = f->chunk;
	return f->base + off;
}

static struct slot_desc *desc_at(struct fake *f, uint64_t k)
{
	uint32_t n = f->nslots ? f->nslots : 1;

	return DESC(f->base, (uint32_t)(k % n % NSHM_MAX_SLOTS));
}

static void op_offer(struct fake *f)
{
	struct in *in = &f->in;
	struct offer *o = OFFER(f->base);
	uint8_t v = in_u8(in), v2 = in_u8(in);
	uint64_t session, size;
	uint32_t flags, mode, nsec, name_len, nslots, chunk;
	int64_t sec;
	unsigned char name[NSHM_NAME_MAX + 1];
	uint8_t nl;

	if (!(v & 0x80))
		fake_wait(f, c_ready, 5);
	f->nonce = GET(X(f)->ready);
	session = v & 0x40 ? in_u64(in) : 0x5e55000000000000ull | in_u8(in);
	size = v & 1 ? in_u64(in) : in_u32(in);
	flags = v & 2 ? in_u32(in) : in_u8(in) & NSHM_OFFER_FLAGS;
	mode = in_u32(in);
	sec = (int64_t)in_u64(in);
	nsec = v & 4 ? in_u32(in) : in_u32(in) % 1000000000u;
	nl = in_u8(in);
	memset(name, 0, sizeof(name));
	/* v & 16: all 256 bytes from the input, terminator or not. */
	in_bytes(in, name, v & 16 ? sizeof(name) : nl);
	name_len = v & 8 ? in_u32(in) : nl;
	nslots = v & 32 ? in_u32(in) : 1 + in_u8(in) % 8u;
	chunk = v2 & 1 ? in_u32(in) : (1 + in_u8(in) % 16u) * 4096u;

	if (v2 & 8)                     /* torn: the state before the fields */
		REL(T(f)->state, TX_OFFER);
	RLX(o->session, v2 & 4 ? session ^ 1 : session);
	RLX(o->size, size);
	RLX(o->flags, flags);
	RLX(o->mode, mode);
	RLX(o->mtime_sec, sec);
	RLX(o->mtime_nsec, nsec);
	RLX(o->name_len, name_len);
	memcpy(o->name, name, sizeof(name));
	for (uint32_t i = 0; i < NSHM_MAX_SLOTS; i++) {
		RLX(DESC(f->base, i)->seq, UINT64_MAX);
		RLX(DESC(f->base, i)->len, 0);
	}
	RLX(T(f)->nslots, nslots);
	RLX(T(f)->chunk, chunk);
	if (!(v2 & 64))
		RLX(T(f)->produced, 0);
	RLX(T(f)->total_len, 0);
	RLX(T(f)->total_crc, 0);
	RLX(T(f)->reason, 0);
	RLX(T(f)->session, v2 & 32 ? 0 : session);
	RLX(T(f)->ready_echo, v2 & 2 ? f->nonce ^ (in_u64(in) | 1) : f->nonce);
	if (v2 & 128)
		RLX(T(f)->head.owner, 0);
	REL(T(f)->state, TX_OFFER);
	if (v2 & 16) {                  /* rewrite the offer while it is read */
		uint8_t n = in_u8(in);

		for (unsigned i = 0; i < n * 4u; i++) {
			o->name[i % 8] ^= (unsigned char)(i | 1);
			RLX(o->name_len, i & 1 ? name_len : name_len + 1);
			RLX(o->flags, i & 2 ? flags : flags | 4);
		}
	}
	f->session = session;
	f->nslots = nslots > NSHM_MAX_SLOTS ? NSHM_MAX_SLOTS : nslots ? nslots : 1;
	f->chunk = chunk >= 4096 && chunk <= f->size ? chunk : 4096;
	f->k = 0;
	f->bytes = 0;
	f->crc = 0;
}

/* One chunk into slot k; data from the input or a generator. */
static void put_chunk(struct fake *f, uint32_t len, bool from_input, uint32_t seed,
		      bool wait_free, uint32_t crc_xor, bool raw_seq, bool raw_produced)
{
	struct in *in = &f->in;
	struct slot_desc *d;
	unsigned char *slot;
	size_t room, n;
	uint32_t crc;

	if (wait_free)
		fake_wait(f, c_slot_free, 5);
	slot = slot_at(f, f->k, &room);
	n = len < room ? len : room;
	if (slot) {
		if (from_input) {
			in_bytes(in, slot, n);
		} else {
			fill_xorshift(slot, n, seed);
		}
	}
	crc = slot ? nshm_crc32(0, slot, n) : 0;
	d = desc_at(f, f->k);
	RLX(d->seq, raw_seq ? in_u64(in) : f->k);
	RLX(d->len, len);
	RLX(d->crc, crc ^ crc_xor);
	f->crc = nshm_crc32_combine(f->crc, crc, n);
	f->bytes += n;
	f->k++;
	REL(T(f)->produced, raw_produced ? in_u64(in) : f->k);
}

static void op_chunk(struct fake *f)
{
	struct in *in = &f->in;
	uint8_t v = in_u8(in);
	uint32_t len = v & 1 ? in_u32(in) : in_u16(in);
	uint32_t seed = v & 4 ? 0 : in_u8(in);
	uint32_t crc_xor = v & 8 ? in_u32(in) : 0;
	uint64_t k = f->k;

	put_chunk(f, len, v & 4, seed, !(v & 2), crc_xor, v & 16, v & 32);
	if (v & 64) {                   /* rewrite the data just published */
		size_t room;
		unsigned char *slot = slot_at(f, k, &room);

		if (slot && room)
			slot[in_u16(in) % room] ^= 0x5a;
	}
	if (v & 128) {                  /* flap the length while it is read */
		struct slot_desc *d = desc_at(f, k);
		uint32_t other = in_u32(in);

		for (int i = 0; i < 200; i++)
			RLX(d->len, i & 1 ? len : other);
	}
}

static void op_chunks(struct fake *f)
{
	struct in *in = &f->in;
	unsigned n = 1 + in_u8(in) % 8u;
	uint32_t seed = in_u8(in);
	uint32_t len = in_u16(in);

	for (unsigned i = 0; i < n && !atomic_load(&f->rx_done); i++)
		put_chunk(f, len ? len : f->chunk, false, seed + i, true, 0, false, false);
}

static void op_end(struct fake *f)
{
	struct in *in = &f->in;
	uint8_t v = in_u8(in);

	RLX(T(f)->total_len, v & 1 ? in_u64(in) : f->bytes);
	RLX(T(f)->total_crc, v & 2 ? in_u32(in) : f->crc);
	if (v & 4)
		REL(T(f)->produced, in_u8(in));
	REL(T(f)->state, TX_END);
}

static void op_poke(struct fake *f)
{
	struct in *in = &f->in;
	uint8_t v = in_u8(in);
	static const size_t widths[] = { 1, 2, 4, 8 };
	size_t w = widths[(v >> 1) & 3];
	size_t off = v & 1 ? in_u32(in) % f->size : in_u16(in) % NSHM_DATA_OFF;
	uint64_t val = in_u64(in);

	if (off + w > f->size)
		off = f->size - w;
	if (off < NSHM_OFFER_OFF && off + w > NSHM_RX_OFF)
		f->rx_line_touched = true;
	memcpy(f->base + off, &val, w);
}

static void op_flap(struct fake *f)
{
	struct in *in = &f->in;
	uint8_t which = in_u8(in) % 8;
	uint32_t a = in_u32(in), b = in_u32(in);
	unsigned n = 8u * (1 + in_u8(in));

	for (unsigned i = 0; i < n; i++) {
		uint32_t val = i & 1 ? b : a;

		switch (which) {
		case 0: REL(T(f)->state, val); break;
		case 1: REL(T(f)->produced, val); break;
		case 2: RLX(desc_at(f, f->k ? f->k - 1 : 0)->len, val); break;
		case 3: RLX(desc_at(f, f->k ? f->k - 1 : 0)->seq, val); break;
		case 4: RLX(OFFER(f->base)->name_len, val); break;
		case 5: RLX(T(f)->session, val); break;
		case 6: RLX(T(f)->chunk, val); break;
		default: RLX(T(f)->nslots, val); break;
		}
		if (i % 8 == 7)
			sched_yield();
	}
}

static void op_owner(struct fake *f)
{
	struct in *in = &f->in;
	struct line_head *h = &T(f)->head;

	switch (in_u8(in) % 7) {
	case 0: RLX(h->owner, 0); break;                /* released */
	case 1: RLX(h->owner, in_u64(in)); break;       /* taken over */
	case 2: RLX(h->id.pid, in_u32(in)); break;      /* some pid, maybe dead */
	case 3: RLX(h->id.boot[0], h->id.boot[0] ^ 1); break; /* other kernel */
	case 4: f->beating = false; break;              /* falls silent */
	case 5: RLX(h->magic, in_u32(in)); break;
	default: RLX(h->version, in_u32(in)); break;
	}
}

static bool debug;

static void op_sleep(struct fake *f)
{
	int64_t ns = 10000ll * in_u8(&f->in);

	ns = ns < f->budget_ns ? ns : f->budget_ns;
	pause_us((long)(ns / 1000));
	f->budget_ns -= ns;
}

static void run_script(struct fake *f)
{
	struct in *in = &f->in;

	for (int i = 0; i < MAX_OPS && in->n > 0 && !atomic_load(&f->rx_done); i++) {
		uint8_t op = in_u8(in) % OP_COUNT;

		beat(f);
		if (debug)
			fprintf(stderr, "fuzz_receiver: op %u (k %llu, rx state %u, consumed %llu)\n",
				op, (unsigned long long)f->k, (unsigned)GET(X(f)->state),
				(unsigned long long)GET(X(f)->consumed));
		switch (op) {
		case OP_WAIT_READY: fake_wait(f, c_ready, 5); break;
		case OP_OFFER: op_offer(f); break;
		case OP_WAIT_ANSWER: fake_wait(f, c_answer, 5); break;
		case OP_CHUNK: op_chunk(f); break;
		case OP_END: op_end(f); break;
		case OP_ABORT:
			RLX(T(f)->reason, in_u32(in));
			REL(T(f)->state, TX_ABORT);
			break;
		case OP_POKE: op_poke(f); break;
		case OP_FLAP: op_flap(f); break;
		case OP_SLEEP: op_sleep(f); break;
		case OP_WAIT_CONSUMED: fake_wait(f, c_consumed, 5); break;
		case OP_WAIT_VERDICT: fake_wait(f, c_verdict, 5); break;
		case OP_OWNER: op_owner(f); break;
		case OP_CHUNKS: op_chunks(f); break;
		}
	}
}

static bool c_never(struct fake *f) { (void)f; return false; }

/* The receiver's line has not moved for a millisecond: it has taken in
 * what the script wrote and waits for more. */
static void settle(struct fake *f)
{
	int64_t t0 = mono_ns(), still = t0;
	uint32_t state = GET(X(f)->state);
	uint64_t consumed = GET(X(f)->consumed);

	while (!atomic_load(&f->rx_done) && mono_ns() - still < 1000000 &&
	       mono_ns() - t0 < 20000000) {
		uint32_t s2 = GET(X(f)->state);
		uint64_t c2 = GET(X(f)->consumed);

		if (s2 != state || c2 != consumed) {
			state = s2;
			consumed = c2;
			still = mono_ns();
		}
		beat(f);
		pause_us(20);
	}
}

/* The end of the script: the receiver must then return. Mostly it is
 * canceled once it has settled (then the outcome does not depend on
 * timing); one in 32 inputs cancels at once (racing the receiver, as a
 * Ctrl-C does), one after 20 ms, one after 60 ms of a live but idle sender
 * (past the peer timeout), and one falls silent and lets the timeouts
 * decide (up to timeout_ms, 200 ms: rare, as it is slow). */
static void fake_tail(struct fake *f)
{
	int64_t t0;

	switch (f->tail) {
	case 28: break;
	case 29: f->budget_ns = 20000000; fake_wait(f, c_never, 20); break;
	case 30: f->budget_ns = 60000000; fake_wait(f, c_never, 60); break; /* beating past
									      * the peer timeout */
	case 31: f->beating = false; break;
	default: settle(f); break;
	}
	if (f->tail != 31)
		f->cancel = 1;
	/* A canceled receiver returns within milliseconds, a silent sender is
	 * judged within peer_timeout_ms, no sender within timeout_ms; allow
	 * a slow machine (and the sanitizers) a wide margin. */
	t0 = mono_ns();
	while (!atomic_load(&f->rx_done)) {
		if (mono_ns() - t0 > 5000000000ll)
			FAIL("the receiver did not return 5 s after the script ended "
			     "(tail %u, cancel %d)", f->tail, (int)f->cancel);
		pause_us(50);
	}
}

static void fake_main(void *arg)
{
	struct fake *f = arg;

	run_script(f);
	fake_tail(f);
}

static bool safe_name(const char *s)
{
	size_t n = strnlen(s, 256);

	if (n == 0 || n > 255 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static int out_fd = -1;          /* the destination of nshm_rx_to_fd */

static void receive(struct fake *f, struct nshm_region *r, uint8_t flags)
{
	struct nshm_params p;
	struct nshm_rx *rx = NULL;
	struct nshm_meta meta;
	int rc;

	memset(&p, 0, sizeof(p));
	p.timeout_ms = 200;
	p.peer_timeout_ms = 50;
	p.cancel = &f->cancel;
	rc = nshm_rx_begin(r, &p, &rx, &meta);
	if (!IN_SET(rc, 0, -NSHM_EMAGIC, -NSHM_EVERSION, -NSHM_EBUSY, -NSHM_EPROTO,
		    -ETIMEDOUT, -ECANCELED, -NSHM_ELOST))
		FAIL("nshm_rx_begin returned %d (%s)", rc, nshm_strerror(rc));
	if (rc == 0) {
		if (!safe_name(meta.name))
			FAIL("an unsafe name was accepted: '%s'", meta.name);
		CHECK((meta.mode & ~07777u) == 0 && meta.mtime_nsec < 1000000000u);
	}
	if (rc == 0 && (flags & RF_REFUSE)) {
		nshm_rx_refuse(rx, NSHM_R_EXISTS);
	} else if (rc == 0 && (flags & RF_TO_FD)) {
		nshm_rx_accept(rx);
		rc = nshm_rx_to_fd(rx, out_fd);
		/* ELOST: the peer may overwrite our claim token too. */
		if (!IN_SET(rc, 0, -NSHM_EPEERGONE, -NSHM_EPROTO, -NSHM_EPEERABORT,
			    -NSHM_ECHECKSUM, -ECANCELED, -NSHM_ELOST))
			FAIL("nshm_rx_to_fd returned %d", rc);
		if (rc == 0) {
			/* What reached the file is what was verified. */
			off_t len = lseek(out_fd, 0, SEEK_END);
			unsigned char *back = malloc((size_t)len + 1);

			CHECK(len >= 0 && (uint64_t)len == nshm_rx_bytes(rx));
			CHECK(pread(out_fd, back, (size_t)len, 0) == len);
			if (nshm_crc32(0, back, (size_t)len) != nshm_rx_crc(rx))
				FAIL("nshm_rx_to_fd verified crc32 %08x, the file holds %08x%s",
				     nshm_rx_crc(rx), nshm_crc32(0, back, (size_t)len),
				     getenv("NSHM_VERIFY") ? " (NSHM_VERIFY=readback)" : "");
			free(back);
			if (meta.size_known)
				CHECK(nshm_rx_bytes(rx) == meta.size);
		}
		nshm_rx_complete(rx, rc == 0, rc ? nshm_rx_reason(rx) : NSHM_R_NONE);
	} else if (rc == 0) {
		uint64_t total = 0;
		uint32_t crc = 0;
		const void *buf;
		ssize_t n;

		nshm_rx_accept(rx);
		while ((n = nshm_rx_chunk(rx, &buf)) > 0) {
			CHECK((size_t)n <= f->size - NSHM_DATA_OFF);
			crc = nshm_crc32(crc, buf, (size_t)n);
			total += (uint64_t)n;
			/* What was handed out is what was verified. */
			CHECK(nshm_rx_crc(rx) == crc && nshm_rx_bytes(rx) == total);
			if (meta.size_known)
				CHECK(total <= meta.size);
		}
		if (!IN_SET(n, 0, -NSHM_EPEERGONE, -NSHM_EPROTO, -NSHM_EPEERABORT,
			    -NSHM_ECHECKSUM, -ECANCELED, -NSHM_ELOST))
			FAIL("nshm_rx_chunk returned %zd", n);
		rc = (int)n;
		if (n == 0) {
			CHECK(nshm_rx_crc(rx) == crc && nshm_rx_bytes(rx) == total);
			if (meta.size_known)
				CHECK(total == meta.size);
			CHECK(nshm_rx_chunk(rx, &buf) == 0);   /* stays ended */
			nshm_rx_complete(rx, !(flags & RF_FAIL), NSHM_R_IO);
		} else {
			/* A reason may be none (the sender aborted giving none),
			 * an explanation is always there. */
			CHECK(nshm_rx_why(rx)[0] != '\0');
			nshm_rx_complete(rx, 0, nshm_rx_reason(rx));
		}
	}
	if (debug)
		fprintf(stderr, "fuzz_receiver: rc %d (%s): %s [tx state %u produced %llu, "
			"rx state %u consumed %llu]\n", rc, nshm_strerror(rc),
			rx ? nshm_rx_why(rx) : "", (unsigned)GET(TX(f->base)->state),
			(unsigned long long)GET(TX(f->base)->produced),
			(unsigned)GET(RX(f->base)->state),
			(unsigned long long)GET(RX(f->base)->consumed));
	nshm_rx_close(rx, rc == -ECANCELED ? NSHM_R_CANCELED : NSHM_R_IO);
	if (!f->rx_line_touched)
		CHECK(atomic_load(&RX(f->base)->head.owner) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	size_t pages = 1 + in_u8(&in) % 32u;
	uint8_t flags = in_u8(&in);
	struct fake *f = calloc(1, sizeof(*f));
	struct nshm_region *r;

	debug = getenv("NSHM_FUZZ_DEBUG") != NULL;
	if (out_fd < 0 && (out_fd = memfd_create("nshm-fuzz-out", MFD_CLOEXEC)) < 0)
		abort();
	if (ftruncate(out_fd, 0) != 0 || lseek(out_fd, 0, SEEK_SET) != 0)
		abort();
	/* Set before any thread of this input runs: the library reads it. */
	if ((flags & (RF_TO_FD | RF_FAIL)) == (RF_TO_FD | RF_FAIL))
		setenv("NSHM_VERIFY", "readback", 1);
	else
		unsetenv("NSHM_VERIFY");
	f->size = NSHM_DATA_OFF + pages * 4096;
	f->base = region_new(f->size);
	f->in = in;
	f->tail = (flags & RF_TAIL) >> 3;
	f->owner = 0x0fa4e;
	f->beating = true;
	f->budget_ns = 15000000;
	f->nslots = 1;
	f->chunk = 4096;
	fake_head(&T(f)->head, f->owner);
	REL(T(f)->state, TX_IDLE);
	r = region_open();
	peer_start(fake_main, f);
	receive(f, r, flags);
	atomic_store(&f->rx_done, true);
	peer_finish();
	nshm_close(r);
	munmap(f->base, f->size);
	free(f);
	return 0;
}
