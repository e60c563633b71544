/* SPDX-License-Identifier: BSD-2-Clause */
/* The one confinement of a path from a peer: resolved by the kernel
 * beneath a directory fd, with no symlink at all (a component that is one,
 * even one that stays beneath, "..", or a magic link fails the lookup).
 * What the lookup found is the fd returned; nothing is resolved by name
 * again. cmd/beneath.c (a push's SUBDIR, a pull's PATH) opens through
 * here; the tree receiver (lib/tree/rx_dest.c) walks an entry's parents
 * one name at a time with nshm_open_child, the same rule for one name. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
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

/* One name, so there is no path to resolve: no '/' to walk, no ".." to
 * climb, and O_NOFOLLOW refuses the name if it is a symlink (magic links
 * are symlinks too). That is what openat2 with RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS would do for one name, so a
 * walk by these steps needs no openat2 (Linux before 5.6, a seccomp
 * filter) and no fallback: it is one code path everywhere. */
int nshm_open_child(int dirfd, const char *name, int flags)
{
	int fd;

	if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}
