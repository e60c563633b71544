/* SPDX-License-Identifier: BSD-2-Clause */
/* The shared region's layout, of the protocol version NSHM_PROTOCOL_VERSION
 * (lib/nshm.h) specifies (see man/nshm.7).
 *
 * Internal to libnshm. Everything here lives in memory the peer can write
 * at any moment; only lib/proto/peer_view.c reads the peer's parts, and it copies
 * each value out once before anything validates or uses it.
 */
#ifndef NSHM_LAYOUT_H
#define NSHM_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "nshm.h"

/* nshm(7): "All integers are little-endian". The fields are stored in the
 * CPU's order, so a big-endian build would speak another protocol. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "nshm's region layout is little-endian (nshm(7)); this build is not: fields would need byte swaps"
#endif

#define NSHM_MAGIC      0x4d48534eu /* "NSHM" in memory on little-endian */
#define NSHM_VERSION    ((uint32_t)NSHM_PROTOCOL_VERSION)
#define NSHM_TX_OFF     0u          /* sender's control line */
#define NSHM_RX_OFF     256u        /* receiver's control line */
#define NSHM_OFFER_OFF  512u        /* sender: stream metadata */
#define NSHM_DESC_OFF   1024u       /* sender: one descriptor per slot */
#define NSHM_REQ_OFF    2048u       /* sender: a request to a resident receiver */
#define NSHM_DATA_OFF   4096u       /* slots start here, page aligned */
/* NSHM_MAX_SLOTS, NSHM_MIN_CHUNK, NSHM_MAX_CHUNK: lib/nshm.h (callers
 * check their options against them). */
#define NSHM_NAME_MAX   255u

/* Sender states (tx_line.state). */
enum { TX_IDLE = 0, TX_OFFER = 1, TX_END = 2, TX_ABORT = 3 };
/* tx_line.total_len from the offer until the end record. */
#define NSHM_NO_END_LEN UINT64_MAX
/* Receiver states (rx_line.state). */
enum { RX_IDLE = 0, RX_READY = 1, RX_ACCEPT = 2, RX_REFUSE = 3,
       RX_DONE = 4, RX_FAIL = 5, RX_ABORT = 6 };

/* Offer flags. */
#define NSHM_OFFER_SIZE_KNOWN 0x1u
#define NSHM_OFFER_ARCHIVE    0x2u
#define NSHM_OFFER_REQUEST    0x4u  /* the request record belongs to this offer */
#define NSHM_OFFER_FLAGS      0x7u

/* Identity of a claim's owner, so a dead owner on the same kernel (same
 * boot id and pid namespace) is seen at once instead of after the heartbeat
 * timeout. */
struct owner_id {
	_Atomic uint32_t pid;
	_Atomic uint32_t bell;     /* ivshmem peer ID + 1 to ring; 0: poll */
	_Atomic uint64_t pidns;    /* inode of /proc/self/ns/pid */
	_Atomic uint64_t boot[2];  /* /proc/sys/kernel/random/boot_id */
};

/* At NSHM_LIVE_OFF in each control line, after the fields of either:
 * how its owner can be judged dead quickly (nshm(7), CLAIMS AND
 * LIVENESS). Valid only while owner equals the line's owner: a program
 * that does not write it (older builds of protocol 2) leaves another
 * token there, and is judged by the peer timeout as before. */
#define NSHM_LIVE_OFF 128u
struct line_live {
	_Atomic uint64_t owner;    /* the claim token this record belongs to */
	_Atomic uint64_t start;    /* owner's start time, clock ticks after
				      boot (/proc/PID/stat field 22); 0: unknown */
	_Atomic uint32_t beat_ms;  /* the heartbeat period in force, ms */
	_Atomic uint32_t pad;
};

/* The part both control lines share: who holds the line and is it alive. */
struct line_head {
	_Atomic uint32_t magic;
	_Atomic uint32_t version;
	_Atomic uint64_t owner;       /* claim token, 0 = free (CAS) */
	_Atomic uint64_t heartbeat;   /* bumped every 50 ms by a thread */
	struct owner_id id;
};

/* Written only by the sender. */
struct tx_line {
	struct line_head head;
	_Atomic uint64_t session;     /* id of the offer in force */
	_Atomic uint64_t ready_echo;  /* the receiver's ready nonce it answers */
	_Atomic uint32_t state;
	_Atomic uint32_t reason;      /* why, with TX_ABORT */
	_Atomic uint64_t produced;    /* chunks published: the doorbell counter */
	_Atomic uint32_t nslots;
	_Atomic uint32_t chunk;
	_Atomic uint64_t total_len;   /* with TX_END; NSHM_NO_END_LEN before */
	_Atomic uint32_t total_crc;   /* with TX_END */
	_Atomic uint32_t pad;
	unsigned char gap[NSHM_LIVE_OFF - 112];
	struct line_live live;
};

/* Written only by the receiver. */
struct rx_line {
	struct line_head head;
	_Atomic uint64_t ready;       /* fresh nonce for each readiness */
	_Atomic uint64_t session;     /* the offer it answers */
	_Atomic uint32_t state;
	_Atomic uint32_t reason;      /* with RX_REFUSE / RX_FAIL / RX_ABORT */
	_Atomic uint64_t consumed;    /* chunks freed: the doorbell back */
	_Atomic uint64_t bytes;       /* bytes written so far, for nshm-stat */
	unsigned char gap[NSHM_LIVE_OFF - 96];
	struct line_live live;
};

/* Written by the sender before it publishes TX_OFFER. */
struct offer {
	_Atomic uint64_t session;
	_Atomic uint64_t size;
	_Atomic uint32_t flags;
	_Atomic uint32_t mode;
	_Atomic int64_t  mtime_sec;
	_Atomic uint32_t mtime_nsec;
	_Atomic uint32_t name_len;
	unsigned char name[NSHM_NAME_MAX + 1];
};

/* Written by the sender with an offer that has NSHM_OFFER_REQUEST: what it
 * asks of the receiver (nshm.h's NSHM_REQ_*) and the path that goes with it. */
struct request {
	_Atomic uint64_t session;     /* the offer's */
	_Atomic uint32_t kind;
	_Atomic uint32_t path_len;
	unsigned char path[NSHM_REQ_PATH_MAX + 1];
};

struct slot_desc {
	_Atomic uint64_t seq;
	_Atomic uint32_t len;
	_Atomic uint32_t crc;
};

_Static_assert(sizeof(struct tx_line) <= NSHM_RX_OFF - NSHM_TX_OFF, "tx line");
_Static_assert(sizeof(struct rx_line) <= NSHM_OFFER_OFF - NSHM_RX_OFF, "rx line");
_Static_assert(sizeof(struct offer) <= NSHM_DESC_OFF - NSHM_OFFER_OFF, "offer");
_Static_assert(NSHM_MAX_SLOTS * sizeof(struct slot_desc) <=
	       NSHM_REQ_OFF - NSHM_DESC_OFF, "descriptors");
_Static_assert(sizeof(struct request) <= NSHM_DATA_OFF - NSHM_REQ_OFF, "request");

/* Every offset nshm(7) documents, checked by the compiler: a change to a
 * struct above that moves a field fails the build instead of the protocol. */
#define NSHM_AT(type, field, off) \
	_Static_assert(offsetof(type, field) == (off), #type "." #field " at " #off " (nshm(7))")
/* LAYOUT: the region. */
_Static_assert(NSHM_TX_OFF == 0 && NSHM_RX_OFF == 256 && NSHM_OFFER_OFF == 512 &&
	       NSHM_DESC_OFF == 1024 && NSHM_DATA_OFF == 4096, "region offsets (nshm(7))");
_Static_assert(NSHM_MAX_SLOTS == 64 && sizeof(struct slot_desc) == 16 &&
	       NSHM_MIN_CHUNK == 4096 && NSHM_MAX_CHUNK == 64u << 20,
	       "slot and chunk limits (nshm(7))");
/* The head both control lines begin with: 56 bytes every version keeps. */
NSHM_AT(struct line_head, magic, 0);
NSHM_AT(struct line_head, version, 4);
NSHM_AT(struct line_head, owner, 8);
NSHM_AT(struct line_head, heartbeat, 16);
NSHM_AT(struct line_head, id.pid, 24);
NSHM_AT(struct line_head, id.bell, 28);
NSHM_AT(struct line_head, id.pidns, 32);
NSHM_AT(struct line_head, id.boot, 40);
_Static_assert(sizeof(struct line_head) == 56, "head is 56 bytes (nshm(7))");
/* Sender control line (the receiver's below mirrors it on purpose: the
 * offsets nshm(7) gives for each). */
NSHM_AT(struct tx_line, head, 0);
NSHM_AT(struct tx_line, session, 56);
NSHM_AT(struct tx_line, ready_echo, 64);
NSHM_AT(struct tx_line, state, 72);
NSHM_AT(struct tx_line, reason, 76);
NSHM_AT(struct tx_line, produced, 80);
NSHM_AT(struct tx_line, nslots, 88);
NSHM_AT(struct tx_line, chunk, 92);
NSHM_AT(struct tx_line, total_len, 96);
NSHM_AT(struct tx_line, total_crc, 104);
/* Receiver control line. */
NSHM_AT(struct rx_line, head, 0);
NSHM_AT(struct rx_line, ready, 56);
NSHM_AT(struct rx_line, session, 64);
NSHM_AT(struct rx_line, state, 72);
NSHM_AT(struct rx_line, reason, 76);
NSHM_AT(struct rx_line, consumed, 80);
NSHM_AT(struct rx_line, bytes, 88);
/* The liveness record, at the same place in both lines. */
NSHM_AT(struct tx_line, live, NSHM_LIVE_OFF);
NSHM_AT(struct rx_line, live, NSHM_LIVE_OFF);
_Static_assert(NSHM_LIVE_OFF == 128, "liveness record offset (nshm(7))");
NSHM_AT(struct line_live, owner, 0);
NSHM_AT(struct line_live, start, 8);
NSHM_AT(struct line_live, beat_ms, 16);
_Static_assert(sizeof(struct line_live) == 24, "liveness record is 24 bytes (nshm(7))");
/* Offer. */
NSHM_AT(struct offer, session, 0);
NSHM_AT(struct offer, size, 8);
NSHM_AT(struct offer, flags, 16);
NSHM_AT(struct offer, mode, 20);
NSHM_AT(struct offer, mtime_sec, 24);
NSHM_AT(struct offer, mtime_nsec, 32);
NSHM_AT(struct offer, name_len, 36);
NSHM_AT(struct offer, name, 40);
_Static_assert(sizeof(((struct offer *)0)->name) == 256, "offer name is 256 bytes (nshm(7))");
/* Request (protocol 2). */
_Static_assert(NSHM_REQ_OFF == 2048, "request offset (nshm(7))");
NSHM_AT(struct request, session, 0);
NSHM_AT(struct request, kind, 8);
NSHM_AT(struct request, path_len, 12);
NSHM_AT(struct request, path, 16);
_Static_assert(sizeof(((struct request *)0)->path) == 1025, "request path (nshm(7))");
/* Slot descriptor. */
NSHM_AT(struct slot_desc, seq, 0);
NSHM_AT(struct slot_desc, len, 8);
NSHM_AT(struct slot_desc, crc, 12);
#undef NSHM_AT

#define TX(base)      ((struct tx_line *)((char *)(base) + NSHM_TX_OFF))
#define RX(base)      ((struct rx_line *)((char *)(base) + NSHM_RX_OFF))
#define OFFER(base)   ((struct offer *)((char *)(base) + NSHM_OFFER_OFF))
#define REQUEST(base) ((struct request *)((char *)(base) + NSHM_REQ_OFF))
#define DESC(base, i) ((struct slot_desc *)((char *)(base) + NSHM_DESC_OFF) + (i))
/* A control line's liveness record, from its head (either line). */
#define LIVE(head) ((struct line_live *)((char *)(head) + NSHM_LIVE_OFF))

#endif
