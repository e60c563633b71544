/* SPDX-License-Identifier: BSD-2-Clause */
/* Messages of QEMU's ivshmem server protocol, both directions of the wire
 * (see ivproto.h). Nothing here trusts the other end: a message is whole
 * only with 8 bytes, and a descriptor more than one is closed and makes the
 * message an error. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ivproto.h"

void nshm_ivproto_rx_init(struct ivproto_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
	rx->fd = -1;
}

void nshm_ivproto_rx_reset(struct ivproto_rx *rx)
{
	if (rx->fd >= 0)
		close(rx->fd);
	nshm_ivproto_rx_init(rx);
}

/* Keeps the first descriptor of the message; closes any other. */
static void take_fds(struct ivproto_rx *rx, struct msghdr *m)
{
	for (struct cmsghdr *h = CMSG_FIRSTHDR(m); h; h = CMSG_NXTHDR(m, h)) {
		size_t n;

		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(fd));
			if (rx->fd < 0) {
				rx->fd = fd;
			} else {
				close(fd);
				rx->bad = true;
			}
		}
	}
	if (m->msg_flags & MSG_CTRUNC)
		rx->bad = true;
}

static int64_t le64(const unsigned char *b)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return (int64_t)v;
}

int nshm_ivproto_recv(int sock, struct ivproto_rx *rx, int64_t *msg, int *fd)
{
	*fd = -1;
	while (rx->have < sizeof(rx->buf)) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(4 * sizeof(int))];
		} ctl;
		struct iovec iov = { rx->buf + rx->have, sizeof(rx->buf) - rx->have };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
				    .msg_control = &ctl, .msg_controllen = sizeof(ctl) };
		ssize_t n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		take_fds(rx, &m);
		if (n == 0)
			return -EPIPE;
		rx->have += (size_t)n;
	}
	*msg = le64(rx->buf);
	*fd = rx->fd;
	rx->fd = -1;
	rx->have = 0;
	if (rx->bad) {
		rx->bad = false;
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -EPROTO;
	}
	return 0;
}

int nshm_ivproto_send(int sock, int64_t msg, int fd)
{
	unsigned char b[8];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { b, sizeof(b) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	uint64_t v = (uint64_t)msg;
	ssize_t n;

	for (int i = 0; i < 8; i++, v >>= 8)
		b[i] = (unsigned char)v;
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		m.msg_control = &ctl;
		m.msg_controllen = sizeof(ctl);
		ctl.h.cmsg_level = SOL_SOCKET;
		ctl.h.cmsg_type = SCM_RIGHTS;
		ctl.h.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&ctl.h), &fd, sizeof(fd));
	}
	do
		n = sendmsg(sock, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* Part of a message: the client reads too slowly to be served. */
	return n == (ssize_t)sizeof(b) ? 0 : -EAGAIN;
}

bool nshm_ivproto_is_eventfd(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventfd]") == 0;
}
