/* SPDX-License-Identifier: BSD-2-Clause */
/* scribble: a hostile third party on an nshm region, for the fault tests.
 *
 *   scribble random REGION [--seed N] [--count N] [--start-us N] [--max-gap-us N]
 *                          [--target mixed|data|header|fields] [--ms N]
 *       After --start-us, write random bytes at random places (the data
 *       slots, any header byte, or one protocol field set to a plausible
 *       value), one write every 0..--max-gap-us, until --count writes are
 *       done or --ms have passed. Prints what it wrote, one line each, to
 *       stdout.
 *   scribble wait REGION COND [--timeout-ms N] [--signal SIG --pid PID]
 *       Poll the region (every 20 us) until COND holds, then send SIG to
 *       PID at once. COND: tx-state=N, rx-state=N, produced>=N,
 *       consumed>=N, tx-claimed, rx-claimed, tx-owned, rx-owned, full (every slot holds a
 *       chunk the receiver has not taken). Exit 0, or 1 on timeout.
 *   scribble corrupt-published REGION
 *       Flip one bit of the newest published chunk the receiver has not
 *       taken: a checksum mismatch injected after publication (stop the
 *       receiver first, then wait for `full`).
 *   scribble corrupt-filling REGION
 *       Flip one bit at the start of the slot the sender is filling and
 *       has not published yet.
 *   scribble set REGION FIELD VALUE
 *       Write one protocol field (names as `random` prints them, e.g.
 *       tx.state, rx.consumed, desc[0].len).
 *   scribble forge REGION tx|rx [--state N]
 *       Leave the line of a dead process of another machine: claimed,
 *       heartbeat still, in state N (default 1: ready, or offering).
 *   scribble cat FILE [--piece N] [--gap-us N]
 *       Copy FILE to standard output in pieces with pauses: a slow pipe.
 *
 * Only layout.h is used: the tool knows the layout, not the library.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto/layout.h"

static unsigned char *base;
static size_t size;

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "scribble: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(2);
}

static void map_region(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) != 0)
		die("cannot open %s", path);
	size = (size_t)st.st_size;
	if (size < NSHM_DATA_OFF + 4096)
		die("%s is too small for a region", path);
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		die("cannot map %s", path);
	close(fd);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static uint64_t rng;

static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* ---- random ---- */

struct field {
	const char *name;
	size_t off, width;
};

#define F(name, off, type, member) \
	{ name, (off) + offsetof(type, member), sizeof(((type *)0)->member) }

static const struct field fields[] = {
	F("tx.magic", NSHM_TX_OFF, struct tx_line, head.magic),
	F("tx.version", NSHM_TX_OFF, struct tx_line, head.version),
	F("tx.owner", NSHM_TX_OFF, struct tx_line, head.owner),
	F("tx.heartbeat", NSHM_TX_OFF, struct tx_line, head.heartbeat),
	F("tx.pid", NSHM_TX_OFF, struct tx_line, head.id.pid),
	F("tx.session", NSHM_TX_OFF, struct tx_line, session),
	F("tx.ready_echo", NSHM_TX_OFF, struct tx_line, ready_echo),
	F("tx.state", NSHM_TX_OFF, struct tx_line, state),
	F("tx.reason", NSHM_TX_OFF, struct tx_line, reason),
	F("tx.produced", NSHM_TX_OFF, struct tx_line, produced),
	F("tx.nslots", NSHM_TX_OFF, struct tx_line, nslots),
	F("tx.chunk", NSHM_TX_OFF, struct tx_line, chunk),
	F("tx.total_len", NSHM_TX_OFF, struct tx_line, total_len),
	F("tx.total_crc", NSHM_TX_OFF, struct tx_line, total_crc),
	F("rx.magic", NSHM_RX_OFF, struct rx_line, head.magic),
	F("rx.owner", NSHM_RX_OFF, struct rx_line, head.owner),
	F("rx.heartbeat", NSHM_RX_OFF, struct rx_line, head.heartbeat),
	F("rx.pid", NSHM_RX_OFF, struct rx_line, head.id.pid),
	F("rx.ready", NSHM_RX_OFF, struct rx_line, ready),
	F("rx.session", NSHM_RX_OFF, struct rx_line, session),
	F("rx.state", NSHM_RX_OFF, struct rx_line, state),
	F("rx.reason", NSHM_RX_OFF, struct rx_line, reason),
	F("rx.consumed", NSHM_RX_OFF, struct rx_line, consumed),
	F("rx.bytes", NSHM_RX_OFF, struct rx_line, bytes),
	F("offer.session", NSHM_OFFER_OFF, struct offer, session),
	F("offer.size", NSHM_OFFER_OFF, struct offer, size),
	F("offer.flags", NSHM_OFFER_OFF, struct offer, flags),
	F("offer.mode", NSHM_OFFER_OFF, struct offer, mode),
	F("offer.mtime_nsec", NSHM_OFFER_OFF, struct offer, mtime_nsec),
	F("offer.name_len", NSHM_OFFER_OFF, struct offer, name_len),
	F("offer.name[0]", NSHM_OFFER_OFF, struct offer, name[0]),
	F("offer.name[1]", NSHM_OFFER_OFF, struct offer, name[1]),
	F("desc[0].seq", NSHM_DESC_OFF, struct slot_desc, seq),
	F("desc[0].len", NSHM_DESC_OFF, struct slot_desc, len),
	F("desc[0].crc", NSHM_DESC_OFF, struct slot_desc, crc),
	F("desc[1].seq", NSHM_DESC_OFF + sizeof(struct slot_desc), struct slot_desc, seq),
	F("desc[1].len", NSHM_DESC_OFF + sizeof(struct slot_desc), struct slot_desc, len),
	F("desc[1].crc", NSHM_DESC_OFF + sizeof(struct slot_desc), struct slot_desc, crc),
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static uint64_t load(size_t off, size_t w)
{
	uint64_t v = 0;

	memcpy(&v, base + off, w);
	return v;
}

static void store(size_t off, size_t w, uint64_t v)
{
	memcpy(base + off, &v, w);
}

static void write_field(void)
{
	const struct field *f = &fields[below(NFIELDS)];
	uint64_t cur = load(f->off, f->width), v;

	switch (below(6)) {
	case 0: v = 0; break;
	case 1: v = cur + 1; break;
	case 2: v = cur - 1; break;
	case 3: v = below(8); break;
	case 4: v = cur ^ (1ull << below(f->width * 8)); break;
	default: v = rnd(); break;
	}
	store(f->off, f->width, v);
	printf("field %s: %#llx -> %#llx\n", f->name, (unsigned long long)cur,
	       (unsigned long long)load(f->off, f->width));
}

static void write_bytes(size_t lo, size_t hi)
{
	size_t len = 1 + below(8), off;

	if (hi - lo < len)
		len = hi - lo;
	off = lo + below(hi - lo - len + 1);
	for (size_t i = 0; i < len; i++)
		base[off + i] = (unsigned char)rnd();
	printf("bytes %zu..%zu\n", off, off + len - 1);
}

static int cmd_random(int argc, char **argv)
{
	long count = 10, start_us = 0, gap_us = 2000, ms = 60000;
	const char *target = "mixed";
	int64_t end;

	rng = (uint64_t)now_ns() ^ (uint64_t)getpid() << 32;
	for (int i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--seed"))
			rng = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--count"))
			count = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--start-us"))
			start_us = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--max-gap-us"))
			gap_us = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--target"))
			target = argv[i + 1];
		else if (!strcmp(argv[i], "--ms"))
			ms = atol(argv[i + 1]);
		else
			die("unknown option %s", argv[i]);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	end = now_ns() + (int64_t)ms * 1000000;
	sleep_us(start_us);
	for (long n = 0; n < count && now_ns() < end; n++) {
		unsigned pick = (unsigned)below(100);

		sleep_us((long)below((uint64_t)gap_us + 1));
		if (!strcmp(target, "data") || (!strcmp(target, "mixed") && pick < 35))
			write_bytes(NSHM_DATA_OFF, size);
		else if (!strcmp(target, "header") || (!strcmp(target, "mixed") && pick < 60))
			write_bytes(0, NSHM_DATA_OFF);
		else
			write_field();
	}
	return 0;
}

/* set REGION FIELD VALUE: one field of the table above, by name. */
static int cmd_set(int argc, char **argv)
{
	if (argc < 5)
		die("%s", "usage: scribble set REGION FIELD VALUE");
	for (size_t i = 0; i < NFIELDS; i++) {
		if (strcmp(fields[i].name, argv[3]) == 0) {
			store(fields[i].off, fields[i].width, strtoull(argv[4], NULL, 0));
			return 0;
		}
	}
	die("unknown field %s", argv[3]);
	return 2;
}

/* ---- wait ---- */

static uint64_t rd64(_Atomic uint64_t *p) { return atomic_load(p); }
static uint32_t rd32(_Atomic uint32_t *p) { return atomic_load(p); }

static int holds(const char *cond)
{
	struct tx_line *t = TX(base);
	struct rx_line *x = RX(base);
	unsigned long long v = 0;
	const char *eq = strpbrk(cond, "=>");

	if (eq)
		v = strtoull(strrchr(cond, '=') ? strrchr(cond, '=') + 1 : eq + 1, NULL, 0);
	if (!strncmp(cond, "tx-state=", 9))
		return rd32(&t->state) == v;
	if (!strncmp(cond, "rx-state=", 9))
		return rd32(&x->state) == v;
	if (!strncmp(cond, "produced>=", 10))
		return rd64(&t->produced) >= v;
	if (!strncmp(cond, "consumed>=", 10))
		return rd64(&x->consumed) >= v;
	/* Claimed means the claim is whole: the owner's token is in the line
	 * and in its liveness record (written just after the CAS). A peer
	 * killed between the two declared no heartbeat, and is judged by the
	 * peer timeout, not its lapse: a test that kills at "claimed" means
	 * the whole claim. */
	if (!strcmp(cond, "tx-claimed"))
		return rd64(&t->head.owner) != 0 &&
		       rd64(&t->live.owner) == rd64(&t->head.owner);
	if (!strcmp(cond, "rx-claimed"))
		return rd64(&x->head.owner) != 0 &&
		       rd64(&x->live.owner) == rd64(&x->head.owner);
	/* Owned: a token in the line, whoever wrote it (a hostile peer
	 * writes no liveness record). */
	if (!strcmp(cond, "tx-owned"))
		return rd64(&t->head.owner) != 0;
	if (!strcmp(cond, "rx-owned"))
		return rd64(&x->head.owner) != 0;
	if (!strcmp(cond, "full")) {
		uint64_t p = rd64(&t->produced), c = rd64(&x->consumed);
		uint32_t n = rd32(&t->nslots);

		return rd32(&x->state) == RX_ACCEPT && n > 0 && p >= c && p - c == n;
	}
	die("unknown condition %s", cond);
	return 0;
}

static int cmd_wait(int argc, char **argv)
{
	long timeout_ms = 30000, pid = 0;
	int sig = 0;
	int64_t end;

	if (argc < 4)
		die("%s", "usage: scribble wait REGION COND [--timeout-ms N] [--signal SIG --pid PID]");
	for (int i = 4; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--timeout-ms"))
			timeout_ms = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--pid"))
			pid = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--signal")) {
			const char *s = argv[i + 1];

			sig = !strcmp(s, "STOP") ? SIGSTOP : !strcmp(s, "KILL") ? SIGKILL
			    : !strcmp(s, "INT") ? SIGINT : !strcmp(s, "TERM") ? SIGTERM
			    : atoi(s);
			if (sig <= 0)
				die("unknown signal %s", s);
		} else
			die("unknown option %s", argv[i]);
	}
	end = now_ns() + (int64_t)timeout_ms * 1000000;
	while (!holds(argv[3])) {
		if (now_ns() > end) {
			fprintf(stderr, "scribble: timed out waiting for %s\n", argv[3]);
			return 1;
		}
		sleep_us(20);
	}
	if (sig && pid > 0 && kill((pid_t)pid, sig) != 0) {
		perror("scribble: kill");
		return 1;
	}
	return 0;
}

/* ---- corrupt-published, corrupt-filling ---- */

static void flip(uint64_t k, uint32_t n, uint32_t chunk, const char *what)
{
	size_t off = NSHM_DATA_OFF + (size_t)(k % n) * chunk;

	if (off >= size)
		die("%s", "the sender's layout does not fit the region");
	base[off] ^= 0x20;
	printf("flipped a bit of %s chunk %llu (slot %llu, region offset %zu)\n", what,
	       (unsigned long long)k, (unsigned long long)(k % n), off);
}

/* The newest published chunk the receiver has not started on: with the
 * receiver stopped, chunk `consumed` may be half copied, so a later one is
 * taken when there is one. */
static int cmd_corrupt_published(void)
{
	struct tx_line *t = TX(base);
	struct rx_line *x = RX(base);
	uint64_t c = rd64(&x->consumed), p = rd64(&t->produced);
	uint32_t n = rd32(&t->nslots), chunk = rd32(&t->chunk);

	if (n == 0 || n > NSHM_MAX_SLOTS || p <= c) {
		fprintf(stderr, "scribble: no published chunk waits (produced %llu, consumed %llu)\n",
			(unsigned long long)p, (unsigned long long)c);
		return 1;
	}
	flip(p - 1, n, chunk, "published");
	return 0;
}

/* The chunk the sender is filling and has not published yet (produced). */
static int cmd_corrupt_filling(void)
{
	struct tx_line *t = TX(base);
	uint32_t n = rd32(&t->nslots), chunk = rd32(&t->chunk);

	if (n == 0 || n > NSHM_MAX_SLOTS || rd32(&t->state) != TX_OFFER) {
		fprintf(stderr, "scribble: no stream is being sent\n");
		return 1;
	}
	flip(rd64(&t->produced), n, chunk, "unpublished");
	return 0;
}

/* ---- forge ---- */

/* A claimed line left behind by a process of another machine (another
 * boot id) that died: its heartbeat never moves again. */
static int cmd_forge(int argc, char **argv)
{
	struct line_head *h;
	uint32_t state = 1;

	if (argc < 4 || (strcmp(argv[3], "tx") && strcmp(argv[3], "rx")))
		die("%s", "usage: scribble forge REGION tx|rx [--state N]");
	for (int i = 4; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--state"))
			state = (uint32_t)atoi(argv[i + 1]);
		else
			die("unknown option %s", argv[i]);
	}
	h = argv[3][0] == 't' ? &TX(base)->head : &RX(base)->head;
	atomic_store(&h->owner, 0x5ca1ab1e);
	atomic_store(&h->heartbeat, 5);
	atomic_store(&h->id.pid, 4242);
	atomic_store(&h->id.pidns, 0xabc);
	atomic_store(&h->id.boot[0], 0x1111);
	atomic_store(&h->id.boot[1], 0x2222);
	atomic_store(&h->version, NSHM_VERSION);
	atomic_store(&h->magic, NSHM_MAGIC);
	if (argv[3][0] == 'r') {
		atomic_store(&RX(base)->ready, 777);
		atomic_store(&RX(base)->state, state);
	} else {
		atomic_store(&TX(base)->session, 888);
		atomic_store(&TX(base)->ready_echo, 999);
		atomic_store(&TX(base)->nslots, 1);
		atomic_store(&TX(base)->chunk, 4096);
		atomic_store(&TX(base)->state, state);
	}
	return 0;
}

/* ---- cat ---- */

static int cmd_cat(int argc, char **argv)
{
	long piece = 65536, gap_us = 1000;
	char *buf;
	ssize_t n;
	int fd;

	for (int i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--piece"))
			piece = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--gap-us"))
			gap_us = atol(argv[i + 1]);
		else
			die("unknown option %s", argv[i]);
	}
	fd = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || piece <= 0 || !(buf = malloc((size_t)piece)))
		die("cannot read %s", argv[2]);
	signal(SIGPIPE, SIG_DFL);
	while ((n = read(fd, buf, (size_t)piece)) > 0) {
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(STDOUT_FILENO, buf + done, (size_t)(n - done));

			if (w < 0)
				return 1;
			done += w;
		}
		sleep_us(gap_us);
	}
	return n < 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: scribble random|wait|set|corrupt-published|corrupt-filling|forge REGION ... | cat FILE ...\n");
		return 2;
	}
	if (!strcmp(argv[1], "cat"))
		return cmd_cat(argc, argv);
	map_region(argv[2]);
	if (!strcmp(argv[1], "random"))
		return cmd_random(argc, argv);
	if (!strcmp(argv[1], "wait"))
		return cmd_wait(argc, argv);
	if (!strcmp(argv[1], "corrupt-published"))
		return cmd_corrupt_published();
	if (!strcmp(argv[1], "set"))
		return cmd_set(argc, argv);
	if (!strcmp(argv[1], "forge"))
		return cmd_forge(argc, argv);
	if (!strcmp(argv[1], "corrupt-filling"))
		return cmd_corrupt_filling();
	die("unknown command %s", argv[1]);
	return 2;
}
