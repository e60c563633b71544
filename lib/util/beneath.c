/* SPDX-License-Identifier: BSD-2-Clause */
/* The one confinement of a path from a peer: resolved by the kernel
 * beneath a directory fd, with no symlink at all (a component that is one,
 * even one that stays beneath, "..", or a magic link fails the lookup).
 * What the lookup found is the fd returned; nothing is resolved by name
 * again. cmd/beneath.c (a push's SUBDIR, a pull's PATH) and the tree
 * receiver (an entry's parent directory, lib/tree/rx_dest.c) both open
 * through here. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

#define RESOLVE_PEER (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

int nshm_open_beneath(int dirfd, const char *path, int flags)
{
	struct open_how how = { .flags = (unsigned)flags | O_CLOEXEC, .resolve = RESOLVE_PEER };
	long fd;

	do
		fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN);   /* a rename raced the lookup */
	return fd < 0 ? -errno : (int)fd;
}
