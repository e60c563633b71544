/* SPDX-License-Identifier: BSD-2-Clause */
/* Paths the peer names, resolved beneath a directory the user chose:
 * never through a symbolic link out of it, never above it. */
#ifndef NSHM_BENEATH_H
#define NSHM_BENEATH_H

#include <stddef.h>

/* base/sub as a directory: each component of sub (relative, checked by
 * the library) is looked up with RESOLVE_BENEATH and no symlinks at all,
 * and made if missing. The path is left in out. 0 or -errno, with a
 * message in msg. */
int beneath_mkdirs(const char *base, const char *sub, char *out, size_t outlen,
		   char *msg, size_t msglen);

/* path (a leading '/' means root itself) beneath root: symlinks that stay
 * beneath are followed, none that leave. Its real path in out, and 0 or
 * -errno with a message. */
int beneath_resolve(const char *root, const char *path, char *out, size_t outlen,
		    char *msg, size_t msglen);

#endif
