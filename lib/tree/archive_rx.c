/* SPDX-License-Identifier: BSD-2-Clause */
/* Receiving trees: libarchive reads pax from verified chunks (a read
 * callback hands it our private copies, never the slots) and
 * archive_write_disk extracts each entry under the destination.
 *
 * The sender is not trusted, and nothing it sends may change what the
 * receiver had before the transfer:
 * - names and hard-link targets are relative, without "..", and prefixed
 *   with the destination's real path; libarchive's SECURE flags refuse to
 *   write through symlinks, so nothing lands outside the destination;
 * - only directories, regular files, symlinks and hard links to regular
 *   files this transfer made are taken, a hard link never with data;
 * - set-id and sticky bits are dropped; modes pass through the umask
 *   unless owners are restored (root, NSHM_EXTRACT_OWNER);
 * - an existing directory is left as it is, DEST included (--force
 *   replaces files, never re-modes directories);
 * - a regular file is written under a temporary name beside its final one
 *   and renamed into place once complete;
 * - memory is bounded: libarchive is fed in slices and an entry's headers
 *   (names, pax records, a GNU sparse map) may not pass HEADER_MAX. */
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
/* Regular files this transfer made, the only targets a hard link may
 * have: at most this many are remembered (16 bytes each, in a table of
 * twice as many slots: 16 MiB at most). */
#define MADE_MAX (1u << 19)
/* libarchive keeps a record (about 240 bytes) of each directory it makes,
 * to give it its mode and times once its content is written; after this
 * many the records are applied and a fresh writer starts (8 MiB at most).
 * A directory made before that point whose content comes after it may
 * get a later mtime, or refuse that content if its mode forbids writing
 * (not to root). */
#define DIRS_PER_WRITER (1u << 15)

struct file_id {
	uint64_t dev, ino;    /* ino 0: an empty slot */
};

struct extract {
	struct nshm_rx *rx;
	unsigned flags;
	uint64_t max_bytes;       /* 0: no limit */
	char dest[PATH_MAX];
	char current[PATH_MAX];   /* temporary file being written, removed on failure */
	int rc;                   /* the stream's own failure, if any */
	/* The read callback's position in the chunk it holds. */
	const unsigned char *left;
	size_t nleft;
	uint64_t stream;          /* stream bytes taken so far */
	bool in_header;
	size_t header;            /* stream bytes given during this header */
	/* Regular files made by this transfer (open addressing). */
	struct file_id *made;
	size_t nmade, slots;
	struct archive *disk;     /* the writer; replaced every DIRS_PER_WRITER dirs */
	unsigned dirs;            /* directories the writer made */
	/* The regular files' own path (write_fast): DEST, and the last
	 * parent directory below it, open without following symlinks. */
	int destfd, pfd;
	char pdir[PATH_MAX];      /* pfd's path */
	uint64_t rnd;             /* temporary names (O_EXCL decides, not them) */
	uid_t uid;
	gid_t gid;
};

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

/* ---- the regular files this transfer made ---- */

static size_t id_slot(const struct extract *x, uint64_t dev, uint64_t ino)
{
	/* murmur3's finalizer: every input bit reaches the low bits (a bare
	 * multiply and shift clustered tmpfs's inode numbers: about 250 probes
	 * a lookup over 1000 files). */
	uint64_t h = ino ^ (dev * 0x9e3779b97f4a7c15ull);

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return (size_t)h & (x->slots - 1);
}

static bool made_here(const struct extract *x, const struct stat *st)
{
	if (!x->slots || st->st_ino == 0)
		return false;
	for (size_t i = id_slot(x, st->st_dev, st->st_ino);; i = (i + 1) & (x->slots - 1)) {
		if (x->made[i].ino == 0)
			return false;
		if (x->made[i].dev == st->st_dev && x->made[i].ino == st->st_ino)
			return true;
	}
}

static void id_put(struct file_id *t, size_t slots, const struct extract *x,
		   uint64_t dev, uint64_t ino)
{
	size_t i = id_slot(x, dev, ino);

	while (t[i].ino != 0 && !(t[i].dev == dev && t[i].ino == ino))
		i = (i + 1) & (slots - 1);
	t[i].dev = dev;
	t[i].ino = ino;
}

/* Remembers a file this transfer made; past MADE_MAX files, or without
 * memory, a later hard link to it is refused (never a wrong one taken). */
static void remember(struct extract *x, const struct stat *st)
{
	if (st->st_ino == 0 || made_here(x, st) || x->nmade >= MADE_MAX)
		return;
	if (2 * (x->nmade + 1) > x->slots) {
		size_t slots = x->slots ? 2 * x->slots : 1024;
		struct file_id *t = calloc(slots, sizeof(*t));
		struct extract grown = *x;

		if (!t)
			return;
		grown.slots = slots;
		for (size_t i = 0; i < x->slots; i++)
			if (x->made[i].ino)
				id_put(t, slots, &grown, x->made[i].dev, x->made[i].ino);
		free(x->made);
		x->made = t;
		x->slots = slots;
	}
	id_put(x->made, x->slots, x, st->st_dev, st->st_ino);
	x->nmade++;
}

/* ---- names ---- */

/* dest/name with empty and "." components dropped; -1 for an absolute
 * name, a ".." component or a path too long. An empty result stands for
 * DEST itself. */
static int place_name(const struct extract *x, const char *name, char *out, size_t outlen)
{
	size_t len = strlen(x->dest);
	const char *p = name;

	if (*name == '/' || len >= outlen)
		return -1;
	memcpy(out, x->dest, len + 1);
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -1;
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (len + 1 + n >= outlen)
				return -1;
			out[len++] = '/';
			memcpy(out + len, p, n);
			out[len += n] = '\0';
		}
		p += n;
		while (*p == '/')
			p++;
	}
	return 0;
}

/* The entry's name for a message: escaped, it came from the peer. */
static const char *shown(const char *name, char *buf, size_t len)
{
	nshm_escape(buf, len, name ? name : "", 0);
	return buf;
}

/* What an entry is; everything else is refused. */
enum kind { K_DIR, K_FILE, K_SYMLINK, K_HARDLINK };

static const char *type_name(mode_t type)
{
	switch (type) {
	case AE_IFCHR: return "a character device";
	case AE_IFBLK: return "a block device";
	case AE_IFIFO: return "a FIFO";
	case AE_IFSOCK: return "a socket";
	case AE_IFLNK: return "a symbolic link without a valid target";
	default: return "an entry of an unknown type";
	}
}

static int classify(struct extract *x, struct archive_entry *e, const char *name,
		    enum kind *k)
{
	const char *hard = archive_entry_hardlink(e), *sym = archive_entry_symlink(e);
	mode_t type = archive_entry_filetype(e);
	char esc[160];

	if (hard) {
		/* With data, libarchive would open the target and rewrite it. */
		if (archive_entry_size(e) > 0)
			return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_UNSUPPORTED,
					"refused '%s': a hard link carrying data",
					shown(name, esc, sizeof(esc)));
		if ((type != 0 && type != AE_IFREG) || sym)
			return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_UNSUPPORTED,
					"refused '%s': a hard link of an odd type",
					shown(name, esc, sizeof(esc)));
		*k = K_HARDLINK;
	} else if (type == AE_IFREG && !sym) {
		*k = K_FILE;
	} else if (type == AE_IFDIR && !sym) {
		*k = K_DIR;
	} else if (type == AE_IFLNK && sym && *sym && strlen(sym) < PATH_MAX) {
		*k = K_SYMLINK;
	} else {
		return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_UNSUPPORTED,
				"refused '%s': %s (only directories, regular files, "
				"symbolic links and hard links are taken)",
				shown(name, esc, sizeof(esc)), type_name(type));
	}
	return 0;
}

/* ---- one entry ---- */

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
	 * absolute, place_name() did that job. Without ARCHIVE_EXTRACT_PERM
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
			nshm_errno_reason(err, NSHM_R_IO), "%s: %s%s", shown(name, esc, sizeof(esc)),
			archive_error_string(disk),
			err == EEXIST ? " (use --force to replace it)" : "");
}

/* "dir/.nshm-XXXXXX" beside final, a name that does not exist yet. */
static int temp_beside(struct extract *x, const char *final, char *out, size_t outlen)
{
	const char *slash = strrchr(final, '/');
	struct stat st;

	for (int tries = 0; tries < 16; tries++) {
		char tmp[NSHM_TEMP_LEN];
		int n;

		nshm_temp_name(tmp, &x->rnd);
		n = snprintf(out, outlen, "%.*s/%s", (int)(slash - final), final, tmp);
		if (n < 0 || (size_t)n >= outlen)
			return -ENAMETOOLONG;
		if (lstat(out, &st) != 0 && errno == ENOENT)
			return 0;
	}
	return -EEXIST;
}

/* A complete file goes to its final name: without --force never over
 * anything, with it over a file or symlink, never over a directory. */
static int put_in_place(struct extract *x, const char *tmp, const char *final,
			const char *name)
{
	bool force = x->flags & NSHM_EXTRACT_FORCE;
	struct stat st;
	char esc[160];
	int rc = nshm_publish(AT_FDCWD, tmp, final, force);

	if (rc != 0) {
		int err = -rc;

		return side_fail(rx_side(x->rx), rc, nshm_errno_reason(err, NSHM_R_IO), "%s: %s",
				shown(name, esc, sizeof(esc)), err == EEXIST
				? "appeared meanwhile (use --force to replace it)"
				: err == EISDIR ? "is a directory" : strerror(err));
	}
	x->current[0] = '\0';
	if (lstat(final, &st) == 0)
		remember(x, &st);
	return 0;
}

/* A regular file: written whole under a temporary name, then renamed. */
static int write_file(struct extract *x, struct archive *a, struct archive *disk,
		      struct archive_entry *e, const char *final, const char *name)
{
	char esc[160];
	int r, rc = temp_beside(x, final, x->current, sizeof(x->current));

	if (rc < 0) {
		x->current[0] = '\0';
		return side_fail(rx_side(x->rx), rc, NSHM_R_IO, "%s: no temporary name beside it",
				shown(name, esc, sizeof(esc)));
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
	return put_in_place(x, x->current, final, name);
}

/* A symlink among path's directories below DEST: libarchive would refuse
 * to write through it; refuse before looking through it, so that a
 * symlink of the sender's cannot ask about things outside. */
static bool through_symlink(const struct extract *x, const char *path)
{
	char p[PATH_MAX];
	size_t len = strlen(path), at = strlen(x->dest) + 1;
	struct stat st;

	memcpy(p, path, len + 1);
	for (char *s = strchr(p + at, '/'); at < len && s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (lstat(p, &st) == 0 && S_ISLNK(st.st_mode))
			return true;
		*s = '/';
	}
	return false;
}

/* A hard link must name a regular file this transfer made. */
static int check_link_target(struct extract *x, struct archive_entry *e, const char *name)
{
	const char *hard = archive_entry_hardlink(e);
	char target[PATH_MAX], esc[160], esc2[160];
	struct stat st;

	if (place_name(x, hard, target, sizeof(target)) != 0 || !strcmp(target, x->dest))
		return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_BADNAME,
				"refused a hard link to '%s': outside the destination",
				shown(hard, esc, sizeof(esc)));
	if (through_symlink(x, target) || lstat(target, &st) != 0 || !S_ISREG(st.st_mode) ||
	    !made_here(x, &st))
		return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_BADNAME,
				"refused '%s': a hard link to '%s', which is not a file "
				"this transfer made", shown(name, esc, sizeof(esc)),
				shown(hard, esc2, sizeof(esc2)));
	archive_entry_copy_hardlink(e, target);
	return 0;
}

/* Without --force nothing may be replaced; with it files and symlinks
 * may, directories never. Returns 1 for a directory entry on an existing
 * directory: nothing to do, it keeps its mode, owner and times. */
static int check_existing(struct extract *x, enum kind k, const char *final,
			  const char *name)
{
	struct stat st;
	char esc[160];

	if (through_symlink(x, final))
		return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_BADNAME,
				"refused '%s': through a symbolic link",
				shown(name, esc, sizeof(esc)));
	if (lstat(final, &st) != 0)
		return 0;
	if (k == K_DIR && S_ISDIR(st.st_mode))
		return 1;
	/* libarchive's NO_OVERWRITE skips existing files in silence; a user
	 * must hear that a file was not delivered, so refuse it here. */
	if (!(x->flags & NSHM_EXTRACT_FORCE))
		return side_fail(rx_side(x->rx), -EEXIST, NSHM_R_EXISTS,
				"%s exists (use --force to replace it)",
				shown(name, esc, sizeof(esc)));
	if (S_ISDIR(st.st_mode))
		return side_fail(rx_side(x->rx), -EEXIST, NSHM_R_EXISTS,
				"%s is a directory: --force replaces files only",
				shown(name, esc, sizeof(esc)));
	/* A file where a directory goes: out of the way, so that libarchive
	 * never looks through a symlink left there. */
	if (k == K_DIR && unlink(final) != 0)
		return side_fail(rx_side(x->rx), -errno, NSHM_R_IO, "%s: %s",
				shown(name, esc, sizeof(esc)), strerror(errno));
	return 0;
}

static struct archive *new_writer(void)
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
	fresh = new_writer();
	if (!fresh)
		return side_fail(rx_side(x->rx), -ENOMEM, NSHM_R_IO, "out of memory");
	archive_write_free(x->disk);
	x->disk = fresh;
	x->dirs = 0;
	return 0;
}

static int write_other(struct extract *x, struct archive *disk, struct archive_entry *e,
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

/* ---- regular files, the common case ----
 * libarchive's writer made about 26 system calls per small file (path
 * walks with lstat for its symlink checks, umask twice, a stat to see
 * whether the name exists, ...). Here: the parent directory is opened once
 * for all the files in it, component by component with O_NOFOLLOW (a
 * symlink on the way fails the open, and the entry takes the checked path
 * below, which refuses it); the file is created under a fresh temporary
 * name with O_EXCL, written, timed, stat'ed for the hard-link table and
 * renamed into place with RENAME_NOREPLACE, which is the existence check
 * (without --force nothing is replaced; with it, a directory never is). */

/* The parent of final (below DEST) open as a directory; its last component
 * in *base. -errno when it cannot be opened that way: the caller takes the
 * checked path, which says why. */
static int parent_fd(struct extract *x, const char *final, const char **base)
{
	const char *slash = strrchr(final, '/');
	size_t plen = (size_t)(slash - final), dlen = strlen(x->dest);
	char p[PATH_MAX];
	int fd = x->destfd;

	*base = slash + 1;
	if (plen <= dlen)
		return x->destfd;
	if (x->pfd >= 0 && strlen(x->pdir) == plen && !memcmp(x->pdir, final, plen))
		return x->pfd;
	memcpy(p, final, plen);
	p[plen] = '\0';
	for (char *c = p + dlen + 1, *end; c < p + plen; c = end + 1) {
		int next;

		end = strchr(c, '/');
		if (!end)
			end = p + plen;
		*end = '\0';
		next = openat(fd, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd != x->destfd)
			close(fd);
		if (next < 0)
			return -errno;
		fd = next;
	}
	if (x->pfd >= 0)
		close(x->pfd);
	x->pfd = fd;
	memcpy(x->pdir, final, plen);
	x->pdir[plen] = '\0';
	return fd;
}

/* ".nshm-XXXXXX" in dfd, created with O_EXCL; its whole path in
 * x->current, removed if the transfer fails. */
static int temp_at(struct extract *x, int dfd, const char *final, const char *base,
		   mode_t mode, char *tmp)
{
	int n, fd = nshm_temp_open(dfd, tmp, mode, &x->rnd);

	if (fd < 0)
		return fd;
	n = snprintf(x->current, sizeof(x->current), "%.*s%s", (int)(base - final), final, tmp);
	if (n < 0 || (size_t)n >= sizeof(x->current)) {
		unlinkat(dfd, tmp, 0);
		close(fd);
		x->current[0] = '\0';
		return -ENAMETOOLONG;
	}
	return fd;
}

static int fast_failed(struct extract *x, int err, const char *name, const char *what)
{
	char esc[160];

	if (x->rc)
		return x->rc;
	return side_fail(rx_side(x->rx), -err, nshm_errno_reason(err, NSHM_R_IO), "%s: %s%s",
			 shown(name, esc, sizeof(esc)), what, strerror(err));
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
			return fast_failed(x, -rc, name, "");
		if (off + (la_int64_t)len > end)
			end = off + (la_int64_t)len;
	}
	if (r != ARCHIVE_EOF) {
		char esc[160];

		return x->rc ? x->rc : side_fail(rx_side(x->rx), -EIO, NSHM_R_IO, "%s: %s",
						 shown(name, esc, sizeof(esc)),
						 archive_error_string(a));
	}
	if (end < size && ftruncate(fd, size) != 0)
		return fast_failed(x, errno, name, "");
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

/* The temporary file to its final name; RENAME_NOREPLACE decides whether
 * something is there (put_in_place's rules). */
static int rename_at(struct extract *x, int dfd, const char *tmp, const char *base,
		     const char *name)
{
	bool force = x->flags & NSHM_EXTRACT_FORCE;
	char esc[160];
	int err = -nshm_publish(dfd, tmp, base, force);

	if (err == 0)
		return 0;
	if (err == EEXIST)
		return side_fail(rx_side(x->rx), -EEXIST, NSHM_R_EXISTS,
				 "%s exists (use --force to replace it)",
				 shown(name, esc, sizeof(esc)));
	if (err == EISDIR)
		return side_fail(rx_side(x->rx), -EEXIST, NSHM_R_EXISTS,
				 "%s is a directory: --force replaces files only",
				 shown(name, esc, sizeof(esc)));
	return fast_failed(x, err, name, "");
}

static int write_fast(struct extract *x, struct archive *a, struct archive_entry *e,
		      int dfd, const char *final, const char *base, const char *name)
{
	char tmp[NSHM_TEMP_LEN];
	struct stat st;
	int rc, fd = temp_at(x, dfd, final, base, archive_entry_perm(e) & 0777, tmp);

	if (fd < 0)
		return fast_failed(x, -fd, name, "no temporary file beside it: ");
	rc = write_data(x, a, fd, archive_entry_size(e), name);
	if (rc == 0) {
		set_times(fd, e);
		if (fstat(fd, &st) != 0)
			rc = fast_failed(x, errno, name, "");
	}
	if (close(fd) != 0 && rc == 0)
		rc = fast_failed(x, errno, name, "");
	if (rc < 0)
		return rc;       /* rx_tree removes x->current */
	if ((rc = rename_at(x, dfd, tmp, base, name)) < 0)
		return rc;
	x->current[0] = '\0';
	remember(x, &st);
	return 0;
}

/* One entry: header, checks, data, its place. Returns 1 at the end. */
static int extract_one(struct extract *x, struct archive *a,
		       nshm_entry_fn cb, void *arg, struct nshm_tree_stats *got)
{
	struct archive_entry *e;
	char final[PATH_MAX], name[PATH_MAX], esc[160];
	const char *sent;
	enum kind k = K_FILE;
	int rc = read_header(x, a, &e);

	if (rc != 0)
		return rc;
	/* A copy: the entry's own name is replaced below. */
	sent = archive_entry_pathname(e);
	if (!sent || strlen(sent) >= sizeof(name) ||
	    place_name(x, sent, final, sizeof(final)) != 0)
		return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_BADNAME,
				"refused an entry named '%s': outside the destination "
				"or too long", shown(sent, esc, sizeof(esc)));
	memcpy(name, sent, strlen(sent) + 1);
	if ((rc = classify(x, e, name, &k)) < 0)
		return rc;
	if (k != K_DIR && !strcmp(final, x->dest))
		return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_BADNAME,
				"refused '%s': only a directory may stand for the destination",
				shown(name, esc, sizeof(esc)));
	if (k == K_HARDLINK && (rc = check_link_target(x, e, name)) < 0)
		return rc;
	/* Owners restored (-p as root): libarchive's writer, which maps
	 * names to ids as before. */
	if (k == K_FILE && !(x->flags & NSHM_EXTRACT_OWNER)) {
		const char *base;
		int dfd = parent_fd(x, final, &base);

		if (dfd >= 0) {
			if (cb)
				cb(arg, final + strlen(x->dest) + 1);
			if ((rc = write_fast(x, a, e, dfd, final, base, name)) < 0)
				return rc;
			got->entries++;
			got->bytes += (uint64_t)archive_entry_size(e);
			return 0;
		}
	}
	rc = check_existing(x, k, final, name);
	if (rc < 0)
		return rc;
	if (cb)
		cb(arg, final[strlen(x->dest)] ? final + strlen(x->dest) + 1 : ".");
	if (rc == 0) {
		archive_entry_copy_pathname(e, final);
		archive_entry_set_perm(e, archive_entry_perm(e) & 0777);
		if (!(x->flags & NSHM_EXTRACT_OWNER)) {
			archive_entry_set_uid(e, x->uid);
			archive_entry_set_gid(e, x->gid);
		}
		rc = k == K_FILE ? write_file(x, a, x->disk, e, final, name)
				 : write_other(x, x->disk, e, k, name);
		if (rc < 0)
			return rc;
	}
	got->entries++;
	if (k == K_FILE)
		got->bytes += (uint64_t)archive_entry_size(e);
	return 0;
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

/* Beneath dirfd, which is made the working directory for the run: the
 * names given to libarchive's writer and to lstat are relative ("./..."),
 * so DEST is the directory dirfd holds, whatever its name leads to now
 * (libarchive changes directories itself on its way, too). The caller's
 * working directory comes back at the end. */
static int rx_tree(struct nshm_rx *rx, int dirfd, unsigned flags,
		   nshm_entry_fn entry, void *arg, struct nshm_tree_stats *got)
{
	struct extract *x = calloc(1, sizeof(*x));
	struct archive *a = archive_read_new();
	int rc, cwd = -1;

	memset(got, 0, sizeof(*got));
	if (x) {
		x->destfd = x->pfd = -1;
		x->disk = new_writer();
	}
	if (!x || !a || !x->disk) {
		rc = side_fail(rx_side(rx), -ENOMEM, NSHM_R_IO, "out of memory");
		goto out;
	}
	x->rx = rx;
	x->flags = flags;
	x->uid = getuid();
	x->gid = getgid();
	x->rnd = nshm_random64() | 1;
	x->max_bytes = (&rx_side(rx)->p)->max_bytes;
	memcpy(x->dest, ".", 2);
	cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	x->destfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (cwd < 0 || x->destfd < 0 || fchdir(x->destfd) != 0) {
		rc = side_fail(rx_side(rx), -errno, NSHM_R_IO, "the destination: %s",
			       strerror(errno));
		if (cwd >= 0)
			close(cwd);
		cwd = -1;
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
	if (x && rc < 0 && x->current[0] && cwd >= 0)
		unlink(x->current);  /* the file in progress; directories stay */
	if (x) {
		if (x->pfd >= 0)
			close(x->pfd);
		if (x->destfd >= 0)
			close(x->destfd);
		archive_write_free(x->disk);
		free(x->made);
	}
	archive_read_free(a);
	free(x);
	if (cwd >= 0) {
		if (fchdir(cwd) != 0 && rc >= 0)
			rc = side_fail(rx_side(rx), -errno, NSHM_R_IO,
				       "back to the working directory: %s", strerror(errno));
		close(cwd);
	}
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
