/* SPDX-License-Identifier: BSD-2-Clause */
/* doorbell: how a region's peers wake each other (lib/README.md):
 * the doorbell interface a region carries, and the client of nshm-server's
 * socket (ivclient.c, speaking ivproto.h, QEMU's ivshmem server protocol).
 * May include: lib/util/, lib/nshm.h. */
#ifndef NSHM_DOORBELL_H
#define NSHM_DOORBELL_H

#include <stdbool.h>
#include <stdint.h>

#include "util/util.h"

/* The region's interrupt doorbell, if it has one (see man/nshm.7,
 * "Doorbells"). Only a wake-up: the counters in the region stay the truth,
 * so a lost, late, spurious or repeated ring costs time, never data. */
struct nshm_doorbell {
	int fd;            /* readable when this side was rung; -1: none (poll only) */
	uint32_t self_id;  /* our ivshmem peer ID (IVPosition / server-given) */
	const char *kind;  /* for --verbose/nshm-stat: "eventfd (nshm-server)",
			      "MSI-X (/dev/nshm0)", "polling" */
	/* Wake peer_id's vector 0; 0 or -errno. Must not block. */
	int (*ring)(struct nshm_doorbell *db, uint32_t peer_id);
	/* Consume pending wake-ups once fd polled readable. */
	void (*drain)(struct nshm_doorbell *db);
	void (*close)(struct nshm_doorbell *db);
	/* Did the server say peer_id left (a VM's QEMU gone)? NULL: no way to
	 * know. A hint only: see watch_update. */
	bool (*gone)(struct nshm_doorbell *db, uint32_t peer_id);
	/* Can a peer that arrives now still ring us (nshm-server still
	 * serving our ID)? NULL: always. Only then may we sleep until rung. */
	bool (*reachable)(struct nshm_doorbell *db);
	void *ctx;
};

/* A region without a doorbell: it polls. Each kind of doorbell starts from
 * a static const table of its own (methods and kind) and adds only its
 * state (fd, self_id, ctx): no field is forgotten on one side. */
#define NSHM_DOORBELL_NONE ((struct nshm_doorbell){ .fd = -1, .kind = "polling" })

/* ivclient.c: a NAME endpoint's doorbell through nshm-server's socket
 * (nshm_run_dir()/NAME.sock) when it serves the object open as fd; leaves
 * db alone (polling) on any failure. */
void nshm_ivclient_attach(struct nshm_doorbell *db, const char *name, int fd);

#endif
