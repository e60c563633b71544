/* SPDX-License-Identifier: BSD-2-Clause */
/* Receiving trees: libarchive reads pax from verified chunks (a read
 * callback hands it our private copies, never the slots) and
 * archive_write_disk extracts each entry under the destination.
 *
 * The sender is not trusted: every entry name and hard-link target is
 * checked here (relative, no ".." component) before it is prefixed with
 * the destination's real path, and libarchive's SECURE flags refuse to
 * write through symlinks, so nothing lands outside the destination. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

struct extract {
	struct nshm_rx *rx;
	char dest[PATH_MAX];
	char current[PATH_MAX];   /* entry being written, removed on failure */
	int rc;                   /* the stream's own failure, if any */
};

static la_ssize_t read_cb(struct archive *a, void *arg, const void **buf)
{
	struct extract *x = arg;
	ssize_t n = nshm_rx_chunk(x->rx, buf);

	if (n < 0) {
		x->rc = (int)n;
		archive_set_error(a, EIO, "%s", nshm_rx_why(x->rx));
		return -1;
	}
	return n;
}

/* A name from the sender: relative, without "..", not empty. */
static int safe_entry_name(const char *name)
{
	const char *p = name;

	if (!*name || *name == '/')
		return -1;
	while (*p) {
		size_t len = strcspn(p, "/");

		if (len == 2 && p[0] == '.' && p[1] == '.')
			return -1;
		p += len;
		while (*p == '/')
			p++;
	}
	return 0;
}

static int prefix(struct extract *x, const char *name, char *out, size_t outlen)
{
	int n;

	if (safe_entry_name(name) != 0)
		return -1;
	n = snprintf(out, outlen, "%s/%s", x->dest, name);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* Rewrites the entry's names to lie under dest, or refuses it. */
static int place(struct extract *x, struct archive_entry *e, unsigned flags)
{
	char path[PATH_MAX], link[PATH_MAX];
	const char *name = archive_entry_pathname(e);
	const char *hard = archive_entry_hardlink(e);

	if (!name || prefix(x, name, path, sizeof(path)) != 0)
		return rx_failf(x->rx, -NSHM_EPROTO, NSHM_R_BADNAME,
				"refused an entry named '%s': outside the destination",
				name ? name : "");
	if (hard && prefix(x, hard, link, sizeof(link)) != 0)
		return rx_failf(x->rx, -NSHM_EPROTO, NSHM_R_BADNAME,
				"refused a hard link to '%s': outside the destination", hard);
	archive_entry_copy_pathname(e, path);
	if (hard)
		archive_entry_copy_hardlink(e, link);
	if (!(flags & NSHM_EXTRACT_OWNER)) {
		archive_entry_set_uid(e, getuid());
		archive_entry_set_gid(e, getgid());
	}
	return 0;
}

static int copy_entry(struct archive *a, struct archive *disk)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	int r;

	while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK)
		if (archive_write_data_block(disk, buf, size, off) < ARCHIVE_WARN)
			return ARCHIVE_FATAL;
	return r == ARCHIVE_EOF ? ARCHIVE_OK : r;
}

static int disk_flags(unsigned flags)
{
	int f = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
		ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
		ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;

	/* Our prefixed names are absolute: the check above did that job. */
	f &= ~ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;
	if (!(flags & NSHM_EXTRACT_FORCE))
		f |= ARCHIVE_EXTRACT_NO_OVERWRITE;
	if (flags & NSHM_EXTRACT_OWNER)
		f |= ARCHIVE_EXTRACT_OWNER;
	return f;
}

/* One entry: header, data, finish. Returns 1 at the end of the archive. */
static int extract_one(struct extract *x, struct archive *a, struct archive *disk,
		       unsigned flags, nshm_entry_fn cb, void *arg,
		       struct nshm_tree_stats *got)
{
	struct archive_entry *e;
	struct stat st;
	int r = archive_read_next_header(a, &e);
	int rc;

	if (r == ARCHIVE_EOF)
		return 1;
	if (r < ARCHIVE_WARN)
		return x->rc ? x->rc : rx_failf(x->rx, -NSHM_EPROTO, NSHM_R_PROTO,
						 "bad archive: %s", archive_error_string(a));
	if ((rc = place(x, e, flags)) < 0)
		return rc;
	/* libarchive's NO_OVERWRITE skips existing files in silence; a user
	 * must hear that a file was not delivered, so refuse it here. */
	if (!(flags & NSHM_EXTRACT_FORCE) && lstat(archive_entry_pathname(e), &st) == 0 &&
	    !(S_ISDIR(st.st_mode) && archive_entry_filetype(e) == AE_IFDIR))
		return rx_failf(x->rx, -EEXIST, NSHM_R_EXISTS,
				"%s exists (use --force to replace it)",
				archive_entry_pathname(e));
	if (cb)
		cb(arg, archive_entry_pathname(e) + strlen(x->dest) + 1);
	r = archive_write_header(disk, e);
	/* From here a failure leaves a partial entry of ours to remove (never
	 * a file the header refused to replace). */
	if (r >= ARCHIVE_WARN)
		snprintf(x->current, sizeof(x->current), "%s", archive_entry_pathname(e));
	if (r >= ARCHIVE_WARN && archive_entry_size(e) > 0)
		r = copy_entry(a, disk);
	if (r >= ARCHIVE_WARN)
		r = archive_write_finish_entry(disk);
	if (r < ARCHIVE_WARN) {
		int err = archive_errno(disk);

		if (x->rc)
			return x->rc;
		return rx_failf(x->rx, err == EEXIST ? -EEXIST : -EIO,
				err == EEXIST ? NSHM_R_EXISTS : err == ENOSPC ? NSHM_R_NOSPACE
				: NSHM_R_IO, "%s: %s%s", archive_entry_pathname(e),
				archive_error_string(disk),
				err == EEXIST ? " (use --force to replace it)" : "");
	}
	x->current[0] = '\0';
	got->entries++;
	if (archive_entry_filetype(e) == AE_IFREG)
		got->bytes += (uint64_t)archive_entry_size(e);
	return 0;
}

/* After libarchive's end-of-archive the stream may hold padding: read to
 * the verified end so that the totals are checked. */
static int drain(struct extract *x)
{
	const void *buf;
	ssize_t n;

	while ((n = nshm_rx_chunk(x->rx, &buf)) > 0)
		;
	return (int)n;
}

int nshm_rx_tree(struct nshm_rx *rx, const char *destdir, unsigned flags,
		 nshm_entry_fn entry, void *arg, struct nshm_tree_stats *got)
{
	struct extract x = { .rx = rx };
	struct archive *a = archive_read_new();
	struct archive *disk = archive_write_disk_new();
	int rc;

	memset(got, 0, sizeof(*got));
	if (!realpath(destdir, x.dest)) {
		rc = rx_failf(rx, -errno, NSHM_R_IO, "%s: %s", destdir, strerror(errno));
		goto out;
	}
	archive_read_support_format_tar(a);
	archive_write_disk_set_options(disk, disk_flags(flags));
	archive_write_disk_set_standard_lookup(disk);
	if (archive_read_open(a, &x, NULL, read_cb, NULL) != ARCHIVE_OK) {
		rc = x.rc ? x.rc : rx_failf(rx, -NSHM_EPROTO, NSHM_R_PROTO, "bad archive: %s",
					    archive_error_string(a));
		goto out;
	}
	while ((rc = extract_one(&x, a, disk, flags, entry, arg, got)) == 0)
		;
	if (rc == 1)
		rc = drain(&x);
out:
	if (rc < 0 && x.current[0])
		unlink(x.current);  /* the entry in progress; directories stay */
	archive_write_free(disk);
	archive_read_free(a);
	return rc;
}
