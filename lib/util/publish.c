/* SPDX-License-Identifier: BSD-2-Clause */
/* The one way received bytes reach a name (nshm-get's file, a tree's
 * entries): written under a temporary name beside the final one, then
 * renamed over to it once complete and verified, never over something
 * that exists unless the caller was told to replace it.
 *
 * fsync policy: none, here or before the rename. The rename publishes a
 * file whose every byte was verified against the sender's CRC; what the
 * page cache holds after a crash is the file system's to keep, as for cp
 * or tar (ext4 and xfs flush a file renamed over another one first). A
 * caller that needs more syncs the fd itself. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

void nshm_temp_name(char tmp[NSHM_TEMP_LEN], uint64_t *seed)
{
	static const char az[] = "abcdefghijklmnopqrstuvwxyz"
				 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	uint64_t r;

	if (seed) {
		/* xorshift64: cheap names for a tree's many entries; a taken
		 * one costs a retry (O_EXCL decides, not the name). */
		*seed ^= *seed << 13;
		*seed ^= *seed >> 7;
		*seed ^= *seed << 17;
		r = *seed;
	} else {
		r = nshm_random64();
	}
	memcpy(tmp, NSHM_TEMP_PREFIX, 6);
	for (int i = 0; i < 6; i++, r /= 62)
		tmp[6 + i] = az[r % 62];
	tmp[12] = '\0';
}

int nshm_temp_open(int dirfd, char tmp[NSHM_TEMP_LEN], mode_t mode, uint64_t *seed)
{
	for (int tries = 0; tries < 16; tries++) {
		int fd;

		nshm_temp_name(tmp, seed);
		fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    mode);
		if (fd >= 0 || errno != EEXIST)
			return fd < 0 ? -errno : fd;
	}
	return -EEXIST;
}

int nshm_publish(int dirfd, const char *tmp, const char *name, bool replace)
{
	int rc = renameat2(dirfd, tmp, dirfd, name, replace ? 0 : RENAME_NOREPLACE);

	if (rc != 0 && errno == EINVAL && !replace) {
		/* No RENAME_NOREPLACE on this file system: link() refuses too. */
		rc = linkat(dirfd, tmp, dirfd, name, 0);
		if (rc == 0)
			unlinkat(dirfd, tmp, 0);
	}
	return rc == 0 ? 0 : -errno;
}
