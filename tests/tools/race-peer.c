/* SPDX-License-Identifier: BSD-2-Clause */
/* The attacks of issue 20 (findings 1 and 2), many tries in one process so
 * that a thousand of them cost seconds, not minutes. The resident under
 * test is a real nshm-get --serve; this is its peer, and the swapper.
 *
 *   race-peer swap A B        exchange A and B (a directory and a symlink)
 *                             with renameat2(RENAME_EXCHANGE) until killed
 *   race-peer sock PATH       make a UNIX socket at PATH (and leave it)
 *   race-peer push REGION SUBDIR N
 *                             N one-byte pushes "pN" to SUBDIR; prints
 *                             "ok K refused R failed F"
 *   race-peer push-tree REGION SUBDIR N DIR
 *                             the same with DIR sent as a set of files
 *   race-peer tree-rx REGION N FILE DEST
 *                             both sides in one process: a thread pushes
 *                             the pax archive FILE as it is N times (a
 *                             test chooses every entry: one with no entry
 *                             for a directory it passes through, say), and the
 *                             library's tree receiver (nshm_rx_tree, what
 *                             nshm-get runs) takes each into DEST with
 *                             --force; prints "tries K ok K failed F" and
 *                             the receiver's reasons on stderr. (A
 *                             resident pauses 100 ms and more after a
 *                             failed transfer, and half of the tries of a
 *                             race fail: a thousand would take minutes.)
 *   race-peer pull REGION PATH N MARK
 *                             N pulls of PATH, each reply read into memory;
 *                             prints "ok K refused R failed F escaped E",
 *                             E the replies that contain MARK
 * The tries stop after 90 s ("tries K" says how many were made); exits 0
 * when they ended (whatever their outcome), 1 if the region would not open. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "nshm.h"

static int sock_at(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		perror(path);
		return 1;
	}
	return 0;
}

static int swap(const char *a, const char *b)
{
	for (;;)
		if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0) {
			perror("renameat2");
			return 1;
		}
}

static struct nshm_params params(void)
{
	struct nshm_params p = { 0 };

	p.flags = NSHM_P_WAIT_BUSY;
	p.timeout_ms = 10000;
	p.peer_timeout_ms = 10000;
	return p;
}

/* One push of one byte, or of the tree dir: 1 done, 0 refused, -1 failed
 * otherwise. */
static int push_one(struct nshm_region *r, const char *sub, int i, char *dir)
{
	struct nshm_meta m = { .size = 1, .size_known = 1, .mode = 0644,
			       .request = NSHM_REQ_PUSH_TO, .path = sub, .archive = !!dir };
	struct nshm_params p = params();
	struct nshm_tree_stats st;
	struct nshm_tx *tx = NULL;
	int rc;

	snprintf(m.name, sizeof(m.name), "p%d", i);
	if (dir)
		m.size_known = 0;
	rc = nshm_tx_begin(r, &m, &p, &tx);
	if (rc == 0)
		rc = dir ? nshm_tx_tree(tx, &dir, 1, NULL, NULL, &st) : nshm_tx_write(tx, "x", 1);
	if (rc == 0)
		rc = nshm_tx_end(tx);
	nshm_tx_close(tx, NSHM_R_IO);
	return rc == 0 ? 1 : rc == -NSHM_EREFUSED ? 0 : -1;
}

/* One push of the archive bytes (a, len) as they are: as push_one. */
static int push_archive(struct nshm_region *r, int i, const char *a, size_t len)
{
	struct nshm_meta m = { .size = len, .size_known = 1, .mode = 0644, .archive = 1 };
	struct nshm_params p = params();
	struct nshm_tx *tx = NULL;
	int rc;

	snprintf(m.name, sizeof(m.name), "a%d", i);
	rc = nshm_tx_begin(r, &m, &p, &tx);
	if (rc == 0)
		rc = nshm_tx_write(tx, a, len);
	if (rc == 0)
		rc = nshm_tx_end(tx);
	nshm_tx_close(tx, NSHM_R_IO);
	return rc == 0 ? 1 : rc == -NSHM_EREFUSED ? 0 : -1;
}

/* FILE whole in memory (a test's small archive): NULL if it cannot be. */
static char *slurp(const char *path, size_t *len)
{
	static char buf[1 << 20];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));

	if (fd >= 0)
		close(fd);
	if (n <= 0 || (size_t)n == sizeof(buf)) {
		fprintf(stderr, "race-peer: %s: cannot read it whole\n", path);
		return NULL;
	}
	*len = (size_t)n;
	return buf;
}

struct send_loop {
	struct nshm_region *r;
	long n;
	const char *a;
	size_t len;
};

static void *send_loop(void *arg)
{
	struct send_loop *s = arg;

	for (long i = 0; i < s->n; i++)
		push_archive(s->r, (int)i, s->a, s->len);
	return NULL;
}

/* One tree received into dest: 1 done, -1 failed (why on stderr). */
static int receive_tree(struct nshm_region *r, const char *dest)
{
	struct nshm_params p = params();
	struct nshm_tree_stats st;
	struct nshm_rx *rx = NULL;
	struct nshm_meta meta;
	int rc = nshm_rx_begin(r, &p, &rx, &meta);

	if (rc == 0) {
		nshm_rx_accept(rx);
		rc = nshm_rx_tree(rx, dest, NSHM_EXTRACT_FORCE, NULL, NULL, &st);
		nshm_rx_complete(rx, rc == 0, rc == 0 ? NSHM_R_NONE
				 : nshm_rx_reason(rx) ? nshm_rx_reason(rx) : NSHM_R_IO);
	}
	if (rc < 0)
		fprintf(stderr, "race-peer: %s\n", rx ? nshm_rx_why(rx) : nshm_strerror(rc));
	nshm_rx_close(rx, NSHM_R_IO);
	return rc == 0 ? 1 : -1;
}

/* tree-rx: N trees sent by a thread, received here. */
static int tree_rx(const char *region, long n, const char *file, const char *dest)
{
	struct send_loop s = { .n = n };
	struct nshm_region *r = NULL;
	unsigned long ok = 0, failed = 0;
	pthread_t t;
	char msg[256];

	if (!(s.a = slurp(file, &s.len)))
		return 1;
	if (nshm_open(&s.r, region, 0, msg, sizeof(msg)) != 0 ||
	    nshm_open(&r, region, 0, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "race-peer: %s\n", msg);
		return 1;
	}
	if (pthread_create(&t, NULL, send_loop, &s) != 0)
		return 1;
	for (long i = 0; i < n; i++)
		if (receive_tree(r, dest) > 0)
			ok++;
		else
			failed++;
	pthread_join(t, NULL);
	nshm_close(r);
	nshm_close(s.r);
	printf("tries %lu ok %lu failed %lu\n", ok + failed, ok, failed);
	return 0;
}

/* One pull: the request, then the reply into memory. 2 escaped (MARK in
 * it), 1 done, 0 refused, -1 failed otherwise. */
static int pull_one(struct nshm_region *r, const char *path, const char *mark)
{
	struct nshm_meta ask = { .size_known = 1, .mode = 0644,
				 .request = NSHM_REQ_PULL, .path = path }, meta;
	struct nshm_params p = params();
	struct nshm_tx *tx = NULL;
	struct nshm_rx *rx = NULL;
	char got[4096];
	size_t have = 0;
	const void *buf;
	ssize_t n;
	int rc;

	snprintf(ask.name, sizeof(ask.name), "pull-request");
	rc = nshm_tx_begin(r, &ask, &p, &tx);
	if (rc == 0)
		rc = nshm_tx_end(tx);
	nshm_tx_close(tx, NSHM_R_IO);
	if (rc < 0)
		return rc == -NSHM_EREFUSED ? 0 : -1;
	rc = nshm_rx_begin(r, &p, &rx, &meta);
	if (rc == 0 && meta.request != NSHM_REQ_REPLY) {
		nshm_rx_refuse(rx, NSHM_R_PROTO);
		rc = -1;
	}
	if (rc == 0) {
		nshm_rx_accept(rx);
		while ((n = nshm_rx_chunk(rx, &buf)) > 0) {
			size_t take = (size_t)n < sizeof(got) - 1 - have ? (size_t)n
								       : sizeof(got) - 1 - have;

			memcpy(got + have, buf, take);
			have += take;
		}
		rc = (int)n;
		nshm_rx_complete(rx, rc == 0, rc == 0 ? NSHM_R_NONE : NSHM_R_IO);
	}
	nshm_rx_close(rx, NSHM_R_IO);
	got[have] = '\0';
	if (rc < 0)
		return -1;
	return strstr(got, mark) ? 2 : 1;
}

int main(int argc, char **argv)
{
	struct nshm_region *r = NULL;
	unsigned long count[4] = { 0 };   /* failed, refused, ok, escaped */
	struct timespec t0;
	char msg[256];
	long n, i;

	if (argc == 4 && strcmp(argv[1], "swap") == 0)
		return swap(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "sock") == 0)
		return sock_at(argv[2]);
	if (argc == 6 && strcmp(argv[1], "tree-rx") == 0)
		return tree_rx(argv[2], strtol(argv[3], NULL, 10), argv[4], argv[5]);
	if (argc < 5 || (strcmp(argv[1], "push") != 0 && strcmp(argv[1], "pull") != 0 &&
			 strcmp(argv[1], "push-tree") != 0) ||
	    (strcmp(argv[1], "push") != 0 && argc != 6)) {
		fprintf(stderr, "usage: race-peer swap A B | push REGION SUBDIR N | "
			"push-tree REGION SUBDIR N DIR | tree-rx REGION N FILE DEST | pull REGION PATH N MARK\n");
		return 2;
	}
	if (nshm_open(&r, argv[2], 0, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "race-peer: %s\n", msg);
		return 1;
	}
	n = strtol(argv[4], NULL, 10);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		struct timespec t;

		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 90)
			break;
		int rc = strcmp(argv[1], "push") == 0 ? push_one(r, argv[3], (int)i, NULL)
			 : strcmp(argv[1], "push-tree") == 0 ? push_one(r, argv[3], (int)i, argv[5])
			 : pull_one(r, argv[3], argv[5]);

		count[rc + 1]++;
	}
	nshm_close(r);
	printf("tries %ld ok %lu refused %lu failed %lu escaped %lu\n", i,
	       count[2] + count[3], count[1], count[0], count[3]);
	return 0;
}
