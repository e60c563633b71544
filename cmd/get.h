/* SPDX-License-Identifier: BSD-2-Clause */
/* nshm-get's two halves: the receiver of one transfer (nshm-get.c: options,
 * targets, files and trees) and the resident (serve.c: --serve's loop and
 * the pulls it answers). */
#ifndef NSHM_GET_H
#define NSHM_GET_H

#include <limits.h>
#include <sys/types.h>

#include "cli.h"

struct get {
	struct cli cli;
	const char *source;
	const char *dest;
	bool force, owner;
	mode_t umask;     /* applied to the peer's modes unless --preserve-owner */
	bool serve;       /* --serve: take transfer after transfer */
	const char *pull; /* --pull PATH: ask a resident receiver for PATH */
	char allow_pull[PATH_MAX];   /* --allow-pull ROOT, its real path */
	int rootfd;                  /* ROOT, opened once: pulls resolve beneath it */
	int destfd;                  /* --serve: DIR, opened once */
	/* This transfer's directory (DIR or DIR/SUBDIR) as an fd, or -1 for
	 * the user's DEST, opened by its name; where names it in messages. */
	int wherefd;
	const char *where;
	char where_buf[PATH_MAX];
	/* The last offer was refused by us, an answer given at once (a
	 * SUBDIR or PATH we do not allow): --serve need not pause after it. */
	bool offer_refused;
};

/* nshm-get.c */
/* One transfer: wait for an offer, take it, give the side back. */
int get_receive_one(struct get *g, struct nshm_region *r);
/* Refuse the offer for why (said already); the error to return. */
int get_refuse(struct get *g, struct nshm_rx *rx, enum nshm_reason why);

/* serve.c */
/* --serve: transfer after transfer until SIGTERM or SIGINT. */
int serve(struct get *g, struct nshm_region *r);
/* A pull the resident allows (--allow-pull), answered as the sender. */
int serve_pull(struct get *g, struct nshm_region *r, struct nshm_rx **rxp,
	       const struct nshm_meta *m);

#endif
