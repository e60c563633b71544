/* SPDX-License-Identifier: BSD-2-Clause */
/* Receiving a tree: where a regular file goes (extract.h). Its parent
 * directory opened by fd beneath DEST (util/beneath.c); a temporary name beside the final one; the rename into place
 * (util/publish.c: never over anything without --force, never over a
 * directory). */
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

/* ---- regular files, the common case ----
 * libarchive's writer made about 26 system calls per small file (path
 * walks with lstat for its symlink checks, umask twice, a stat to see
 * whether the name exists, ...). Here: the parent directory is opened once
 * for all the files in it, beneath DEST by the kernel with no symlink at
 * all (nshm_open_beneath, the one confinement: a symlink on the way fails
 * the open, and the entry takes the checked path, which refuses it); the file is created under a fresh temporary
 * name with O_EXCL, written, timed, stat'ed for the hard-link table and
 * renamed into place with RENAME_NOREPLACE, which is the existence check
 * (without --force nothing is replaced; with it, a directory never is). */

/* "dir/.nshm-XXXXXX" beside final, a name that does not exist yet. */
int ex_temp_beside(struct extract *x, const char *final, char *out, size_t outlen)
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
int ex_put_in_place(struct extract *x, const char *tmp, const char *final,
			const char *name)
{
	bool force = x->flags & NSHM_EXTRACT_FORCE;
	struct stat st;
	char esc[160];
	int rc = nshm_publish(AT_FDCWD, tmp, final, force);

	if (rc != 0) {
		int err = -rc;

		return side_fail(rx_side(x->rx), rc, nshm_errno_reason(err, NSHM_R_IO), "%s: %s",
				ex_shown(name, esc, sizeof(esc)), err == EEXIST
				? "appeared meanwhile (use --force to replace it)"
				: err == EISDIR ? "is a directory" : strerror(err));
	}
	x->current[0] = '\0';
	if (lstat(final, &st) == 0)
		ex_remember(x, &st);
	return 0;
}

/* The parent of final (below DEST) open as a directory; its last component
 * in *base. -errno when it cannot be opened that way: the caller takes the
 * checked path, which says why. */
int ex_parent_fd(struct extract *x, const char *final, const char **base)
{
	const char *slash = strrchr(final, '/');
	size_t plen = (size_t)(slash - final), dlen = strlen(x->dest);
	char p[PATH_MAX];
	int fd;

	*base = slash + 1;
	if (plen <= dlen)
		return x->destfd;
	if (x->pfd >= 0 && strlen(x->pdir) == plen && !memcmp(x->pdir, final, plen))
		return x->pfd;
	/* final is DEST "/" the path below it: that path, beneath DEST. */
	memcpy(p, final + dlen + 1, plen - dlen - 1);
	p[plen - dlen - 1] = '\0';
	fd = nshm_open_beneath(x->destfd, p, O_PATH | O_DIRECTORY);
	if (fd < 0)
		return fd;
	if (x->pfd >= 0)
		close(x->pfd);
	x->pfd = fd;
	memcpy(x->pdir, final, plen);
	x->pdir[plen] = '\0';
	return fd;
}

/* ".nshm-XXXXXX" in dfd, created with O_EXCL; its whole path in
 * x->current, removed if the transfer fails. */
int ex_temp_at(struct extract *x, int dfd, const char *final, const char *base,
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

/* The temporary file to its final name; RENAME_NOREPLACE decides whether
 * something is there (put_in_place's rules). */
int ex_rename_at(struct extract *x, int dfd, const char *tmp, const char *base,
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
				 ex_shown(name, esc, sizeof(esc)));
	if (err == EISDIR)
		return side_fail(rx_side(x->rx), -EEXIST, NSHM_R_EXISTS,
				 "%s is a directory: --force replaces files only",
				 ex_shown(name, esc, sizeof(esc)));
	return ex_fast_failed(x, err, name, "");
}
