/* SPDX-License-Identifier: BSD-2-Clause */
/* proto: the wire format and the protocol engine (lib/README.md):
 * the region's layout (layout.h), every read of the peer's lines
 * (peer_view.c) and the checks on them (validate.c), both in wire.h,
 * which this header includes; our claim on a line
 * and the peer's liveness, waits and bells, the sides (side.c, tx.c, rx.c),
 * nshm_stat and the reasons' names.
 * May include: lib/endpoint/, lib/doorbell/, lib/util/, lib/nshm.h. */
#ifndef NSHM_PROTO_H
#define NSHM_PROTO_H

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "endpoint/endpoint.h"
#include "layout.h"
#include "nshm.h"
#include "util/util.h"
#include "wire.h"

#define NSHM_DEFAULT_SLOTS 2u
#define NSHM_DEFAULT_CHUNK (2u << 20)
#define NSHM_DEFAULT_PEER_TIMEOUT_MS 15000
#define NSHM_HEARTBEAT_MS 50
#define NSHM_IDLE_BEAT_MS 500
/* line_live.beat_ms of an owner that sleeps until rung: idle, with a
 * doorbell, it beats only when woken (nshm(7), DOORBELLS). A claimant
 * that can ring it rings and judges it over NSHM_LAPSE_MIN_NS; one that
 * cannot, as an owner that declared nothing (older programs read the
 * value so too: the peer timeout). */
#define NSHM_BEAT_ON_RING 0xffffffffu
/* A claim whose owner cannot be checked by its pid (another kernel or pid
 * namespace) is dead once its heartbeat has stood still for
 * NSHM_LAPSE_BEATS of the periods the owner declares (line_live.beat_ms),
 * and at least NSHM_LAPSE_MIN_NS, never longer than the peer timeout. */
#define NSHM_LAPSE_BEATS 4
#define NSHM_LAPSE_MIN_NS 2000000000LL

/* identity.c: who we are, to recognise our own kernel's dead owners. */
struct nshm_self {
	uint32_t pid;
	uint64_t pidns;
	uint64_t boot[2];
	uint64_t start;         /* clock ticks after boot; 0: unknown */
	bool proc_ours;         /* /proc is of our pid namespace */
};
const struct nshm_self *nshm_self(void);
/* pid's state letter and start time from /proc/PID/stat: 0, or -errno
 * (-ESRCH: no such process). */
int nshm_proc_stat(uint32_t pid, char *state, uint64_t *start);

/* liveness.c: is the owner of a line alive? */
struct peer_watch {
	uint64_t owner, heartbeat;
	int64_t changed_ns;     /* when heartbeat last moved (or watch start) */
	bool moved;             /* seen it move at least once */
	bool pinned;            /* in a session: another owner is a dead peer */
	struct nshm_region *r;  /* set once (side_begin): its doorbell's hints */
};
/* The owner of h runs on our kernel, in our pid namespace: its pid means
 * something here. */
bool head_same_kernel(const struct head_snap *h);
void watch_reset(struct peer_watch *w, const struct head_snap *h);
void watch_pin(struct peer_watch *w);
/* 1 alive, 0 unknown yet, -1 dead (pid gone or silent past timeout). */
int watch_update(struct peer_watch *w, const struct head_snap *h,
		 int64_t timeout_ns);
/* How long the heartbeat of h's owner must stand still before a claimant
 * may take its line over (nshm(7), CLAIMS AND LIVENESS); rung: the
 * claimant rings an owner asleep until rung (NSHM_BEAT_ON_RING). */
int64_t lapse_ns(const struct head_snap *h, int64_t peer_timeout_ns, bool rung);
/* Nanoseconds the watched heartbeat has stood still. */
int64_t watch_still_ns(const struct peer_watch *w);

/* claim.c takes our own line, beat.c holds it with a heartbeat thread. */
struct claim {
	struct line_head *line;
	uint64_t token;
	pthread_t thread;
	pthread_mutex_t lock;   /* with wake: stop the beat without waiting */
	pthread_cond_t wake;
	bool stop;
	bool running;
	/* Set by the side's waits (claim_pace), under lock: a long wait beats
	 * slowly (idle_beat_ms), so an idle waiter costs few wake-ups; one
	 * that sleeps until rung beats only when woken (claim_beat). */
	enum claim_pace { PACE_BUSY, PACE_IDLE, PACE_ON_RING } pace;
	int idle_beat_ms;
};
/* Take line of region r as role ("sender"), with p's timeouts: 0, or the
 * code with what went wrong in f. */
int claim_take(struct claim *c, struct nshm_region *r, const struct nshm_params *p,
	       struct line_head *line, const char *role, struct finding *f);
/* beat.c: holding it. Write our identity and start the heartbeat: 0 or
 * -errno (the line given back). */
int claim_hold(struct claim *c, const struct nshm_region *r);
/* The only arbiter between claimants (seq_cst compare-and-swap). */
bool claim_cas(struct line_head *l, uint64_t from, uint64_t to);
bool claim_held(const struct claim *c);
void claim_release(struct claim *c);
/* The heartbeat's pace from now on; PACE_ON_RING declares
 * NSHM_BEAT_ON_RING and stops the beat thread until the pace changes. */
void claim_pace(struct claim *c, enum claim_pace pace);
/* Our line's bell word from now on (our doorbell joined its server anew):
 * true if it changed. */
bool claim_bell(struct claim *c, uint32_t word);
/* One beat from the caller's thread: a side asleep until rung was woken. */
void claim_beat(struct claim *c);

/* bell.c: how a side waits for its peer and wakes it: polling the
 * counters, or an interrupt doorbell (r->db) with polling as the floor. */
struct nshm_bell {
	void (*ring)(struct nshm_bell *b);
	/* Wait up to max_ns or until rung; the caller re-checks its condition. */
	void (*wait)(struct nshm_bell *b, int64_t max_ns);
	void (*reset)(struct nshm_bell *b);  /* condition moved: spin again */
	unsigned spins;
	int64_t sleep_ns;
	int64_t fine_until_ns;            /* polling: look often until then */
	bool handshake;                   /* set by wait_handshake */
	struct nshm_region *r;            /* fd bell: the region's doorbell */
	const struct line_head *peer;     /* fd bell: whom ring() wakes */
	int64_t woke_ns;                  /* fd bell: last wake-up by a ring */
	bool idle;                        /* set by wait_until: a long wait */
	bool on_ring;                     /* fd bell: asleep until rung */
	bool deep;                        /* a wait senders ring: no spin,
					     idle asleep until rung (a
					     receiver's for an offer) */
	struct claim *claim;              /* ours, whose pace the waits set */
	/* Polling, a receiver's wait for an offer: the sender's ready_echo,
	 * asleep in futex(2) on its low half until it holds echo_want (one
	 * kernel: nshm_offer_wake); NULL, or futex_off: nanosleep. */
	const _Atomic uint64_t *echo;
	uint32_t echo_want;
	bool futex_off;                   /* futex(2) refused this mapping */
};
/* A wait this long is idle: the bell sleeps longer, the heartbeat slows. */
#define NSHM_IDLE_AFTER_NS 2000000000LL
void bell_init_polling(struct nshm_bell *b);
/* The fd bell when r has a doorbell, else polling; peer is the line whose
 * owner ring() wakes (its `bell` field says how). */
void nshm_bell_init(struct nshm_bell *b, struct nshm_region *r,
		    const struct line_head *peer);
/* A sender's offer is out (ready_echo, then state, stored): wake a
 * receiver on this kernel asleep on ready_echo (bell.c). */
void nshm_offer_wake(const _Atomic uint64_t *echo);
/* Whether the owner of h, if it sleeps until rung, can be woken by us. */
bool bell_reaches(const struct nshm_bell *b, const struct head_snap *h);

/* wait.c: wait for a condition with deadline, cancel and peer checks. */
/* What a condition says; wait_until returns 0 for WAIT_DONE, WAIT_OTHER
 * as it is (a condition's second way to end: "offer again", "the stream
 * ended"), and a negative code as it is. */
enum wait_result { WAIT_MORE = 0, WAIT_DONE = 1, WAIT_OTHER = 2 };
typedef int (*wait_cond)(void *arg);  /* enum wait_result or < 0 */
int wait_until(struct nshm_bell *b, wait_cond cond, void *arg,
	       int64_t deadline_ns, volatile sig_atomic_t *cancel);
/* The same for a step of a handshake, which the peer answers within a
 * moment: polling looks often at first (bell.c, FINE_NS). The data path's
 * waits, which can last as long as the slower side takes, use wait_until. */
int wait_handshake(struct nshm_bell *b, wait_cond cond, void *arg,
		   int64_t deadline_ns, volatile sig_atomic_t *cancel);

/* A reason the peer wrote: one we know, or "protocol error". */
static inline uint32_t peer_reason(uint32_t reason)
{
	return reason < NSHM_R_MAX ? reason : NSHM_R_PROTO;
}

/* side.c: what nshm_tx and nshm_rx both hold (each begins with one). */
struct side {
	struct nshm_region *r;
	struct nshm_params p;
	struct claim claim;
	struct nshm_bell bell;
	struct peer_watch watch;      /* on the peer */
	uint64_t session;             /* the offer in force */
	uint64_t bytes;               /* stream bytes sent or verified */
	uint32_t crc;                 /* their CRC-32 */
	struct finding fail;          /* the failure: reason and message */
	int64_t started_ns;
	bool announced;               /* "waiting for ..." said */
	bool said_silent;             /* "the peer has been silent" said */
	bool digesting;               /* NSHM_P_DIGEST: sha over the bytes */
	struct nshm_sha256 sha;       /* of what we sent or verified, in order */
};
/* With NSHM_P_DIGEST: add bytes sent from (or verified in) private memory. */
static inline void side_digest(struct side *s, const void *buf, size_t len)
{
	if (s->digesting)
		nshm_sha256_update(&s->sha, buf, len);
}
/* Parameters checked, doorbell chosen, our line claimed (own) against the
 * peer's: 0 or a failure recorded in s. */
int side_begin(struct side *s, struct nshm_region *r, const struct nshm_params *p,
	       struct line_head *own, const struct line_head *peer, const char *role);
/* The one way a failure is recorded: its reason and message; returns rc. */
int side_fail(struct side *s, int rc, uint32_t reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A check's finding (validate_*, claim_take) recorded on s; returns rc. */
int side_record(struct side *s, int rc, const struct finding *f);
/* The digest of a stream that ended (ended: sent, or verified). */
int side_digest_final(struct side *s, bool ended, unsigned char out[32]);
/* Tell the caller, once and only after a moment, what we wait for. */
void side_announce(struct side *s, const char *what);
/* The peer (role: "receiver") is in a session and not judged dead: once
 * its heartbeat has stood still a while, say so, and when it will be. */
void side_peer_silent(struct side *s, const struct head_snap *peer, const char *role);
/* The side inside an nshm_tx or nshm_rx (for the archive code). */
struct side *tx_side(struct nshm_tx *tx);
struct side *rx_side(struct nshm_rx *rx);
/* The receiver has accepted or refused the offer. */
bool rx_answered(const struct nshm_rx *rx);
/* tx.c: a sender without a region, for one reader feeding many regions
 * (nshm-put's fan-out): what nshm_tx_write, nshm_tx_from_fd and
 * nshm_tx_tree send goes to sink, and its failure (< 0) is theirs; len 0
 * only asks whether the stream is still wanted. nshm_tx_close frees it. */
typedef int (*tx_sink_fn)(void *arg, const void *buf, size_t len);
int tx_open_sink(const struct nshm_meta *meta, const struct nshm_params *p,
		 tx_sink_fn sink, void *arg, struct nshm_tx **out);

/* Stores to the region: STORE for fields a later PUBLISH covers; PUBLISH
 * (release) makes everything stored before it visible to a peer that
 * loads the published value with acquire (peer_view.c). */
#define STORE(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)
#define PUBLISH(x, v) atomic_store_explicit(&(x), (v), memory_order_release)

/* A full fence before each doorbell store. The release store alone orders
 * ordinary stores, but on a write-combining mapping (resource2_wc) x86
 * stores are weakly ordered and a release store is a plain mov; the kernel's
 * copy in read() may use fast-string stores, which are weakly ordered too.
 * mfence drains both. Once per chunk (megabytes) it costs nothing. */
static inline void publish_fence(void)
{
	atomic_thread_fence(memory_order_seq_cst);
}

static inline int64_t peer_timeout_ns(const struct nshm_params *p)
{
	int64_t ms = p->peer_timeout_ms > 0 ? p->peer_timeout_ms
					    : NSHM_DEFAULT_PEER_TIMEOUT_MS;
	return ms * 1000000;
}

#endif
