/* SPDX-License-Identifier: BSD-2-Clause */
/* QEMU's ivshmem server protocol (docs/specs/ivshmem-spec.rst in QEMU):
 * one-way, server to client, each message one little-endian int64 with at
 * most one file descriptor (SCM_RIGHTS). Internal to libnshm: the server
 * (ivserver.c) sends, the client (ivclient.c) receives. */
#ifndef NSHM_IVPROTO_H
#define NSHM_IVPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IVPROTO_VERSION 0
#define IVPROTO_MAX_ID 65535       /* IDs are 16 bits (the Doorbell register) */
#define IVPROTO_MAX_VECTORS 64u    /* bound on what we accept and offer */

/* A message being received: the socket is a stream, so 8 bytes may come
 * in pieces; an fd comes with the piece it was sent with. */
struct ivproto_rx {
	unsigned char buf[8];
	size_t have;
	int fd;                    /* received with this message, or -1 */
	bool bad;                  /* more than one fd, or fds cut off */
};

void nshm_ivproto_rx_init(struct ivproto_rx *rx);
/* Drops a partly received message (and its descriptor). */
void nshm_ivproto_rx_reset(struct ivproto_rx *rx);
/* 0 with a whole message (*fd: its descriptor, ours to close, or -1);
 * -EAGAIN when none is complete yet (never blocks); -EPIPE at end of
 * stream; -EPROTO for a message with more than one descriptor; -errno. */
int nshm_ivproto_recv(int sock, struct ivproto_rx *rx, int64_t *msg, int *fd);
/* Send one message, never blocking: 0, or -errno (-EAGAIN: the client's
 * buffer is full, it does not read). */
int nshm_ivproto_send(int sock, int64_t msg, int fd);
bool nshm_ivproto_is_eventfd(int fd);

#endif
