/* SPDX-License-Identifier: BSD-2-Clause */
/* What the sending and the receiving side share: the region, the caller's
 * parameters, our claim and its heartbeat, the doorbell, the watch on the
 * peer, the byte and CRC totals, and the one way a failure is recorded. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "proto.h"

#define ANNOUNCE_NS 200000000  /* say "waiting" only after 0.2 s */
/* A peer in a session beats every 50 ms, every 0.5 s at most when it
 * waits: silent this long, it is worth a word. */
#define SILENT_SAY_NS 1500000000LL

int side_begin(struct side *s, struct nshm_region *r, const struct nshm_params *p,
	       struct line_head *own, const struct line_head *peer, const char *role)
{
	struct finding f;
	int rc;

	s->r = r;
	s->watch.r = r;
	s->p = *p;
	s->started_ns = nshm_now_ns();
	s->digesting = p->flags & NSHM_P_DIGEST;
	nshm_sha256_init(&s->sha);
	if ((rc = nshm_check_params(p)) < 0)
		return side_fail(s, rc, NSHM_R_NONE, "reserved parameter fields are not zero");
	nshm_bell_init(&s->bell, r, peer);
	rc = claim_take(&s->claim, r, &s->p, own, role, &f);
	/* A long wait slows our heartbeat (wait_until sets its pace). */
	s->bell.claim = &s->claim;
	return rc < 0 ? side_record(s, rc, &f) : rc;
}

int side_fail(struct side *s, int rc, uint32_t reason, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rc = finding_vset(&s->fail, rc, reason, fmt, ap);
	va_end(ap);
	return rc;
}

int side_record(struct side *s, int rc, const struct finding *f)
{
	s->fail = *f;
	return rc;
}

void side_announce(struct side *s, const char *what)
{
	char msg[NSHM_WHY_LEN];

	if (s->announced || !s->p.waiting || nshm_now_ns() - s->started_ns <= ANNOUNCE_NS)
		return;
	s->announced = true;
	snprintf(msg, sizeof(msg), "waiting for %s on %s", what, s->r->path);
	s->p.waiting(s->p.arg, msg);
}

void side_peer_silent(struct side *s, const struct head_snap *peer, const char *role)
{
	int64_t still = watch_still_ns(&s->watch);
	char msg[NSHM_WHY_LEN];

	if (s->said_silent || !s->p.waiting || still < SILENT_SAY_NS)
		return;
	s->said_silent = true;
	snprintf(msg, sizeof(msg), "the %s on %s (pid %u%s) has been silent for %.1f s; "
		 "it is given up for dead at %.1f s (--peer-timeout)", role, s->r->path,
		 peer->pid, head_same_kernel(peer) ? "" : " on the other side",
		 (double)still / 1e9, (double)peer_timeout_ns(&s->p) / 1e9);
	s->p.waiting(s->p.arg, msg);
}

/* Once, at the end: 0 with the digest, -EINVAL if none was asked for or
 * the stream did not end verified. */
int side_digest_final(struct side *s, bool ended, unsigned char out[32])
{
	if (!s->digesting || !ended)
		return -EINVAL;
	nshm_sha256_final(&s->sha, out);
	s->digesting = false;
	return 0;
}
