/* SPDX-License-Identifier: BSD-2-Clause */
/* Receiving a tree: where an entry goes (extract.h).
 *
 * Its parent directory is reached from DEST's fd one name at a time
 * (nshm_open_child: openat with O_NOFOLLOW of a single name, util/
 * beneath.c), made when missing, and every entry is then made relative
 * to that fd: mkdirat, symlinkat, linkat, a file's temporary name and the
 * rename into place (util/publish.c: never over anything without
 * --force, never over a directory). A directory swapped for a symlink
 * meanwhile fails the next step with ELOOP and the entry is refused; one
 * already open is held by its fd wherever it is renamed to.
 *
 * The walk is cached: the fds of the last parent's components stay open
 * (the first LEVELS_MAX of them, and the parent itself), so an entry
 * beside the last one costs no lookup and one in a new subdirectory, or
 * in a sibling of an ancestor, one openat. libarchive's writer made and
 * checked each entry by its whole path from the working directory, one
 * lstat per component: a tree 80 deep spent most of its time there. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "extract.h"
#include "proto/proto.h"
#include "tree.h"

static int cache_fd(const struct dir_cache *c)
{
	return c->depth <= LEVELS_MAX ? c->fd[c->depth] : c->deep;
}

/* Back up to k components, closing what is below. Past LEVELS_MAX only
 * the deepest fd is held: backing up to a level between means backing up
 * to LEVELS_MAX. fd[0] is DEST's, never closed here. */
static void cache_pop(struct dir_cache *c, unsigned k)
{
	if (k >= c->depth)
		return;
	if (c->depth > LEVELS_MAX) {
		close(c->deep);
		c->deep = -1;
		c->depth = LEVELS_MAX;
	}
	for (; c->depth > k; c->depth--) {
		close(c->fd[c->depth]);
		c->fd[c->depth] = -1;
	}
	c->len = c->end[c->depth];
	c->path[c->len] = '\0';
}

/* One more component, open as fd, of n bytes at name. */
static void cache_push(struct dir_cache *c, int fd, const char *name, size_t n)
{
	if (c->len)
		c->path[c->len++] = '/';
	memcpy(c->path + c->len, name, n);
	c->len += n;
	c->path[c->len] = '\0';
	if (++c->depth <= LEVELS_MAX) {
		c->fd[c->depth] = fd;
		c->ino[c->depth] = 0;   /* on_path asks when it needs it */
		c->end[c->depth] = c->len;
		return;
	}
	if (c->deep >= 0)
		close(c->deep);
	c->deep = fd;
}

/* The whole components the cached path and p (plen bytes) share. */
static unsigned cache_common(const struct dir_cache *c, const char *p, size_t plen)
{
	size_t lim = c->len < plen ? c->len : plen;
	unsigned k = 0;

	for (size_t i = 0; i < lim && c->path[i] == p[i]; i++)
		if ((i + 1 == c->len || c->path[i + 1] == '/') && (i + 1 == plen || p[i + 1] == '/'))
			k++;
	return k;
}

/* Why name in dirfd could not be opened as a directory: -ELOOP a
 * symlink, -ENOTDIR anything else, 0 a directory now (swapped meanwhile). */
static int not_dir_why(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return -ENOTDIR;
	return S_ISLNK(st.st_mode) ? -ELOOP : S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* One directory below dirfd, never a symlink; made (umask's mode) when
 * missing and make. -ELOOP for a symlink, -ENOTDIR for anything else that
 * is not a directory. A name that flips between a directory and something
 * else is looked at a few times, then refused as a symlink. *made: a
 * directory was made on this walk, so below it nothing is there yet and
 * mkdirat comes first (two system calls a level, not three). */
static int step(int dirfd, const char *name, bool make, bool *made)
{
	int fd = -ELOOP, why;

	for (int tries = 0; tries < 4 && (fd == -ENOTDIR || fd == -ELOOP); tries++) {
		if (*made && mkdirat(dirfd, name, 0777) != 0 && errno != EEXIST)
			return -errno;
		fd = nshm_open_child(dirfd, name, O_PATH | O_DIRECTORY);
		if (fd == -ENOENT && make) {
			if (mkdirat(dirfd, name, 0777) != 0 && errno != EEXIST)
				return -errno;
			*made = true;
			fd = nshm_open_child(dirfd, name, O_PATH | O_DIRECTORY);
		}
		if ((fd == -ENOTDIR || fd == -ELOOP) && (why = not_dir_why(dirfd, name)) < 0)
			return why;
	}
	return fd == -ENOTDIR ? -ELOOP : fd;
}

/* The parent directory of rel (a normalized path below DEST, not empty),
 * from the cache; its last component in *base. The fd stays the cache's
 * (valid until the next call), or -errno. */
int ex_parent(struct extract *x, const char *rel, bool make, const char **base)
{
	struct dir_cache *c = &x->cache;
	const char *slash = strrchr(rel, '/');
	size_t plen = slash ? (size_t)(slash - rel) : 0;
	bool made = false;

	*base = slash ? slash + 1 : rel;
	if (plen == c->len && !memcmp(c->path, rel, plen))
		return cache_fd(c);
	cache_pop(c, cache_common(c, rel, plen));
	for (size_t at = c->len ? c->len + 1 : 0; at < plen;) {
		char name[NAME_MAX + 1];
		size_t n = strcspn(rel + at, "/");
		int fd;

		if (n > NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(name, rel + at, n);
		name[n] = '\0';
		if ((fd = step(cache_fd(c), name, make, &made)) < 0)
			return fd;
		cache_push(c, fd, name, n);
		at += n + 1;
	}
	return cache_fd(c);
}

void ex_cache_drop(struct extract *x)
{
	cache_pop(&x->cache, 0);
}

/* A complete entry under its temporary name to its final one; the
 * temporary name is removed if it cannot be. */
int ex_publish(struct extract *x, int dfd, const char *tmp, const char *base,
	       const char *name)
{
	bool force = x->flags & NSHM_EXTRACT_FORCE;
	char esc[160];
	int err = -nshm_publish(dfd, tmp, base, force);

	if (err == 0)
		return 0;
	unlinkat(dfd, tmp, 0);
	if (err == EEXIST)
		return side_fail(rx_side(x->rx), -EEXIST, NSHM_R_EXISTS,
				 "%s exists (use --force to replace it)",
				 ex_shown(name, esc, sizeof(esc)));
	if (err == EISDIR)
		return side_fail(rx_side(x->rx), -EEXIST, NSHM_R_EXISTS,
				 "%s is a directory: --force replaces files only",
				 ex_shown(name, esc, sizeof(esc)));
	return ex_fast_failed(x, err, name, "");
}

/* ---- the directories' modes and times, once their content is in ---- */

/* On the way to the current entry (its content may still come): one of
 * the cache's first LEVELS_MAX levels, whose inodes are asked for here,
 * once, rather than on every step of every walk. */
static bool on_path(struct extract *x, uint64_t ino)
{
	struct dir_cache *c = &x->cache;
	unsigned n = c->depth < LEVELS_MAX ? c->depth : LEVELS_MAX;
	struct stat st;

	for (unsigned i = 1; i <= n; i++) {
		if (c->ino[i] == 0 && fstat(c->fd[i], &st) == 0)
			c->ino[i] = (uint64_t)st.st_ino;
		if (c->ino[i] == ino)
			return true;
	}
	return false;
}

static int fix_one(struct dir_fix *f)
{
	int rc = 0;

	(void)futimens(f->fd, f->ts);   /* libarchive too only warned */
	if (f->remode && fchmod(f->fd, f->mode) != 0)
		rc = -errno;
	close(f->fd);
	return rc;
}

/* The deferred modes and times applied: all of them, or (all false) those
 * of the directories not on the way to the current entry; if every one
 * is, all (DEFER_MAX in extract.h). 0 or the first -errno. */
int ex_fix_dirs(struct extract *x, bool all)
{
	unsigned kept = 0;
	int rc = 0, r;

	for (unsigned i = 0; i < x->nfix; i++) {
		if (!all && on_path(x, x->fix[i].ino)) {
			x->fix[kept++] = x->fix[i];
			continue;
		}
		if ((r = fix_one(&x->fix[i])) < 0 && rc == 0)
			rc = r;
	}
	x->nfix = kept;
	if (!all && kept == DEFER_MAX)
		return ex_fix_dirs(x, true);
	return rc;
}

/* A directory this transfer made, open as fd (taken), to get mode and
 * times ts at the end. */
int ex_defer(struct extract *x, int fd, const struct stat *st, mode_t mode,
	     const struct timespec ts[2])
{
	struct dir_fix *f;
	int rc = 0;

	if (x->nfix == DEFER_MAX && (rc = ex_fix_dirs(x, false)) < 0) {
		close(fd);
		return rc;
	}
	f = &x->fix[x->nfix++];
	f->fd = fd;
	f->ino = (uint64_t)st->st_ino;
	f->mode = mode;
	f->remode = (st->st_mode & 07777) != mode;
	f->ts[0] = ts[0];
	f->ts[1] = ts[1];
	return 0;
}
