/* read()/write() that finish the job: short counts and EINTR are retried
 * unless the user asked to cancel. */
#include <errno.h>
#include <unistd.h>

#include "internal.h"

/* Fills buf unless end of file comes first; returns the count read. */
ssize_t nshm_read_full(int fd, void *buf, size_t len,
		       volatile sig_atomic_t *cancel)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR && !(cancel && *cancel))
				continue;
			return errno == EINTR ? -ECANCELED : -errno;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

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
