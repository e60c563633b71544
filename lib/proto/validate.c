/* SPDX-License-Identifier: BSD-2-Clause */
/* Checks on values copied out of the region: nothing from the peer is used
 * before it passes here. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"
#include "wire.h"

int finding_vset(struct finding *f, int rc, uint32_t reason, const char *fmt, va_list ap)
{
	vsnprintf(f->why, sizeof(f->why), fmt, ap);
	f->reason = reason;
	return rc;
}

int finding_set(struct finding *f, int rc, uint32_t reason, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rc = finding_vset(f, rc, reason, fmt, ap);
	va_end(ap);
	return rc;
}

/* 0 when the line is nshm's and our version, 1 when it holds nothing yet
 * (all zero, a fresh region), else -NSHM_EMAGIC / -NSHM_EVERSION. */
int validate_head(const struct head_snap *h, struct finding *f)
{
	/* No magic yet: a fresh region, or a claimant between its stores of
	 * version and magic (both relaxed): not nshm's to judge yet. */
	if (h->magic == 0)
		return 1;
	if (h->magic != NSHM_MAGIC) {
		return finding_set(f, -NSHM_EMAGIC, NSHM_R_PROTO,
				 "the region holds something that is not nshm (magic 0x%08x); "
			 "zero it or use another region", h->magic);
	}
	if (h->version != NSHM_VERSION) {
		return finding_set(f, -NSHM_EVERSION, NSHM_R_PROTO,
				 "the peer speaks nshm protocol version %u, this program version %u",
			 h->version, NSHM_VERSION);
	}
	return 0;
}

/* 0 if nslots slots of chunk bytes fit in a region of region_size. */
int validate_layout(uint32_t nslots, uint32_t chunk, size_t region_size)
{
	uint64_t need;

	if (nslots < 1 || nslots > NSHM_MAX_SLOTS)
		return -NSHM_EPROTO;
	if (chunk < NSHM_MIN_CHUNK || chunk > NSHM_MAX_CHUNK || chunk % 4096)
		return -NSHM_EPROTO;
	/* Bounded above by 64 * 256 MiB: no overflow in 64 bits. */
	need = NSHM_DATA_OFF + (uint64_t)nslots * chunk;
	if (need > region_size)
		return -NSHM_ETOOSMALL;
	return 0;
}

/* A single path component: no '/', not "." or "..", no control bytes. */
int validate_name(const char *name, size_t len)
{
	if (len == 0 || len > NSHM_NAME_MAX || strlen(name) != len)
		return -1;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '/' || c < 0x20 || c == 0x7f)
			return -1;
	}
	return 0;
}

int validate_request(const struct request_snap *q, uint64_t session, struct finding *f)
{
	const char *why;

	if (q->session != session) {
		return finding_set(f, -NSHM_EPROTO, NSHM_R_PROTO,
				 "request changed while it was read");
	}
	if (q->kind != NSHM_REQ_PUSH_TO && q->kind != NSHM_REQ_PULL &&
	    q->kind != NSHM_REQ_REPLY) {
		return finding_set(f, -NSHM_EPROTO, NSHM_R_PROTO,
				 "the sender made an unknown request (%u)", q->kind);
	}
	if (q->path_len > NSHM_REQ_PATH_MAX)
		return finding_set(f, -NSHM_EPROTO, NSHM_R_PROTO,
				 "the sender asked for a path longer than %d bytes",
				 NSHM_REQ_PATH_MAX);
	why = rel_path_problem(q->path, q->path_len, q->kind != NSHM_REQ_PUSH_TO);
	if (why)
		return finding_set(f, -NSHM_EPROTO, NSHM_R_PROTO,
				 "the sender asked for an unsafe path: %s", why);
	return 0;
}

int validate_offer(const struct offer_snap *o, uint64_t session,
		   struct nshm_meta *meta, struct finding *f)
{
	if (o->session != session) {
		return finding_set(f, -NSHM_EPROTO, NSHM_R_PROTO,
				 "offer changed while it was read");
	}
	if (o->flags & ~NSHM_OFFER_FLAGS) {
		return finding_set(f, -NSHM_EPROTO, NSHM_R_PROTO,
				 "offer has unknown flags 0x%x", o->flags);
	}
	if (o->mtime_nsec >= 1000000000u) {
		return finding_set(f, -NSHM_EPROTO, NSHM_R_PROTO,
				 "offer has a bad mtime");
	}
	memset(meta, 0, sizeof(*meta));
	if (o->name_len > NSHM_NAME_MAX ||
	    validate_name(o->name, o->name_len) != 0) {
		return finding_set(f, -NSHM_EPROTO, NSHM_R_PROTO,
				 "the sender offered an unsafe file name");
	}
	memcpy(meta->name, o->name, o->name_len);
	meta->name[o->name_len] = '\0';
	meta->size = o->size;
	meta->size_known = !!(o->flags & NSHM_OFFER_SIZE_KNOWN);
	meta->archive = !!(o->flags & NSHM_OFFER_ARCHIVE);
	meta->mode = o->mode & 07777;
	meta->mtime_sec = o->mtime_sec;
	meta->mtime_nsec = o->mtime_nsec;
	return 0;
}
