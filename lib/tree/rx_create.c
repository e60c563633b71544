/* SPDX-License-Identifier: BSD-2-Clause */
/* Receiving a tree: making an entry once it passed the checks
 * (extract.h): directories, symlinks, hard links and, with owners
 * restored, files through libarchive's writer; other regular files, the
 * common case, by our own (write_fast). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "extract.h"
#include "proto/proto.h"
#include "tree.h"

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

static int disk_flags(unsigned flags, bool no_overwrite)
{
	/* No ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS: our prefixed names are
	 * absolute, ex_place_name() did that job. Without ARCHIVE_EXTRACT_PERM
	 * libarchive applies the umask and drops set-id and sticky bits. */
	int f = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
		ARCHIVE_EXTRACT_SECURE_SYMLINKS;

	if (no_overwrite || !(flags & NSHM_EXTRACT_FORCE))
		f |= ARCHIVE_EXTRACT_NO_OVERWRITE;
	if (flags & NSHM_EXTRACT_OWNER)
		f |= ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM;
	return f;
}

static int disk_failed(struct extract *x, struct archive *disk, const char *name)
{
	int err = archive_errno(disk);
	char esc[160];

	if (x->rc)
		return x->rc;
	return side_fail(rx_side(x->rx), err == EEXIST ? -EEXIST : -EIO,
			nshm_errno_reason(err, NSHM_R_IO), "%s: %s%s", ex_shown(name, esc, sizeof(esc)),
			archive_error_string(disk),
			err == EEXIST ? " (use --force to replace it)" : "");
}

/* A regular file: written whole under a temporary name, then renamed. */
int ex_write_file(struct extract *x, struct archive *a, struct archive *disk,
		      struct archive_entry *e, const char *final, const char *name)
{
	char esc[160];
	int r, rc = ex_temp_beside(x, final, x->current, sizeof(x->current));

	if (rc < 0) {
		x->current[0] = '\0';
		return side_fail(rx_side(x->rx), rc, NSHM_R_IO, "%s: no temporary name beside it",
				ex_shown(name, esc, sizeof(esc)));
	}
	archive_entry_copy_pathname(e, x->current);
	/* The temporary name is new: never let libarchive replace anything. */
	archive_write_disk_set_options(disk, disk_flags(x->flags, true));
	r = archive_write_header(disk, e);
	if (r >= ARCHIVE_WARN && archive_entry_size(e) > 0)
		r = copy_entry(a, disk);
	if (r >= ARCHIVE_WARN)
		r = archive_write_finish_entry(disk);
	if (r < ARCHIVE_WARN)
		return disk_failed(x, disk, name);
	return ex_put_in_place(x, x->current, final, name);
}

struct archive *ex_new_writer(void)
{
	struct archive *disk = archive_write_disk_new();

	if (disk)
		archive_write_disk_set_standard_lookup(disk);
	return disk;
}

/* The writer's directory records applied and a fresh writer: memory for
 * them stays bounded however many directories come. */
static int renew_writer(struct extract *x)
{
	struct archive *fresh;
	int r = archive_write_close(x->disk);

	if (r < ARCHIVE_WARN)
		return side_fail(rx_side(x->rx), -EIO, NSHM_R_IO, "setting directories' modes and times: %s",
				archive_error_string(x->disk));
	fresh = ex_new_writer();
	if (!fresh)
		return side_fail(rx_side(x->rx), -ENOMEM, NSHM_R_IO, "out of memory");
	archive_write_free(x->disk);
	x->disk = fresh;
	x->dirs = 0;
	return 0;
}

int ex_write_other(struct extract *x, struct archive *disk, struct archive_entry *e,
		       enum kind k, const char *name)
{
	int r;

	archive_write_disk_set_options(disk, disk_flags(x->flags, false));
	r = archive_write_header(disk, e);
	if (r >= ARCHIVE_WARN)
		r = archive_write_finish_entry(disk);
	if (r < ARCHIVE_WARN)
		return disk_failed(x, disk, name);
	if (k == K_DIR && ++x->dirs >= DIRS_PER_WRITER)
		return renew_writer(x);
	return 0;
}

/* The entry's data at its offsets (a sparse entry's come with gaps: holes),
 * never past its size, as libarchive's writer does. */
static int write_data(struct extract *x, struct archive *a, int fd, int64_t size,
		      const char *name)
{
	const void *buf;
	size_t len;
	la_int64_t off, end = 0;
	int r, rc;

	while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
		if (off < 0 || off >= size)
			continue;
		if ((int64_t)len > size - off)
			len = (size_t)(size - off);
		if (len == 0)
			continue;
		if ((rc = nshm_pwrite_all(fd, buf, len, off, NULL)) < 0)
			return ex_fast_failed(x, -rc, name, "");
		if (off + (la_int64_t)len > end)
			end = off + (la_int64_t)len;
	}
	if (r != ARCHIVE_EOF) {
		char esc[160];

		return x->rc ? x->rc : side_fail(rx_side(x->rx), -EIO, NSHM_R_IO, "%s: %s",
						 ex_shown(name, esc, sizeof(esc)),
						 archive_error_string(a));
	}
	if (end < size && ftruncate(fd, size) != 0)
		return ex_fast_failed(x, errno, name, "");
	return 0;
}

/* The sender's times, as libarchive sets them (a missing atime: now). */
static void set_times(int fd, struct archive_entry *e)
{
	struct timespec ts[2] = { { .tv_nsec = UTIME_NOW }, { .tv_nsec = UTIME_OMIT } };

	if (archive_entry_atime_is_set(e)) {
		ts[0].tv_sec = archive_entry_atime(e);
		ts[0].tv_nsec = archive_entry_atime_nsec(e);
	}
	if (archive_entry_mtime_is_set(e)) {
		ts[1].tv_sec = archive_entry_mtime(e);
		ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	}
	(void)futimens(fd, ts);   /* libarchive too only warns */
}

int ex_write_fast(struct extract *x, struct archive *a, struct archive_entry *e,
		      int dfd, const char *final, const char *base, const char *name)
{
	char tmp[NSHM_TEMP_LEN];
	struct stat st;
	int rc, fd = ex_temp_at(x, dfd, final, base, archive_entry_perm(e) & 0777, tmp);

	if (fd < 0)
		return ex_fast_failed(x, -fd, name, "no temporary file beside it: ");
	rc = write_data(x, a, fd, archive_entry_size(e), name);
	if (rc == 0) {
		set_times(fd, e);
		if (fstat(fd, &st) != 0)
			rc = ex_fast_failed(x, errno, name, "");
	}
	if (close(fd) != 0 && rc == 0)
		rc = ex_fast_failed(x, errno, name, "");
	if (rc < 0)
		return rc;       /* rx_tree removes x->current */
	if ((rc = ex_rename_at(x, dfd, tmp, base, name)) < 0)
		return rc;
	x->current[0] = '\0';
	ex_remember(x, &st);
	return 0;
}
