/* SPDX-License-Identifier: BSD-2-Clause */
/* SPDX-License-Identifier: BSD-2-Clause */
/* nshm-server's logic: an ivshmem server (QEMU's protocol, ivproto.h) that
 * owns /dev/shm/NAME. No part of libnshm; cmd/server/nshm-server.c is its main. */
#ifndef NSHM_IVSERVER_H
#define NSHM_IVSERVER_H

#include <signal.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define NSHM_IVSERVER_MAX_CLIENTS 32u
#define NSHM_IVSERVER_MAX_VECTORS 8u
#define NSHM_IVSERVER_DEFAULT_SIZE (64u << 20)
#define NSHM_IVSERVER_DEFAULT_VECTORS 2u
/* The memory's and the socket's mode unless told otherwise: owner and group. */
#define NSHM_IVSERVER_DEFAULT_MODE 0660u
/* A client that leaves messages unread this long is dropped (QEMU reads
 * them at once; nshm's clients whenever they wait). */
#define NSHM_IVSERVER_STALL_NS 5000000000LL

struct nshm_ivserver_cfg {
	const char *name;        /* the region: /dev/shm/NAME */
	const char *socket;      /* NULL: nshm_run_dir()/NAME.sock */
	bool has_group;          /* group below; else the server's own group */
	gid_t group;             /* owner group of the memory and the socket */
	mode_t shm_mode;         /* 0: NSHM_IVSERVER_DEFAULT_MODE */
	mode_t socket_mode;      /* 0: NSHM_IVSERVER_DEFAULT_MODE */
	uint64_t size;           /* 0: keep an existing object's, else 64 MiB */
	unsigned vectors;        /* eventfds per client: the device's vectors= */
	void (*log)(void *arg, const char *line);   /* one line per event */
	void *arg;
};

struct nshm_ivserver;

/* Creates the memory (or takes an existing one that only this uid and the
 * configured group can have written), locks and binds the socket, sets
 * both to the configured group and modes, and listens. On failure a message for a
 * person is left in msg. */
int nshm_ivserver_open(struct nshm_ivserver **out, const struct nshm_ivserver_cfg *cfg,
		       char *msg, size_t msglen);
/* Serves until *stop; waitmask is the signal mask while waiting (the
 * caller blocks its stop signals outside it, so none is missed). */
int nshm_ivserver_run(struct nshm_ivserver *s, volatile sig_atomic_t *stop,
		      const sigset_t *waitmask);
/* Says goodbye to every client, removes the socket if it is still the one
 * it bound; the memory stays. */
void nshm_ivserver_close(struct nshm_ivserver *s);
const char *nshm_ivserver_socket(const struct nshm_ivserver *s);

#endif
