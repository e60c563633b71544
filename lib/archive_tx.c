/* SPDX-License-Identifier: BSD-2-Clause */
/* Sending trees: libarchive reads the disk (without following symlinks,
 * with holes and hard links) and writes pax straight into the slots through
 * a write callback; no temporary archive exists anywhere. */
#define _GNU_SOURCE
#include "archive_dl.h"
#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* nftw's callback takes no argument: the counts of the call in progress on
 * this thread. Thread-local, so two threads measure at once without sharing
 * it; within a thread calls cannot overlap (measure_one calls nothing). */
static _Thread_local struct nshm_tree_stats *measuring;

static int measure_one(const char *path, const struct stat *st, int flag,
		       struct FTW *ftw)
{
	(void)path;
	(void)flag;
	(void)ftw;
	measuring->entries++;
	if (S_ISREG(st->st_mode))
		measuring->bytes += (uint64_t)st->st_size;
	return 0;
}

int nshm_tree_measure(char *const paths[], int n, struct nshm_tree_stats *st)
{
	memset(st, 0, sizeof(*st));
	measuring = st;
	for (int i = 0; i < n; i++)
		if (nftw(paths[i], measure_one, 32, FTW_PHYS) != 0)
			return errno ? -errno : -EIO;
	return 0;
}

static la_ssize_t write_cb(struct archive *a, void *arg, const void *buf, size_t len)
{
	int rc = nshm_tx_write(arg, buf, len);

	if (rc < 0) {
		archive_set_error(a, EIO, "%s", nshm_tx_why(arg));
		return -1;
	}
	return (la_ssize_t)len;
}

/* Length of the part of path before its last component ("a/b/" of
 * "a/b/dir/"), which entry names leave out. */
static size_t prefix_len(const char *path)
{
	size_t len = strlen(path);

	while (len > 1 && path[len - 1] == '/')
		len--;
	while (len > 0 && path[len - 1] != '/')
		len--;
	return len;
}

/* Data with holes: pax records the holes from the entry's sparse map, and
 * its writer drops the zeros we feed for them. */
static int copy_data(struct archive *disk, struct archive *w, struct nshm_tx *tx)
{
	static const char zeros[65536];
	const void *buf;
	size_t size;
	la_int64_t offset, done = 0;
	int r;

	while ((r = archive_read_data_block(disk, &buf, &size, &offset)) == ARCHIVE_OK) {
		while (offset > done) {
			size_t n = offset - done > (la_int64_t)sizeof(zeros)
				 ? sizeof(zeros) : (size_t)(offset - done);

			if (archive_write_data(w, zeros, n) < 0)
				return -1;
			done += (la_int64_t)n;
		}
		if (size && archive_write_data(w, buf, size) < 0)
			return -1;
		done = offset + (la_int64_t)size;
		if ((&tx_side(tx)->p)->cancel && *(&tx_side(tx)->p)->cancel)
			return -1;
	}
	return r == ARCHIVE_EOF ? 0 : -1;
}

static int send_path(struct archive *w, struct archive_entry_linkresolver *lr,
		     struct nshm_tx *tx, const char *path, nshm_entry_fn cb, void *arg,
		     struct nshm_tree_stats *sent)
{
	struct archive *disk = archive_read_disk_new();
	size_t skip = prefix_len(path);
	int rc = 0, r;

	archive_read_disk_set_symlink_physical(disk);
	archive_read_disk_set_standard_lookup(disk);
	archive_read_disk_set_behavior(disk, ARCHIVE_READDISK_NO_XATTR |
				       ARCHIVE_READDISK_NO_ACL | ARCHIVE_READDISK_NO_FFLAGS);
	if (archive_read_disk_open(disk, path) != ARCHIVE_OK) {
		rc = side_fail(tx_side(tx), -EIO, NSHM_R_IO, "%s", archive_error_string(disk));
		goto out;
	}
	for (;;) {
		struct archive_entry *e = archive_entry_new(), *sparse = NULL;
		const char *name;

		r = archive_read_next_header2(disk, e);
		if (r == ARCHIVE_EOF) {
			archive_entry_free(e);
			break;
		}
		if (r < ARCHIVE_WARN) {
			rc = side_fail(tx_side(tx), -EIO, NSHM_R_IO, "%s", archive_error_string(disk));
			archive_entry_free(e);
			break;
		}
		archive_read_disk_descend(disk);
		name = archive_entry_pathname(e);
		if (strlen(name) > skip)
			archive_entry_copy_pathname(e, name + skip);
		archive_entry_linkify(lr, &e, &sparse);
		if (cb)
			cb(arg, archive_entry_pathname(e));
		r = archive_write_header(w, e);
		if (r >= ARCHIVE_WARN && archive_entry_size(e) > 0 &&
		    archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e))
			r = copy_data(disk, w, tx) == 0 ? ARCHIVE_OK : ARCHIVE_FATAL;
		sent->entries++;
		if (archive_entry_filetype(e) == AE_IFREG)
			sent->bytes += (uint64_t)archive_entry_size(e);
		archive_entry_free(e);
		if (r < ARCHIVE_WARN) {
			if (!*nshm_tx_why(tx))
				side_fail(tx_side(tx), -EIO, NSHM_R_IO, "%s", archive_error_string(w));
			rc = (&tx_side(tx)->p)->cancel && *(&tx_side(tx)->p)->cancel ? -ECANCELED : -EIO;
			break;
		}
	}
out:
	archive_read_free(disk);
	return rc;
}

static int tx_tree(struct nshm_tx *tx, char *const paths[], int n,
		   nshm_entry_fn entry, void *arg, struct nshm_tree_stats *sent)
{
	struct archive *w = archive_write_new();
	struct archive_entry_linkresolver *lr = archive_entry_linkresolver_new();
	int rc = 0;

	memset(sent, 0, sizeof(*sent));
	archive_write_set_format_pax_restricted(w);
	/* Unblocked: each write goes straight to the slots, no 10 KiB staging. */
	archive_write_set_bytes_per_block(w, 0);
	archive_entry_linkresolver_set_strategy(lr, archive_format(w));
	if (archive_write_open(w, tx, NULL, write_cb, NULL) != ARCHIVE_OK) {
		rc = side_fail(tx_side(tx), -EIO, NSHM_R_IO, "%s", archive_error_string(w));
		goto out;
	}
	for (int i = 0; i < n && rc == 0; i++)
		rc = send_path(w, lr, tx, paths[i], entry, arg, sent);
	if (rc == 0 && archive_write_close(w) != ARCHIVE_OK)
		rc = side_fail(tx_side(tx), -EIO, NSHM_R_IO, "%s", archive_error_string(w));
out:
	archive_entry_linkresolver_free(lr);
	archive_write_free(w);
	return rc;
}

int nshm_tx_tree(struct nshm_tx *tx, char *const paths[], int n,
		 nshm_entry_fn entry, void *arg, struct nshm_tree_stats *sent)
{
	int rc = nshm_la_ready(tx_side(tx));

	memset(sent, 0, sizeof(*sent));
	return rc < 0 ? rc : tx_tree(tx, paths, n, entry, arg, sent);
}
