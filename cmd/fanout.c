/* SPDX-License-Identifier: BSD-2-Clause */
/* One read for many regions (nshm-put -T A -T B ...).
 *
 * The main thread reads the source once, as a sender without a region
 * (tx_open_sink): a file through the library's mapped windows, standard
 * input in pieces, a set of files as one pax stream made once. What it
 * reads goes into a ring of blocks. One thread per target offers the
 * stream to its region and copies the blocks into its slots with
 * nshm_tx_write: its own CRC-32s, its own receiver's checks and verdict.
 *
 * A block is reused once every target still sending has taken it, so the
 * slowest target sets the pace, within a bound (the lag rule): a target
 * that keeps the others waiting (one has sent every block read, the ring
 * is full and that target holds its oldest block) for longer than the
 * peer timeout in all is failed ("fell behind") and the others go on. Memory stays the ring's; a dead
 * or silent receiver fails its target within the peer timeout as with
 * one target; none of this slows the others past that. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fanout.h"
#include "util/util.h"
#include "proto/proto.h"   /* tx_open_sink: see lib/README.md */

enum tstate { T_OFFER, T_SENDING, T_DONE, T_FAILED };

struct target {
	const struct fanout_target *spec;
	struct fanout *f;
	struct nshm_region *r;
	struct nshm_meta meta;
	struct nshm_params params;     /* cancel: its thread's stop_here */
	pthread_t thread;
	bool started;
	/* Under f->lock: */
	bool stop;                     /* the main thread's word: stop now */
	enum tstate state;
	uint64_t next;                 /* the next block to send */
	bool copying;                  /* in nshm_tx_write from block next */
	int64_t held_ns;               /* the reader waited on it this long */
	int stop_rc;                   /* why the main thread stopped it */
	char stop_why[NSHM_WHY_LEN];
	/* Its thread's, read once the thread is joined: */
	int rc;
	uint64_t bytes;
	uint32_t crc;
	double secs;
	char why[NSHM_WHY_LEN];
	char sha256[65];
};

struct fanout {
	struct cli *c;
	pthread_mutex_t lock;
	pthread_cond_t more;    /* to the targets: a block, the end, or a stop */
	pthread_cond_t room;    /* to the reader: a block freed, an answer, an end */
	unsigned char *buf;     /* nblocks of FANOUT_BLOCK */
	size_t *lens;
	unsigned nblocks;
	uint64_t produced;      /* blocks published */
	size_t fill;            /* bytes in block produced, not yet published */
	bool eof;
	int64_t lag_ns;         /* the lag rule's bound: the peer timeout */
	int64_t start_ns;       /* the stream began */
	uint64_t total;         /* for progress: the offered size, or 0 */
	struct target *t;
	int n;
};

static pthread_mutex_t say_lock = PTHREAD_MUTEX_INITIALIZER;

/* A target's thread is told to stop by STOP_SIGNAL, whose handler sets the
 * flag the library's waits read (params.cancel) in that thread itself: no
 * flag written by one thread and read by another without a lock, and a
 * wait asleep in the kernel wakes at once. */
#define STOP_SIGNAL SIGUSR1
static _Thread_local volatile sig_atomic_t stop_here;

static void on_stop(int sig)
{
	(void)sig;
	stop_here = 1;
}

/* Messages from the targets' threads: one whole line each, escaped, never
 * through cli_err (its last-message buffer is the main thread's). */
static void say(const struct cli *c, const char *target, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(const struct cli *c, const char *target, const char *fmt, ...)
{
	char msg[1024], esc[2048], tesc[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	nshm_escape(esc, sizeof(esc), msg, NSHM_ESCAPE_MESSAGE);
	nshm_escape(tesc, sizeof(tesc), target, 0);
	pthread_mutex_lock(&say_lock);
	fprintf(stderr, "%s: %s: %s\n", c->prog, tesc, esc);
	pthread_mutex_unlock(&say_lock);
}

static void target_waiting(void *arg, const char *what)
{
	struct target *t = arg;
	struct cli *c = t->f->c;

	if (c->tty && !c->quiet)
		say(c, t->spec->arg, "%s", what);
}

static void wait_ms(pthread_cond_t *cv, pthread_mutex_t *m, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += (long)ms * 1000000;
	ts.tv_sec += ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	pthread_cond_timedwait(cv, m, &ts);
}

/* Under f->lock: tell t's thread to stop, with the reason it will give. */
static void stop_target(struct fanout *f, struct target *t, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void stop_target(struct fanout *f, struct target *t, int rc, const char *fmt, ...)
{
	va_list ap;

	if (t->stop || t->state == T_DONE || t->state == T_FAILED)
		return;
	va_start(ap, fmt);
	vsnprintf(t->stop_why, sizeof(t->stop_why), fmt, ap);
	va_end(ap);
	t->stop_rc = rc;
	t->stop = true;
	pthread_cond_broadcast(&f->more);
	/* Alive until it is joined, after every target is done or failed. */
	if (t->started)
		pthread_kill(t->thread, STOP_SIGNAL);
}

static void stop_all(struct fanout *f, int rc, const char *why)
{
	for (int i = 0; i < f->n; i++)
		stop_target(f, &f->t[i], rc, "%s", why);
}

/* Under f->lock. A target still wants the stream (one that has not
 * answered yet wants it from the start): */
static bool live(const struct target *t)
{
	return (t->state == T_OFFER || t->state == T_SENDING) && !t->stop;
}

/* ... and holds its block next, a stopped one until its copy is done. */
static bool holds(const struct target *t)
{
	return live(t) || (t->state == T_SENDING && t->copying);
}

static bool any_in(const struct fanout *f, enum tstate state)
{
	for (int i = 0; i < f->n; i++)
		if (f->t[i].state == state)
			return true;
	return false;
}

static int still_wanted(struct fanout *f)
{
	if (cli_cancel) {
		stop_all(f, -ECANCELED, "interrupted");
		return -ECANCELED;
	}
	for (int i = 0; i < f->n; i++)
		if (live(&f->t[i]))
			return 0;
	return -EPIPE;
}

/* Under f->lock: a target sending has taken every block read and waits
 * for the next, which the full buffer keeps from being read. */
static bool someone_idle(const struct fanout *f)
{
	for (int i = 0; i < f->n; i++)
		if (live(&f->t[i]) && f->t[i].state == T_SENDING && f->t[i].next == f->produced)
			return true;
	return false;
}

/* The lag rule: the reader waited dt for the targets at the oldest block
 * while another target had nothing left to send: those at the oldest
 * kept it waiting. Targets that are all slower than the reader (the
 * usual case: receivers write, the reader reads) keep the buffer full
 * with nobody idle, and nobody is charged. */
static void charge(struct fanout *f, uint64_t oldest, int64_t dt)
{
	if (!someone_idle(f))
		return;
	for (int i = 0; i < f->n; i++) {
		struct target *t = &f->t[i];

		if (!live(t) || t->next != oldest)
			continue;
		t->held_ns += dt;
		if (t->held_ns <= f->lag_ns)
			continue;
		if (t->state == T_OFFER)
			stop_target(f, t, -NSHM_EPEERGONE, "no answer to the offer while the "
				    "other targets waited %.1f s (more than the peer timeout)",
				    (double)t->held_ns / 1e9);
		else
			stop_target(f, t, -NSHM_EPEERGONE, "fell behind: it kept the other "
				    "targets waiting for %.1f s in all (more than the peer "
				    "timeout), %llu MiB behind the source",
				    (double)t->held_ns / 1e9,
				    (unsigned long long)((f->produced - t->next) *
							 (FANOUT_BLOCK >> 20)));
	}
}

/* Under f->lock: block produced may be filled once no target holds it. */
static int wait_room(struct fanout *f)
{
	int64_t before = cli_now_ns();

	for (;;) {
		uint64_t oldest = f->produced;
		int64_t now;
		int rc = still_wanted(f);

		if (rc < 0)
			return rc;
		for (int i = 0; i < f->n; i++)
			if (holds(&f->t[i]) && f->t[i].next < oldest)
				oldest = f->t[i].next;
		if (f->produced - oldest < f->nblocks)
			return 0;
		wait_ms(&f->room, &f->lock, 50);
		now = cli_now_ns();
		charge(f, oldest, now - before);
		before = now;
	}
}

/* Under f->lock. */
static void publish(struct fanout *f)
{
	f->lens[f->produced % f->nblocks] = f->fill;
	f->produced++;
	f->fill = 0;
	pthread_cond_broadcast(&f->more);
}

/* Under f->lock: the slowest target still sending, in bytes. */
static uint64_t slowest(const struct fanout *f)
{
	uint64_t min = f->produced;

	for (int i = 0; i < f->n; i++)
		if (live(&f->t[i]) && f->t[i].state == T_SENDING && f->t[i].next < min)
			min = f->t[i].next;
	return min * FANOUT_BLOCK;
}

/* The reader's sink (tx_open_sink): what it reads, into the ring. */
static int sink(void *arg, const void *buf, size_t len)
{
	struct fanout *f = arg;
	const unsigned char *p = buf;
	uint64_t done;
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	if (len == 0)
		rc = still_wanted(f);
	while (len > 0 && rc == 0) {
		size_t n = FANOUT_BLOCK - f->fill;
		unsigned char *at = f->buf + (size_t)(f->produced % f->nblocks) * FANOUT_BLOCK;

		if (f->fill == 0 && (rc = wait_room(f)) < 0)
			break;
		n = n < len ? n : len;
		/* Block produced is the reader's alone until published. */
		pthread_mutex_unlock(&f->lock);
		memcpy(at + f->fill, p, n);
		pthread_mutex_lock(&f->lock);
		f->fill += n;
		p += n;
		len -= n;
		if (f->fill == FANOUT_BLOCK)
			publish(f);
	}
	done = slowest(f);
	pthread_mutex_unlock(&f->lock);
	if (f->c->params.progress) {
		pthread_mutex_lock(&say_lock);
		f->c->params.progress(f->c, done < f->total || !f->total ? done : f->total,
				      f->total);
		pthread_mutex_unlock(&say_lock);
	}
	return rc;
}

/* A target's thread, once its receiver accepted: block after block into
 * its slots, until the end of the stream or a stop. */
static int take_blocks(struct target *t, struct nshm_tx *tx)
{
	struct fanout *f = t->f;

	for (;;) {
		const unsigned char *p;
		size_t len;
		int rc;

		pthread_mutex_lock(&f->lock);
		while (!t->stop && t->next == f->produced && !f->eof)
			pthread_cond_wait(&f->more, &f->lock);
		if (t->stop || t->next == f->produced) {
			rc = t->stop ? -ECANCELED : 0;
			pthread_mutex_unlock(&f->lock);
			return rc;
		}
		p = f->buf + (size_t)(t->next % f->nblocks) * FANOUT_BLOCK;
		len = f->lens[t->next % f->nblocks];
		t->copying = true;
		pthread_mutex_unlock(&f->lock);
		rc = nshm_tx_write(tx, p, len);
		pthread_mutex_lock(&f->lock);
		t->copying = false;
		t->next++;
		pthread_cond_signal(&f->room);
		pthread_mutex_unlock(&f->lock);
		if (rc < 0)
			return rc;
	}
}

static void settle(struct target *t, struct nshm_tx *tx, int rc)
{
	struct fanout *f = t->f;
	uint32_t reason = NSHM_R_IO;

	pthread_mutex_lock(&f->lock);
	if (t->stop) {
		/* The main thread's reason, not the library's "interrupted". */
		rc = t->stop_rc;
		snprintf(t->why, sizeof(t->why), "%s", t->stop_why);
		reason = rc == -NSHM_EPEERGONE ? NSHM_R_TIMEOUT : nshm_stop_reason(rc);
	} else if (rc < 0) {
		snprintf(t->why, sizeof(t->why), "%s",
			 tx && *nshm_tx_why(tx) ? nshm_tx_why(tx) : nshm_strerror(rc));
	}
	t->secs = (cli_now_ns() - f->start_ns) / 1e9;
	pthread_mutex_unlock(&f->lock);
	t->rc = rc;
	if (tx && rc == 0) {
		unsigned char d[32];

		t->bytes = nshm_tx_bytes(tx);
		t->crc = nshm_tx_crc(tx);
		if (f->c->digest && nshm_tx_digest(tx, d) == 0)
			for (int i = 0; i < 32; i++)
				snprintf(t->sha256 + 2 * i, 3, "%02x", d[i]);
	}
	nshm_tx_close(tx, reason);
}

static void *target_main(void *arg)
{
	struct target *t = arg;
	struct fanout *f = t->f;
	struct nshm_tx *tx = NULL;
	int rc;

	t->params.cancel = &stop_here;
	rc = nshm_tx_begin(t->r, &t->meta, &t->params, &tx);

	pthread_mutex_lock(&f->lock);
	t->state = rc == 0 ? T_SENDING : t->state;
	pthread_cond_signal(&f->room);
	pthread_mutex_unlock(&f->lock);
	if (rc == 0)
		rc = take_blocks(t, tx);
	if (rc == 0)
		rc = nshm_tx_end(tx);
	settle(t, tx, rc);
	pthread_mutex_lock(&f->lock);
	t->state = t->rc == 0 ? T_DONE : T_FAILED;
	pthread_cond_signal(&f->room);
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* Each region opened, none twice: a region carries one transfer at a
 * time, so the same one under two names is a usage error. */
static int open_targets(struct fanout *f)
{
	struct stat *st = calloc((size_t)f->n, sizeof(*st));
	int rc = 0;

	if (!st)
		return -ENOMEM;
	for (int i = 0; i < f->n; i++) {
		struct target *t = &f->t[i];
		char msg[NSHM_WHY_LEN];

		t->rc = nshm_open(&t->r, t->spec->endpoint, f->c->map_flags, msg, sizeof(msg));
		if (t->rc < 0) {
			snprintf(t->why, sizeof(t->why), "%s", msg);
			t->state = T_FAILED;
			continue;
		}
		if (stat(nshm_region_path(t->r), &st[i]) != 0)
			continue;
		for (int j = 0; j < i; j++)
			if (f->t[j].r && st[j].st_ino == st[i].st_ino &&
			    st[j].st_dev == st[i].st_dev) {
				cli_err(f->c, "%s and %s are the same region (%s): name each "
					"target once", f->t[j].spec->arg, t->spec->arg,
					nshm_region_path(t->r));
				rc = EXIT_USAGE;
			}
	}
	free(st);
	return rc;
}

/* Signals go to the main thread, which tells the targets (their stop). */
static void start_targets(struct fanout *f)
{
	struct sigaction sa = { .sa_handler = on_stop };   /* no SA_RESTART */
	sigset_t async, old;
	int rc;

	sigemptyset(&sa.sa_mask);
	sigaction(STOP_SIGNAL, &sa, NULL);

	/* Only these: a fault (SIGBUS) must stay with the thread that made it. */
	sigemptyset(&async);
	sigaddset(&async, SIGINT);
	sigaddset(&async, SIGTERM);
	sigaddset(&async, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &async, &old);
	for (int i = 0; i < f->n; i++) {
		struct target *t = &f->t[i];

		if (t->state == T_FAILED)
			continue;
		/* Under the lock: stop_target reads started and state. */
		pthread_mutex_lock(&f->lock);
		rc = -pthread_create(&t->thread, NULL, target_main, t);
		t->started = rc == 0;
		if (rc < 0) {
			t->rc = rc;
			snprintf(t->why, sizeof(t->why), "cannot start a thread: %s", strerror(-rc));
			t->state = T_FAILED;
		}
		pthread_mutex_unlock(&f->lock);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Until a target sends or none waits for an answer (first), or until
 * every target is done or failed; Ctrl-C stops them. */
static void await_targets(struct fanout *f, bool first)
{
	pthread_mutex_lock(&f->lock);
	for (;;) {
		if (first ? any_in(f, T_SENDING) || !any_in(f, T_OFFER)
			  : !any_in(f, T_SENDING) && !any_in(f, T_OFFER))
			break;
		if (cli_cancel)
			stop_all(f, -ECANCELED, "interrupted");
		wait_ms(&f->room, &f->lock, 50);
	}
	pthread_mutex_unlock(&f->lock);
}

/* The stream, read once: a set of files, or one file or standard input. */
static int read_source(struct fanout *f, const struct send_what *w, int fd,
		       const struct nshm_meta *meta, struct nshm_tree_stats *sent)
{
	struct nshm_params p = f->c->params;
	struct nshm_tx *src = NULL;
	int rc;

	p.progress = NULL;     /* the sink draws it: the slowest target's */
	p.waiting = NULL;
	p.flags &= ~NSHM_P_DIGEST;
	memset(sent, 0, sizeof(*sent));
	rc = tx_open_sink(meta, &p, sink, f, &src);
	if (rc == 0)
		rc = meta->archive ? nshm_tx_tree(src, w->files, w->nfiles, cli_on_entry, f->c, sent)
				   : nshm_tx_from_fd(src, fd);
	pthread_mutex_lock(&f->lock);
	if (f->fill > 0)
		publish(f);
	f->eof = true;
	pthread_cond_broadcast(&f->more);
	if (rc < 0 && rc != -EPIPE) {
		/* The source failed (or Ctrl-C): nobody may verify a part. */
		const char *why = src && *nshm_tx_why(src) ? nshm_tx_why(src) : nshm_strerror(rc);

		for (int i = 0; i < f->n; i++)
			stop_target(f, &f->t[i], rc == -ECANCELED ? rc : -EIO,
				    "%s%s", rc == -ECANCELED ? "" : "the source failed: ", why);
	}
	pthread_mutex_unlock(&f->lock);
	nshm_tx_close(src, NSHM_R_IO);
	return rc;
}

static void report(struct fanout *f, const struct nshm_meta *meta,
		   const struct nshm_tree_stats *sent)
{
	struct cli *c = f->c;
	char name[1024];

	nshm_escape(name, sizeof(name), meta->name, 0);
	for (int i = 0; i < f->n; i++) {
		struct target *t = &f->t[i];
		double mbps = t->secs > 0 ? t->bytes / t->secs / 1e6 : 0;

		if (t->rc == 0 && !c->quiet)
			say(c, t->spec->arg, "%s: %llu bytes in %.2f s (%.1f MB/s), crc32 %08x, "
			    "verified", name, (unsigned long long)t->bytes, t->secs, mbps, t->crc);
		if (t->rc < 0)
			say(c, t->spec->arg, "failed (exit %d): %s", cli_exit_status(t->rc), t->why);
		if (t->rc == 0 && t->sha256[0])
			fprintf(stderr, "%s  %s\n", t->sha256, name);
		if (!c->json)
			continue;
		printf("{\"event\":\"%s\",\"target\":", t->rc == 0 ? "done" : "failed");
		json_string(stdout, t->spec->arg);
		printf(",\"name\":");
		json_string(stdout, meta->name);
		if (t->rc == 0) {
			printf(",\"bytes\":%llu,\"seconds\":%.6f,\"mbps\":%.1f,\"crc32\":\"%08x\","
			       "\"crc32_impl\":\"%s\"", (unsigned long long)t->bytes, t->secs,
			       mbps, t->crc, nshm_crc32_impl());
			if (meta->archive)
				printf(",\"entries\":%llu,\"file_bytes\":%llu",
				       (unsigned long long)sent->entries,
				       (unsigned long long)sent->bytes);
			if (t->sha256[0])
				printf(",\"sha256\":\"%s\"", t->sha256);
		} else {
			printf(",\"status\":%d,\"error\":", cli_exit_status(t->rc));
			json_string(stdout, nshm_strerror(t->rc));
			printf(",\"message\":");
			json_string(stdout, t->why);
		}
		printf("}\n");
	}
	fflush(stdout);
}

/* 0 when every target got it; the one status of them all when every
 * target failed alike; else EXIT_PARTIAL. */
static int exit_status(const struct fanout *f)
{
	int ok = 0, first = -1;
	bool alike = true;

	for (int i = 0; i < f->n; i++) {
		int s = cli_exit_status(f->t[i].rc);

		if (s == EXIT_OK) {
			ok++;
			continue;
		}
		if (first >= 0 && s != first)
			alike = false;
		if (first < 0)
			first = s;
	}
	if (ok == f->n)
		return EXIT_OK;
	return ok == 0 && alike ? first : EXIT_PARTIAL;
}

/* The offer every target gets, and the source opened (fd; -1 for a set). */
static int prepare(struct cli *c, const struct send_what *w, struct nshm_meta *meta, int *fd)
{
	const char *file = w->files[0];
	int rc;

	*fd = -1;
	if (send_wants_archive(w)) {
		rc = send_tree_meta(c, w, meta);
		return rc < 0 ? cli_exit_status(rc) : 0;
	}
	*fd = strcmp(file, "-") == 0 ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		cli_err(c, "%s: %s", file, strerror(errno));
		return EXIT_FAILED;
	}
	rc = send_describe(w, file, *fd, meta);
	if (rc < 0) {
		cli_err(c, "%s: %s", file, strerror(-rc));
		return EXIT_FAILED;
	}
	return 0;
}

static int setup(struct fanout *f, const struct nshm_meta *meta, size_t buffer)
{
	f->nblocks = (unsigned)((buffer + FANOUT_BLOCK - 1) / FANOUT_BLOCK);
	f->buf = malloc((size_t)f->nblocks * FANOUT_BLOCK);
	f->lens = calloc(f->nblocks, sizeof(*f->lens));
	f->lag_ns = peer_timeout_ns(&f->c->params);
	f->total = meta->size_known ? meta->size : 0;
	if (!f->buf || !f->lens) {
		cli_err(f->c, "out of memory for a buffer of %zu bytes", buffer);
		return EXIT_FAILED;
	}
	for (int i = 0; i < f->n; i++) {
		struct target *t = &f->t[i];

		t->f = f;
		t->meta = *meta;
		if (t->spec->subdir) {
			t->meta.request = NSHM_REQ_PUSH_TO;
			t->meta.path = t->spec->subdir;
		}
		t->params = f->c->params;
		t->params.progress = NULL;
		t->params.waiting = target_waiting;
		t->params.arg = t;
	}
	return 0;
}

/* The transfer itself, once every region is open: the exit status. */
static int run(struct fanout *f, const struct send_what *w, int fd,
	       const struct nshm_meta *meta)
{
	struct nshm_tree_stats sent = { 0 };
	int rc;

	cli_set_label(f->c, meta->name);
	start_targets(f);
	await_targets(f, true);
	pthread_mutex_lock(&f->lock);
	f->start_ns = cli_now_ns();
	f->c->start_ns = f->start_ns;
	rc = still_wanted(f);
	pthread_mutex_unlock(&f->lock);
	if (rc == 0)
		read_source(f, w, fd, meta, &sent);
	await_targets(f, false);
	cli_progress_done(f->c);
	for (int i = 0; i < f->n; i++)
		if (f->t[i].started)
			pthread_join(f->t[i].thread, NULL);
	report(f, meta, &sent);
	return exit_status(f);
}

int fanout_send(struct cli *c, const struct send_what *w,
		const struct fanout_target *targets, int n, size_t buffer)
{
	struct fanout f = { .c = c, .n = n };
	struct nshm_meta meta;
	pthread_condattr_t attr;
	int fd = -1, rc;

	pthread_mutex_init(&f.lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&f.more, &attr);
	pthread_cond_init(&f.room, &attr);
	pthread_condattr_destroy(&attr);
	f.t = calloc((size_t)n, sizeof(*f.t));
	rc = f.t ? prepare(c, w, &meta, &fd) : EXIT_FAILED;
	for (int i = 0; i < n && f.t; i++)
		f.t[i].spec = &targets[i];
	if (rc == 0)
		rc = setup(&f, &meta, buffer);
	if (rc == 0)
		rc = open_targets(&f);
	if (rc == 0)
		rc = run(&f, w, fd, &meta);
	for (int i = 0; i < n && f.t; i++)
		nshm_close(f.t[i].r);
	if (fd > STDIN_FILENO)
		close(fd);
	free(f.t);
	free(f.buf);
	free(f.lens);
	pthread_cond_destroy(&f.more);
	pthread_cond_destroy(&f.room);
	pthread_mutex_destroy(&f.lock);
	return rc;
}
