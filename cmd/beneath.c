/* SPDX-License-Identifier: BSD-2-Clause */
/* Confinement by file descriptor (beneath.h). Each open asks the kernel
 * to resolve beneath a directory fd with no symlink at all: a component
 * that is one (even one that stays beneath), "..", or a magic link fails
 * the lookup, and what the lookup found is the fd returned. Nothing here
 * returns a name to be resolved again. Without openat2 (Linux < 5.6) a
 * path from a peer is refused: there is no safe fallback. The lookup
 * itself is the library's, nshm_open_beneath (lib/util/beneath.c), which
 * the tree receiver uses too. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "util/util.h"

static const char *why_of(int rc)
{
	return rc == -ELOOP ? "it is or passes through a symbolic link"
	     : rc == -ENOTDIR ? "it is not a directory"
	     : rc == -EXDEV ? "it leads outside the directory"
	     : rc == -ENOSYS ? "this kernel has no openat2 (Linux 5.6 or later is "
			       "needed to confine a path from the peer)"
	     : strerror(-rc);
}

int beneath_check(const char *what, const char *path, bool allow_abs,
		  char *msg, size_t msglen)
{
	const char *why = rel_path_problem(path, strlen(path), allow_abs);
	char esc[256];

	if (!why)
		return 0;
	nshm_escape(esc, sizeof(esc), path, 0);
	snprintf(msg, msglen, "bad %s '%s': %s (a relative path beneath the receiver's "
		 "directory, without '.' or '..')", what, esc, why);
	return -EINVAL;
}

/* One component beneath dirfd, a directory and no symlink (the resolve
 * flags refuse a trailing one too, with ELOOP; O_NOFOLLOW would open the
 * link itself and say ENOTDIR); made if missing. */
static int step(int dirfd, const char *name)
{
	int fd = nshm_open_beneath(dirfd, name, O_PATH | O_DIRECTORY);

	if (fd == -ENOENT) {
		if (mkdirat(dirfd, name, 0777) != 0 && errno != EEXIST)
			return -errno;
		fd = nshm_open_beneath(dirfd, name, O_PATH | O_DIRECTORY);
	}
	return fd;
}

int beneath_mkdirs(int dirfd, const char *sub, char *msg, size_t msglen)
{
	char *copy = strdup(sub), *save = NULL, *name, esc[256];
	int fd = dup(dirfd), rc = 0;

	if (!copy || fd < 0) {
		rc = copy ? -errno : -ENOMEM;
		snprintf(msg, msglen, "%s", strerror(-rc));
		goto out;
	}
	if ((rc = beneath_check("SUBDIR", sub, false, msg, msglen)) < 0)
		goto out;
	for (name = strtok_r(copy, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
		int next = step(fd, name);
		size_t upto = (size_t)(name - copy) + strlen(name);

		if (next < 0) {
			rc = next;
			/* sub up to this component; from the peer: escaped. */
			memcpy(copy, sub, upto);
			copy[upto] = '\0';
			nshm_escape(esc, sizeof(esc), copy, 0);
			snprintf(msg, msglen, "SUBDIR '%s': %s", esc, why_of(rc));
			goto out;
		}
		close(fd);
		fd = next;
	}
out:
	free(copy);
	if (rc < 0 && fd >= 0)
		close(fd);
	return rc < 0 ? rc : fd;
}

int beneath_open(int rootfd, const char *path, struct stat *st, char *msg, size_t msglen)
{
	const int flags = O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY;
	char esc[256];
	int fd, rc;

	nshm_escape(esc, sizeof(esc), path, 0);
	if ((rc = beneath_check("PATH", path, true, msg, msglen)) < 0)
		return rc;
	while (*path == '/')
		path++;
	fd = nshm_open_beneath(rootfd, *path ? path : ".", flags);
	if (fd == -ENXIO) {
		/* open(2) refuses a socket (or a device without a driver). */
		snprintf(msg, msglen, "%s: a socket or a device, not a file or a directory",
			 esc);
		return fd;
	}
	if (fd < 0) {
		snprintf(msg, msglen, "%s: %s", esc, why_of(fd));
		return fd;
	}
	if (fstat(fd, st) != 0) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", esc, strerror(-rc));
		close(fd);
		return rc;
	}
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) {
		snprintf(msg, msglen, "%s: %s, not a file or a directory", esc,
			 S_ISFIFO(st->st_mode) ? "a FIFO" : S_ISSOCK(st->st_mode) ? "a socket"
			 : S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) ? "a device"
			 : "something else");
		close(fd);
		return -ENXIO;
	}
	/* Reads of a regular file or a directory do not block: the flag
	 * only kept the open itself from waiting (on a FIFO's writer). */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", esc, strerror(-rc));
		close(fd);
		return rc;
	}
	return fd;
}

enum nshm_reason beneath_reason(int rc)
{
	return nshm_errno_reason(-rc, NSHM_R_BADNAME);
}
