/* One loop for every wait on the peer: the condition decides, the doorbell
 * paces, and a deadline and the cancel flag bound it. */
#include <errno.h>

#include "internal.h"

int wait_until(struct nshm_bell *b, wait_cond cond, void *arg,
	       int64_t deadline_ns, volatile sig_atomic_t *cancel)
{
	b->reset(b);
	for (;;) {
		int rc = cond(arg);
		int64_t left;

		if (rc != WAIT_MORE)
			return rc == WAIT_DONE ? 0 : rc;
		if (cancel && *cancel)
			return -ECANCELED;
		left = deadline_ns ? deadline_ns - nshm_now_ns() : 1000000;
		if (left <= 0)
			return -ETIMEDOUT;
		b->wait(b, left);
	}
}
