/* SPDX-License-Identifier: BSD-2-Clause */
/* write() that finishes the job: short counts and EINTR are retried
 * unless the user asked to cancel. */
#include <errno.h>
#include <unistd.h>

#include "util.h"

int nshm_write_all(int fd, const void *buf, size_t len,
		   volatile sig_atomic_t *cancel)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR && !(cancel && *cancel))
				continue;
			return errno == EINTR ? -ECANCELED : -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
