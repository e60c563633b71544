/* SPDX-License-Identifier: BSD-2-Clause */
/* A walk of the files to send: each entry once, with one fstatat relative
 * to its directory's fd (never a path walk), symlinks never followed. */
#ifndef NSHM_WALK_H
#define NSHM_WALK_H

#include <sys/stat.h>

struct nshm_walk_entry {
	int dirfd;             /* the directory holding it (AT_FDCWD at the top) */
	const char *at;        /* its name relative to dirfd */
	const char *name;      /* its name in the stream: PATH's last component on */
	struct stat st;        /* lstat of it */
};

/* Called for each entry, a directory before its content; a negative
 * return stops the walk and is returned. */
typedef int (*nshm_walk_fn)(void *arg, const struct nshm_walk_entry *e);

/* Walks PATH (and what is below it when it is a directory). 0, the
 * callback's negative return, or -errno with the failing name in
 * failed (PATH_MAX bytes, may be NULL). */
int nshm_walk(const char *path, nshm_walk_fn fn, void *arg, char *failed);
/* The same from fd, an open file or directory, named name in the stream:
 * what was opened is walked, never a name looked up again (a pull). */
int nshm_walk_fd(int fd, const char *name, nshm_walk_fn fn, void *arg, char *failed);

#endif
