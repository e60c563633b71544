/* SPDX-License-Identifier: BSD-2-Clause */
/* nshm-get --serve: the resident receiver. It takes transfer after
 * transfer under its directory until SIGTERM or SIGINT, and answers the
 * pulls --allow-pull lets it answer, as the sender, from beneath ROOT. */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "get.h"
#include "send.h"
#include "beneath.h"
#include "proto/layout.h"

/* After a failure that came at once, pause before the next wait. */
#define SERVE_PAUSE_MIN_NS 100000000LL
#define SERVE_PAUSE_MAX_NS 5000000000LL

/* What a pull asks for, opened beneath ROOT (beneath_open: a file or a
 * directory, nothing else) into *fd, with the name it goes by (its last
 * component; ROOT's own for ROOT), or the reason to refuse (said). */
static enum nshm_reason check_pull(struct get *g, const char *want, int *fd,
				   char *name, size_t len)
{
	char msg[PATH_MAX + 128];
	struct stat st;
	const char *last = want + strlen(want);
	size_t n;

	*fd = beneath_open(g->rootfd, want, &st, msg, sizeof(msg));
	if (*fd < 0) {
		cli_err(&g->cli, "refused a pull: %s", msg);
		return beneath_reason(*fd);
	}
	while (last > want && last[-1] == '/')
		last--;
	for (n = 0; last > want && last[-1] != '/'; n++)
		last--;
	if (n == 0)
		snprintf(name, len, "%s", basename(g->allow_pull));
	else
		snprintf(name, len, "%.*s", (int)n, last);
	return NSHM_R_NONE;
}

/* A pull the resident allows: take the (empty) request to its verified
 * end, give the receiving side back, then send what check_pull opened
 * (never its name again) as the sender, to the requester now waiting as
 * the receiver. */
int serve_pull(struct get *g, struct nshm_region *r, struct nshm_rx **rxp,
	       const struct nshm_meta *m)
{
	char name[NAME_MAX + 1];
	struct nshm_params p = g->cli.params;
	struct cli c = g->cli;
	const void *buf;
	char *files[1] = { name };
	int fd, rc;
	enum nshm_reason why = check_pull(g, m->path, &fd, name, sizeof(name));

	if (why != NSHM_R_NONE)
		return get_refuse(g, *rxp, why);
	nshm_rx_accept(*rxp);
	while ((rc = (int)nshm_rx_chunk(*rxp, &buf)) > 0)
		;   /* a request carries no data: anything is drained, checked */
	nshm_rx_complete(*rxp, rc == 0, rc == 0 ? NSHM_R_NONE : NSHM_R_PROTO);
	nshm_rx_close(*rxp, NSHM_R_IO);
	*rxp = NULL;
	if (rc < 0)
		goto out;
	/* The requester gives the sending side back as we give the receiving
	 * one: take turns, within the peer timeout. */
	p.flags |= NSHM_P_WAIT_BUSY;
	p.timeout_ms = p.peer_timeout_ms > 0 ? p.peer_timeout_ms : 15000;
	c.params = p;
	rc = send_what(&c, r, &(struct send_what){ .files = files, .nfiles = 1,
		.by_fd = true, .fd = fd, .name = name,
		.request = NSHM_REQ_REPLY, .path = m->path });
out:
	close(fd);
	return rc;
}

/* --serve: transfer after transfer until SIGTERM or SIGINT. A failure is
 * the peer's or this transfer's: logged, and the next one is waited for;
 * a region that keeps failing at once is retried with a growing pause. */
int serve(struct get *g, struct nshm_region *r)
{
	int64_t pause_ns = SERVE_PAUSE_MIN_NS;
	bool first = true;

	while (!cli_cancel) {
		int64_t t0 = cli_now_ns();
		int rc;

		g->offer_refused = false;
		rc = get_receive_one(g, r);

		if (cli_cancel)
			break;
		/* Another receiver holding the region at the start is a
		 * mistake to report; later, the side is shared in turns with
		 * a pull's requester. */
		if (first && rc == -NSHM_EBUSY)
			return rc;
		first = false;
		g->cli.params.flags |= NSHM_P_WAIT_BUSY;
		if (rc < 0 && !g->offer_refused && cli_now_ns() - t0 < SERVE_PAUSE_MAX_NS) {
			cli_sleep_ns(pause_ns);
			pause_ns = pause_ns * 2 < SERVE_PAUSE_MAX_NS ? pause_ns * 2
								   : SERVE_PAUSE_MAX_NS;
		} else {
			pause_ns = SERVE_PAUSE_MIN_NS;
		}
	}
	return 0;
}

