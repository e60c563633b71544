/* SPDX-License-Identifier: BSD-2-Clause */
/* Confinement with openat2(2): the kernel resolves each path beneath a
 * directory file descriptor, so no check-then-use gap lets a component
 * that is a symlink (say one an earlier transfer made) lead elsewhere. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "beneath.h"

static int openat2_fd(int dirfd, const char *path, unsigned long long flags,
		      unsigned long long resolve)
{
	struct open_how how = { .flags = flags | O_CLOEXEC, .resolve = resolve };
	long fd;

	do
		fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN);   /* a rename raced the lookup */
	return fd < 0 ? -errno : (int)fd;
}

/* One component beneath dirfd, a directory and no symlink; made if missing. */
static int step(int dirfd, const char *name)
{
	const unsigned long long res = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
				       RESOLVE_NO_MAGICLINKS;
	int fd = openat2_fd(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW, res);

	if (fd == -ENOENT) {
		if (mkdirat(dirfd, name, 0777) != 0 && errno != EEXIST)
			return -errno;
		fd = openat2_fd(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW, res);
	}
	return fd;
}

static const char *why_of(int rc)
{
	return rc == -ELOOP ? "it is a symbolic link"
	     : rc == -ENOTDIR ? "it is not a directory"
	     : rc == -EXDEV ? "it leads outside the directory" : strerror(-rc);
}

int beneath_mkdirs(const char *base, const char *sub, char *out, size_t outlen,
		   char *msg, size_t msglen)
{
	char *copy = strdup(sub), *save = NULL, *name;
	int dirfd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int rc = 0, n;

	if (!copy || dirfd < 0) {
		rc = copy ? -errno : -ENOMEM;
		snprintf(msg, msglen, "%s: %s", base, strerror(-rc));
		goto out;
	}
	n = snprintf(out, outlen, "%s", base);
	for (name = strtok_r(copy, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
		int fd = step(dirfd, name);

		if (fd < 0) {
			rc = fd;
			snprintf(msg, msglen, "%s/%s: %s", out, name, why_of(rc));
			goto out;
		}
		close(dirfd);
		dirfd = fd;
		n += snprintf(out + n, outlen > (size_t)n ? outlen - (size_t)n : 0, "/%s", name);
		if ((size_t)n >= outlen) {
			rc = -ENAMETOOLONG;
			snprintf(msg, msglen, "%s: %s", sub, strerror(ENAMETOOLONG));
			goto out;
		}
	}
out:
	if (dirfd >= 0)
		close(dirfd);
	free(copy);
	return rc;
}

int beneath_resolve(const char *root, const char *path, char *out, size_t outlen,
		    char *msg, size_t msglen)
{
	char proc[64], buf[4096];
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int fd = -1, rc;
	ssize_t len;

	while (*path == '/')
		path++;
	if (rootfd < 0) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", root, strerror(-rc));
		return rc;
	}
	fd = *path ? openat2_fd(rootfd, path, O_PATH, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
		   : dup(rootfd);
	close(rootfd);
	if (fd < 0) {
		rc = fd;
		snprintf(msg, msglen, "%s: %s", path, why_of(rc));
		return rc;
	}
	/* The kernel's name for what it found: all later use goes by it. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	len = readlink(proc, buf, sizeof(buf) - 1);
	rc = len < 0 ? -errno : (size_t)len >= outlen ? -ENAMETOOLONG : 0;
	if (rc == 0) {
		memcpy(out, buf, (size_t)len);
		out[len] = '\0';
	} else {
		snprintf(msg, msglen, "%s: %s", path, strerror(-rc));
	}
	close(fd);
	return rc;
}
