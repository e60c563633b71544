/* SPDX-License-Identifier: BSD-2-Clause */
/* One read for many regions: nshm-put with several targets. */
#ifndef NSHM_FANOUT_H
#define NSHM_FANOUT_H

#include "send.h"

/* Bytes a target may fall behind the fastest (nshm-put --buffer). */
#define FANOUT_BUFFER_DEFAULT (32u << 20)
#define FANOUT_BLOCK (1u << 20)
#define FANOUT_BUFFER_MIN (2 * FANOUT_BLOCK)   /* two: read one, send one */
#define FANOUT_BUFFER_MAX (1u << 30)

struct fanout_target {
	const char *arg;         /* as given, for messages */
	char endpoint[512];      /* without :SUBDIR */
	const char *subdir;      /* NULL: the receiver's directory */
};

/* Read what w names once and send it to every target at once (at least
 * two), each verified by its own receiver. Says per target what it got;
 * returns the exit status (nshm-put(1), "Several targets"). */
int fanout_send(struct cli *c, const struct send_what *w,
		const struct fanout_target *targets, int n, size_t buffer);

#endif
