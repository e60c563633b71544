/* SPDX-License-Identifier: BSD-2-Clause */
/* proto/: the wire format as this side reads it (included by proto.h,
 * the wing's header; lib/README.md). Every read of the peer's lines, once
 * per value into private memory (peer_view.c), and the checks on what was
 * read (validate.c), which say what they found and never record it. */
#ifndef NSHM_PROTO_WIRE_H
#define NSHM_PROTO_WIRE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "nshm.h"

#define NSHM_WHY_LEN 512

struct nshm_region;

/* peer_view.c: every read of the peer's lines goes through here, once per
 * value, into private memory. */
struct head_snap {
	uint32_t magic, version;
	uint64_t owner, heartbeat;
	uint32_t pid;
	uint32_t bell;          /* owner's ivshmem peer ID + 1; 0: none */
	uint64_t pidns, boot[2];
	/* From the line's liveness record, only when it belongs to owner
	 * (else 0: not declared). */
	uint64_t start;
	uint32_t beat_ms;
};
struct tx_snap {
	struct head_snap head;
	uint64_t session, ready_echo, produced, total_len;
	uint32_t state, reason, nslots, chunk, total_crc;
};
struct rx_snap {
	struct head_snap head;
	uint64_t ready, session, consumed, bytes;
	uint32_t state, reason;
};
struct offer_snap {
	uint64_t session, size;
	uint32_t flags, mode, mtime_nsec, name_len;
	int64_t mtime_sec;
	char name[NSHM_NAME_MAX + 1];
};
struct request_snap {
	uint64_t session;
	uint32_t kind, path_len;
	char path[NSHM_REQ_PATH_MAX + 1];
};
struct desc_snap {
	uint64_t seq;
	uint32_t len, crc;
};
/* Either line's head, ours included: a rival of our own role may write it. */
void snap_head(const struct line_head *l, struct head_snap *h);
void snap_tx(const struct nshm_region *r, struct tx_snap *s);
void snap_rx(const struct nshm_region *r, struct rx_snap *s);
void snap_offer(const struct nshm_region *r, struct offer_snap *s);
void snap_desc(const struct nshm_region *r, uint32_t slot, struct desc_snap *s);
void snap_request(const struct nshm_region *r, struct request_snap *s);
/* The peer let go of its line or looks dead: its last word, read again. */
void snap_tx_last_word(const struct nshm_region *r, struct tx_snap *s);
void snap_rx_last_word(const struct nshm_region *r, struct rx_snap *s);
uint64_t peek_tx_produced(const struct nshm_region *r);
uint64_t peek_rx_consumed(const struct nshm_region *r);
uint32_t peek_tx_state(const struct nshm_region *r);
/* validate.c: the checks on what was copied out of the region. A check
 * never records a failure on a side: it says what it found in a finding
 * (the reason the peer is told, the message for a person) and returns the
 * code; the engine records it (side_record). */
struct finding {
	uint32_t reason;        /* enum nshm_reason */
	char why[NSHM_WHY_LEN];
};
/* Fill f; returns rc. */
int finding_set(struct finding *f, int rc, uint32_t reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int finding_vset(struct finding *f, int rc, uint32_t reason, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
int validate_head(const struct head_snap *h, struct finding *f);
int validate_layout(uint32_t nslots, uint32_t chunk, size_t region_size);
int validate_offer(const struct offer_snap *o, uint64_t session,
		   struct nshm_meta *meta, struct finding *f);
int validate_name(const char *name, size_t len);
/* A request's path: rel_path_problem's rule (util.h); absolute only for a
 * pull (it is taken under ROOT). */
int validate_request(const struct request_snap *q, uint64_t session, struct finding *f);

#endif
