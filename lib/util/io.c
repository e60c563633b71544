/* SPDX-License-Identifier: BSD-2-Clause */
/* write() that finishes the job: short counts and EINTR are retried
 * unless the user asked to cancel. The only such loop in nshm. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <unistd.h>

#include "util.h"

int nshm_pwrite_all(int fd, const void *buf, size_t len, off_t off,
		    volatile sig_atomic_t *cancel)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = off < 0 ? write(fd, p, len) : pwrite(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR && !(cancel && *cancel))
				continue;
			return errno == EINTR ? -ECANCELED : -errno;
		}
		p += n;
		len -= (size_t)n;
		if (off >= 0)
			off += n;
	}
	return 0;
}
