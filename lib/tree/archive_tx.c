/* SPDX-License-Identifier: BSD-2-Clause */
/* Sending trees: our walk (walk.c) reads the disk without following
 * symlinks, finds holes and hard links as libarchive's read_disk did, and
 * libarchive writes pax straight into the slots through a write callback;
 * no temporary archive exists anywhere. */
#define _GNU_SOURCE
#include "archive_dl.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/proto.h"
#include "tree.h"
#include "ustar.h"
#include "walk.h"

static int measure_one(void *arg, const struct nshm_walk_entry *e)
{
	struct nshm_tree_stats *st = arg;

	st->entries++;
	if (S_ISREG(e->st.st_mode))
		st->bytes += (uint64_t)e->st.st_size;
	return 0;
}

int nshm_tree_measure(char *const paths[], int n, struct nshm_tree_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (int i = 0; i < n; i++) {
		int rc = nshm_walk(paths[i], measure_one, st, NULL);

		if (rc < 0)
			return rc;
	}
	return 0;
}

int tree_measure_fd(int fd, const char *name, struct nshm_tree_stats *st)
{
	memset(st, 0, sizeof(*st));
	return nshm_walk_fd(fd, name, measure_one, st, NULL);
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

/* Pieces of file data between read() and the pax writer. */
#define PIECE (256u << 10)

struct data_seg {
	off_t off, len;
};

/* One call of nshm_tx_tree. */
struct sender {
	struct nshm_tx *tx;
	struct archive *w;
	struct archive_entry_linkresolver *lr;
	struct archive_entry *e;      /* cleared and reused for every entry */
	nshm_entry_fn cb;
	void *arg;
	struct nshm_tree_stats *sent;
	unsigned char *buf;           /* PIECE bytes */
	struct data_seg *segs;        /* a file's data between its holes */
	size_t nsegs, segroom;
	/* The last owner and group looked up (a tree rarely has many). */
	uid_t uid;
	gid_t gid;
	bool have_uid, have_gid;
	char uname[256], gname[256];
};

static bool cancelled(struct nshm_tx *tx)
{
	volatile sig_atomic_t *c = tx_side(tx)->p.cancel;

	return c && *c;
}

static int io_failed(struct sender *s, int err, const char *name)
{
	return side_fail(tx_side(s->tx), -err, NSHM_R_IO, "%s: %s", name, strerror(err));
}

/* user_name and group_name are a deliberate mirror (passwd and group
 * databases, each with its own one-entry cache). */
static const char *user_name(struct sender *s, uid_t uid)
{
	if (!s->have_uid || s->uid != uid) {
		struct passwd *pw = getpwuid(uid);

		snprintf(s->uname, sizeof(s->uname), "%s", pw ? pw->pw_name : "");
		s->uid = uid;
		s->have_uid = true;
	}
	return s->uname[0] ? s->uname : NULL;
}

static const char *group_name(struct sender *s, gid_t gid)
{
	if (!s->have_gid || s->gid != gid) {
		struct group *gr = getgrgid(gid);

		snprintf(s->gname, sizeof(s->gname), "%s", gr ? gr->gr_name : "");
		s->gid = gid;
		s->have_gid = true;
	}
	return s->gname[0] ? s->gname : NULL;
}

static int add_seg(struct sender *s, off_t off, off_t len)
{
	if (s->nsegs == s->segroom) {
		size_t room = s->segroom ? 2 * s->segroom : 16;
		struct data_seg *t = realloc(s->segs, room * sizeof(*t));

		if (!t)
			return -ENOMEM;
		s->segs = t;
		s->segroom = room;
	}
	s->segs[s->nsegs].off = off;
	s->segs[s->nsegs++].len = len;
	return 0;
}

/* The data of a file with holes (fewer blocks than its size says), as
 * libarchive's read_disk finds it; none (nsegs 0) for a file without. */
static int find_holes(struct sender *s, int fd, off_t size)
{
	off_t at = 0;

	s->nsegs = 0;
	while (at < size) {
		off_t data = lseek(fd, at, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break;                /* a hole up to the end */
		if (data < 0)
			goto plain;           /* no SEEK_DATA here: all data */
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			goto plain;
		if (data == 0 && hole >= size)
			goto plain;           /* no hole after all */
		if (add_seg(s, data, hole - data) < 0)
			return -ENOMEM;
		at = hole;
	}
	for (size_t i = 0; i < s->nsegs; i++)
		archive_entry_sparse_add_entry(s->e, s->segs[i].off, s->segs[i].len);
	return 0;
plain:
	s->nsegs = 0;
	return 0;
}

/* len bytes from offset off (-1: the current position) into the stream;
 * a file that shrank meanwhile fails the transfer (its header promised
 * len bytes: padding them would send what the file never held). */
static int copy_range(struct sender *s, int fd, off_t off, off_t len, const char *name)
{
	while (len > 0) {
		size_t want = len < (off_t)PIECE ? (size_t)len : PIECE;
		ssize_t n = off < 0 ? read(fd, s->buf, want) : pread(fd, s->buf, want, off);

		if (n < 0 && errno == EINTR && !cancelled(s->tx))
			continue;
		if (n < 0)
			return errno == EINTR ? -ECANCELED : io_failed(s, errno, name);
		if (n == 0)
			return side_fail(tx_side(s->tx), -EIO, NSHM_R_IO,
					 "%s: source shrank while it was sent", name);
		if (archive_write_data(s->w, s->buf, (size_t)n) < 0)
			return -EIO;
		if (off >= 0)
			off += n;
		len -= n;
		if (cancelled(s->tx))
			return -ECANCELED;
	}
	return 0;
}

/* Data with holes: pax records the holes from the entry's sparse map, and
 * its writer drops the zeros we feed for them. */
static int copy_file(struct sender *s, int fd, off_t size, const char *name)
{
	off_t done = 0;
	int rc;

	if (s->nsegs == 0)
		return copy_range(s, fd, -1, size, name);
	memset(s->buf, 0, PIECE);
	for (size_t i = 0; i < s->nsegs; i++) {
		while (done < s->segs[i].off) {
			size_t n = s->segs[i].off - done > (off_t)PIECE ? PIECE
				 : (size_t)(s->segs[i].off - done);

			if (archive_write_data(s->w, s->buf, n) < 0)
				return -EIO;
			done += (off_t)n;
		}
		if ((rc = copy_range(s, fd, s->segs[i].off, s->segs[i].len, name)) < 0)
			return rc;
		memset(s->buf, 0, PIECE);
		done = s->segs[i].off + s->segs[i].len;
	}
	return 0;
}

/* A regular file, opened without following a symlink or blocking on
 * what replaced it, and stat'ed again: what is sent is what was opened. */
static int open_file(struct sender *s, const struct nshm_walk_entry *we, struct stat *st)
{
	int fd = openat(we->dirfd, we->at,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return io_failed(s, errno, we->name);
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_ino != we->st.st_ino ||
	    st->st_dev != we->st.st_dev) {
		close(fd);
		return side_fail(tx_side(s->tx), -EIO, NSHM_R_IO,
				 "%s: changed while it was being sent", we->name);
	}
	return fd;
}

/* The entry's header: name, stat, owner names, link target, holes. */
static int fill_entry(struct sender *s, const struct nshm_walk_entry *we,
		      const struct stat *st, int fd)
{
	struct archive_entry *e = s->e;
	const char *u = user_name(s, st->st_uid), *g = group_name(s, st->st_gid);

	archive_entry_clear(e);
	archive_entry_copy_pathname(e, we->name);
	archive_entry_copy_stat(e, st);
	if (u)
		archive_entry_copy_uname(e, u);
	if (g)
		archive_entry_copy_gname(e, g);
	s->nsegs = 0;
	if (S_ISLNK(st->st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(we->dirfd, we->at, target, sizeof(target) - 1);

		if (n < 0)
			return io_failed(s, errno, we->name);
		target[n] = '\0';
		archive_entry_copy_symlink(e, target);
	}
	if (!S_ISREG(st->st_mode))
		archive_entry_set_size(e, 0);
	else if (st->st_size > 0 && (uint64_t)st->st_blocks * 512 < (uint64_t)st->st_size)
		return find_holes(s, fd, st->st_size);
	return 0;
}

/* libarchive's writer, made when the first entry needs it: a tree of
 * plain files (send_raw) never loads libarchive (about 5 ms of dlopen and
 * relocation before the first byte). */
static int writer(struct sender *s)
{
	int rc;

	if (s->w)
		return 0;
	if ((rc = nshm_la_ready(tx_side(s->tx))) < 0)
		return rc;
	s->w = archive_write_new();
	s->lr = archive_entry_linkresolver_new();
	s->e = archive_entry_new();
	if (!s->w || !s->lr || !s->e)
		return side_fail(tx_side(s->tx), -ENOMEM, NSHM_R_IO, "out of memory");
	archive_write_set_format_pax_restricted(s->w);
	/* Unblocked: each write goes straight to the slots, no 10 KiB staging. */
	archive_write_set_bytes_per_block(s->w, 0);
	archive_entry_linkresolver_set_strategy(s->lr, archive_format(s->w));
	if (archive_write_open(s->w, s->tx, NULL, write_cb, NULL) != ARCHIVE_OK)
		return side_fail(tx_side(s->tx), -EIO, NSHM_R_IO, "%s",
				 archive_error_string(s->w));
	return 0;
}

/* A regular file whose header ustar holds (nshm_ustar_header): header,
 * data and padding written by us, in as few pieces as PIECE allows.
 * libarchive's last entry is padded first; nothing of it is buffered (the
 * writer is unblocked). A file that shrank meanwhile fails the transfer,
 * as copy_range does. */
static int send_raw(struct sender *s, int fd, const unsigned char *hdr, off_t size,
		    const char *name)
{
	size_t used = NSHM_USTAR_BLOCK;
	int rc;

	if (s->w && archive_write_finish_entry(s->w) < ARCHIVE_WARN)
		return -EIO;
	memcpy(s->buf, hdr, NSHM_USTAR_BLOCK);
	while (size > 0 || used > 0) {
		size_t want = PIECE - used;
		ssize_t n = 0;

		if ((off_t)want > size)
			want = (size_t)size;
		if (want > 0)
			n = read(fd, s->buf + used, want);
		if (n < 0 && errno == EINTR && !cancelled(s->tx))
			continue;
		if (n < 0)
			return errno == EINTR ? -ECANCELED : io_failed(s, errno, name);
		if (n == 0 && want > 0)
			return side_fail(tx_side(s->tx), -EIO, NSHM_R_IO,
					 "%s: source shrank while it was sent", name);
		used += (size_t)n;
		size -= n;
		if (size == 0 && used % NSHM_USTAR_BLOCK) {
			size_t pad = NSHM_USTAR_BLOCK - used % NSHM_USTAR_BLOCK;

			memset(s->buf + used, 0, pad);   /* PIECE is a multiple of 512 */
			used += pad;
		}
		if (used == PIECE || size == 0) {
			if ((rc = nshm_tx_write(s->tx, s->buf, used)) < 0)
				return rc;
			used = 0;
		}
		if (cancelled(s->tx))
			return -ECANCELED;
	}
	return 0;
}

static int send_one(void *arg, const struct nshm_walk_entry *we)
{
	struct sender *s = arg;
	struct archive_entry *e, *spare = NULL;
	struct stat st = we->st;
	bool reg = S_ISREG(st.st_mode);
	int fd = -1, rc = 0, r;

	if (reg && (fd = open_file(s, we, &st)) < 0)
		return fd;
	/* The common file: one name, no holes, fields that fit ustar. */
	if (reg && st.st_nlink == 1 && (uint64_t)st.st_blocks * 512 >= (uint64_t)st.st_size) {
		unsigned char hdr[NSHM_USTAR_BLOCK];

		if (nshm_ustar_header(hdr, we->name, &st, user_name(s, st.st_uid),
				      group_name(s, st.st_gid)) == 0) {
			if (s->cb)
				s->cb(s->arg, we->name);
			rc = send_raw(s, fd, hdr, st.st_size, we->name);
			if (rc == 0) {
				s->sent->entries++;
				s->sent->bytes += (uint64_t)st.st_size;
			}
			goto out;
		}
	}
	if ((rc = writer(s)) < 0 || (rc = fill_entry(s, we, &st, fd)) < 0)
		goto out;
	e = s->e;
	/* Like tar: a later name of a file already sent becomes a hard link. */
	archive_entry_linkify(s->lr, &e, &spare);
	if (s->cb)
		s->cb(s->arg, archive_entry_pathname(e));
	r = archive_write_header(s->w, e);
	if (r < ARCHIVE_WARN) {
		rc = -EIO;
		goto out;
	}
	if (reg && archive_entry_size(e) > 0 && !archive_entry_hardlink(e))
		rc = copy_file(s, fd, st.st_size, we->name);
	s->sent->entries++;
	if (reg)
		s->sent->bytes += (uint64_t)st.st_size;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* path, or the open fd named path when fd >= 0. */
static int send_path(struct sender *s, int fd, const char *path)
{
	char failed[PATH_MAX];
	int rc;

	failed[0] = '\0';   /* not the whole 4 KiB: this runs once per FILE */
	rc = fd >= 0 ? nshm_walk_fd(fd, path, send_one, s, failed)
		     : nshm_walk(path, send_one, s, failed);

	if (rc >= 0)
		return 0;
	if (!*nshm_tx_why(s->tx)) {
		if (*failed)
			side_fail(tx_side(s->tx), rc, NSHM_R_IO, "%s: %s", failed, strerror(-rc));
		else
			side_fail(tx_side(s->tx), -EIO, NSHM_R_IO, "%s",
				  s->w ? archive_error_string(s->w) : "writing the archive");
	}
	return cancelled(s->tx) ? -ECANCELED : -EIO;
}

/* The end of the archive: libarchive's, or the same two zero blocks. */
static int end_archive(struct sender *s)
{
	if (s->w)
		return archive_write_close(s->w) == ARCHIVE_OK ? 0
		       : side_fail(tx_side(s->tx), -EIO, NSHM_R_IO, "%s",
				   archive_error_string(s->w));
	memset(s->buf, 0, 2 * NSHM_USTAR_BLOCK);
	return nshm_tx_write(s->tx, s->buf, 2 * NSHM_USTAR_BLOCK);
}

static int tx_tree(struct nshm_tx *tx, int fd, char *const paths[], int n,
		   nshm_entry_fn entry, void *arg, struct nshm_tree_stats *sent)
{
	struct sender s = { .tx = tx, .cb = entry, .arg = arg, .sent = sent };
	int rc = 0;

	memset(sent, 0, sizeof(*sent));
	s.buf = malloc(PIECE);
	if (!s.buf) {
		rc = side_fail(tx_side(tx), -ENOMEM, NSHM_R_IO, "out of memory");
		goto out;
	}
	for (int i = 0; i < n && rc == 0; i++)
		rc = send_path(&s, fd, paths[i]);
	if (rc == 0)
		rc = end_archive(&s);
out:
	if (s.lr)
		archive_entry_linkresolver_free(s.lr);
	if (s.e)
		archive_entry_free(s.e);
	if (s.w)
		archive_write_free(s.w);
	free(s.segs);
	free(s.buf);
	return rc;
}

int nshm_tx_tree(struct nshm_tx *tx, char *const paths[], int n,
		 nshm_entry_fn entry, void *arg, struct nshm_tree_stats *sent)
{
	return tx_tree(tx, -1, paths, n, entry, arg, sent);
}

int tx_tree_fd(struct nshm_tx *tx, int fd, const char *name, nshm_entry_fn entry,
	       void *arg, struct nshm_tree_stats *sent)
{
	char *paths[1] = { (char *)name };

	return tx_tree(tx, fd, paths, 1, entry, arg, sent);
}
