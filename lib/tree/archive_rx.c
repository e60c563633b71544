/* SPDX-License-Identifier: BSD-2-Clause */
/* Receiving trees: libarchive reads pax from verified chunks (a read
 * callback hands it our private copies, never the slots) and only parses;
 * each entry is made by our own code relative to its parent directory's
 * fd, reached from DEST's fd one name at a time (rx_dest.c).
 *
 * The sender is not trusted, and nothing it sends may change what the
 * receiver had before the transfer:
 * - names and hard-link targets are relative, without ".."; each parent
 *   is opened from DEST's fd one name at a time, never through a symlink,
 *   and the entry made relative to that fd (mkdirat, symlinkat, linkat,
 *   openat, renameat2): a local user swapping a directory for a symlink
 *   meanwhile gets the entry refused, never placed outside DEST;
 * - only directories, regular files, symlinks and hard links to regular
 *   files this transfer made are taken, a hard link never with data;
 * - set-id and sticky bits are dropped; modes pass through the umask
 *   unless owners are restored (root, NSHM_EXTRACT_OWNER);
 * - an existing directory is left as it is, DEST included (--force
 *   replaces files, never re-modes directories);
 * - a regular file is written under a temporary name beside its final one
 *   and renamed into place once complete;
 * - memory is bounded: libarchive is fed in slices and an entry's headers
 *   (names, pax records, a GNU sparse map) may not pass HEADER_MAX.
 * This file is the stream and the run; the checks on an entry are in
 * rx_check.c, making it in rx_create.c, where it goes in rx_dest.c
 * (extract.h between them). */
#define _GNU_SOURCE
#include "archive_dl.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto/proto.h"
#include "tree.h"
#include "extract.h"

/* One entry's headers (pax records, long names, a sparse map) may take
 * this many stream bytes. libarchive keeps each piece of a GNU sparse map
 * in memory, about 48 bytes for 4 bytes of stream: 2 MiB of map costs
 * about 25 MiB, and a legitimate map of 100 000 pieces fits. */
#define HEADER_MAX (2u << 20)
/* libarchive gets the stream in slices of at most this: what it parses
 * past HEADER_MAX before the read callback sees it is at most one slice
 * plus what it kept from the last (a 2 MiB chunk given whole would let
 * a map of that size in unchecked). */
#define SLICE (256u << 10)

static int stream_failed(struct extract *x, struct archive *a, int rc)
{
	x->rc = rc;
	archive_set_error(a, EIO, "%s", nshm_rx_why(x->rx));
	return -1;
}

static la_ssize_t read_cb(struct archive *a, void *arg, const void **buf)
{
	struct extract *x = arg;
	size_t n;

	if (x->in_header && x->header > HEADER_MAX)
		return stream_failed(x, a, side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_PROTO,
				"refused an entry whose headers (names, pax records, "
				"sparse map) pass %u bytes", HEADER_MAX));
	if (x->nleft == 0) {
		const void *p;
		ssize_t got = nshm_rx_chunk(x->rx, &p);

		if (got < 0)
			return stream_failed(x, a, (int)got);
		if (got == 0)
			return 0;
		x->stream += (uint64_t)got;
		if (x->max_bytes && x->stream > x->max_bytes)
			return stream_failed(x, a, side_fail(rx_side(x->rx), -EFBIG, NSHM_R_NOSPACE,
					"the stream passes the receiver's limit of %llu bytes "
					"(--max-bytes)", (unsigned long long)x->max_bytes));
		x->left = p;
		x->nleft = (size_t)got;
	}
	n = x->nleft < SLICE ? x->nleft : SLICE;
	*buf = x->left;
	x->left += n;
	x->nleft -= n;
	if (x->in_header)
		x->header += n;
	return (la_ssize_t)n;
}

static int read_header(struct extract *x, struct archive *a, struct archive_entry **e)
{
	int r;

	x->in_header = true;
	x->header = 0;
	r = archive_read_next_header(a, e);
	x->in_header = false;
	if (r == ARCHIVE_EOF)
		return 1;
	/* ARCHIVE_RETRY (a damaged header) and ARCHIVE_WARN (too many
	 * special headers, a name that does not convert) leave an entry that
	 * is not what the sender meant: refuse them too. */
	if (r != ARCHIVE_OK)
		return x->rc ? x->rc : side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_PROTO,
						 "bad archive: %s", archive_error_string(a));
	return 0;
}

/* An entry, made relative to its parent's fd (rx_dest.c, rx_create.c). */
static int extract_entry(struct extract *x, struct archive *a, struct archive_entry *e,
			 enum kind k, const char *rel, const char *name,
			 nshm_entry_fn cb, void *arg, struct nshm_tree_stats *got)
{
	const char *base;
	int dfd, rc;

	if (cb)
		cb(arg, *rel ? rel : ".");
	if (!*rel) {
		rc = 0;          /* DEST itself: an existing directory, left as it is */
	} else if (k == K_HARDLINK) {
		rc = ex_make_link(x, e, rel, name);
	} else if ((dfd = ex_parent(x, rel, true, &base)) < 0) {
		rc = ex_walk_failed(x, -dfd, name);
	} else {
		rc = k == K_FILE ? ex_write_fast(x, a, e, dfd, base, name)
		   : k == K_DIR ? ex_make_dir(x, e, dfd, base, name)
				: ex_make_symlink(x, e, dfd, base, name);
	}
	if (rc < 0)
		return rc;
	got->entries++;
	if (k == K_FILE)
		got->bytes += (uint64_t)archive_entry_size(e);
	return 0;
}

/* One entry: header, checks, data, its place. Returns 1 at the end. */
static int extract_one(struct extract *x, struct archive *a,
		       nshm_entry_fn cb, void *arg, struct nshm_tree_stats *got)
{
	struct archive_entry *e;
	char rel[PATH_MAX], name[PATH_MAX], esc[160];
	const char *sent;
	enum kind k = K_FILE;
	int rc = read_header(x, a, &e);

	if (rc != 0)
		return rc;
	sent = archive_entry_pathname(e);
	if (!sent || strlen(sent) >= sizeof(name) || ex_place_name(sent, rel, sizeof(rel)) != 0)
		return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_BADNAME,
				"refused an entry named '%s': outside the destination "
				"or too long", ex_shown(sent, esc, sizeof(esc)));
	memcpy(name, sent, strlen(sent) + 1);
	if ((rc = ex_classify(x, e, name, &k)) < 0)
		return rc;
	if (k != K_DIR && !*rel)
		return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_BADNAME,
				"refused '%s': only a directory may stand for the destination",
				ex_shown(name, esc, sizeof(esc)));
	return extract_entry(x, a, e, k, rel, name, cb, arg, got);
}

/* After libarchive's end-of-archive the stream may hold padding: read to
 * the verified end so that the totals are checked. */
static int drain(struct extract *x)
{
	const void *buf;
	ssize_t n;

	while ((n = nshm_rx_chunk(x->rx, &buf)) > 0) {
		x->stream += (uint64_t)n;
		if (x->max_bytes && x->stream > x->max_bytes)
			return side_fail(rx_side(x->rx), -EFBIG, NSHM_R_NOSPACE,
					"the stream passes the receiver's limit of %llu "
					"bytes (--max-bytes)", (unsigned long long)x->max_bytes);
	}
	return (int)n;
}

/* The state of one extraction: NULL without memory. */
static struct extract *extract_new(struct nshm_rx *rx, unsigned flags)
{
	struct extract *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->destfd = x->cache.deep = -1;
	for (unsigned i = 0; i <= LEVELS_MAX; i++)
		x->cache.fd[i] = -1;
	x->rx = rx;
	x->flags = flags;
	x->euid = geteuid();
	x->rnd = nshm_random64() | 1;
	x->max_bytes = rx_side(rx)->p.max_bytes;
	return x;
}

/* The deferred directories get their modes and times, whatever the
 * outcome (what arrived stays, as it should be); then everything is
 * closed. A failure to set them is the transfer's if it had none. */
static int extract_free(struct extract *x, int rc)
{
	int r;

	if (!x)
		return rc;
	ex_cache_drop(x);
	r = ex_fix_dirs(x, true);
	if (r < 0 && rc >= 0)
		rc = side_fail(rx_side(x->rx), r, NSHM_R_IO,
			       "setting directories' modes and times: %s", strerror(-r));
	if (x->destfd >= 0)
		close(x->destfd);
	free(x->made);
	free(x);
	return rc;
}

/* Beneath dirfd: every entry is made relative to it (rx_dest.c), nothing
 * by a name from the working directory, which is left alone. */
static int rx_tree(struct nshm_rx *rx, int dirfd, unsigned flags,
		   nshm_entry_fn entry, void *arg, struct nshm_tree_stats *got)
{
	struct extract *x = extract_new(rx, flags);
	struct archive *a = archive_read_new();
	int rc;

	memset(got, 0, sizeof(*got));
	if (!x || !a) {
		rc = side_fail(rx_side(rx), -ENOMEM, NSHM_R_IO, "out of memory");
		goto out;
	}
	x->destfd = x->cache.fd[0] = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (x->destfd < 0) {
		rc = side_fail(rx_side(rx), -errno, NSHM_R_IO, "the destination: %s",
			       strerror(errno));
		goto out;
	}
	archive_read_support_format_tar(a);
	if (archive_read_open(a, x, NULL, read_cb, NULL) != ARCHIVE_OK) {
		rc = x->rc ? x->rc : side_fail(rx_side(rx), -NSHM_EPROTO, NSHM_R_PROTO, "bad archive: %s",
					      archive_error_string(a));
		goto out;
	}
	while ((rc = extract_one(x, a, entry, arg, got)) == 0)
		;
	if (rc == 1)
		rc = drain(x);
out:
	rc = extract_free(x, rc);
	archive_read_free(a);
	return rc;
}

int rx_tree_at(struct nshm_rx *rx, int dirfd, unsigned flags, nshm_entry_fn entry,
	       void *arg, struct nshm_tree_stats *got)
{
	int rc = nshm_la_ready(rx_side(rx));

	memset(got, 0, sizeof(*got));
	/* Not answered yet: refused when the archive cannot be read here,
	 * so that the sender hears why before it sends anything. */
	if (!rx_answered(rx)) {
		if (rc < 0)
			nshm_rx_refuse(rx, NSHM_R_UNSUPPORTED);
		else
			nshm_rx_accept(rx);
	}
	return rc < 0 ? rc : rx_tree(rx, dirfd, flags, entry, arg, got);
}

int nshm_rx_tree(struct nshm_rx *rx, const char *destdir, unsigned flags,
		 nshm_entry_fn entry, void *arg, struct nshm_tree_stats *got)
{
	int rc, fd = open(destdir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	memset(got, 0, sizeof(*got));
	if (fd < 0) {
		rc = side_fail(rx_side(rx), -errno, NSHM_R_IO, "%s: %s", destdir,
			       strerror(errno));
		if (!rx_answered(rx))
			nshm_rx_refuse(rx, NSHM_R_IO);
		return rc;
	}
	rc = rx_tree_at(rx, fd, flags, entry, arg, got);
	close(fd);
	return rc;
}
