/* SPDX-License-Identifier: BSD-2-Clause */
/* Sending a file or a set of files: nshm-put, and a resident nshm-get
 * answering a pull. */
#ifndef NSHM_SEND_H
#define NSHM_SEND_H

#include "cli.h"

struct send_what {
	char **files;            /* "-" is standard input (alone) */
	int nfiles;
	const char *name;        /* offer this name (one file), or NULL */
	bool by_fd;              /* send fd, an open file or directory named
				    name, instead of opening files[0] */
	int fd;
	uint32_t request;        /* NSHM_REQ_*, 0 = none */
	const char *path;        /* with request */
};

/* Offer and send what w names through r; 0 once the receiver verified it.
 * Failures are reported on stderr through c. */
int send_what(struct cli *c, struct nshm_region *r, const struct send_what *w);

/* The pieces fan-out (fanout.c) shares: what to offer for one file (fd
 * open on it), or for a set of files; whether w is a set. */
int send_describe(const struct send_what *w, const char *file, int fd,
		  struct nshm_meta *m);
int send_tree_meta(struct cli *c, const struct send_what *w, struct nshm_meta *meta);
bool send_wants_archive(const struct send_what *w);

#endif
