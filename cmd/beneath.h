/* SPDX-License-Identifier: BSD-2-Clause */
/* Confinement by file descriptor: the one path-safety rule of the
 * programs. A path a peer names (a push's SUBDIR, a pull's PATH) is
 * resolved once, from an fd of the directory the user chose, by the
 * kernel (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS); from then on only the fd it gave is used, never
 * the name again, so no rename or symlink swap can redirect it. */
#ifndef NSHM_BENEATH_H
#define NSHM_BENEATH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "nshm.h"

/* The syntactic rule, the same for the sender (nshm-put checks SUBDIR
 * before any transfer) and the receiver: the library's rel_path_problem.
 * 0, or -EINVAL with "bad WHAT 'PATH': why" in msg. */
int beneath_check(const char *what, const char *path, bool allow_abs,
		  char *msg, size_t msglen);

/* sub beneath dirfd as a directory, each component looked up with no
 * symlink at all and made if missing (mkdirat, then openat2 again). An
 * O_PATH fd of it, or -errno with a message. */
int beneath_mkdirs(int dirfd, const char *sub, char *msg, size_t msglen);

/* path beneath rootfd (a leading '/' means rootfd itself), opened for
 * reading O_NONBLOCK | O_NOFOLLOW | O_NOCTTY and checked with fstat into
 * st: a regular file or a directory, nothing else (a FIFO, a device or a
 * socket is refused with -EINVAL). The fd, or -errno with a message. */
int beneath_open(int rootfd, const char *path, struct stat *st, char *msg,
		 size_t msglen);

/* What a refusal from the functions above tells the peer. */
enum nshm_reason beneath_reason(int rc);

#endif
