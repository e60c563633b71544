/* SPDX-License-Identifier: BSD-2-Clause */
/* The ivshmem server protocol's receiving side (lib/doorbell/ivproto.c), fed by
 * hand through a socketpair: messages in pieces, descriptors where they
 * belong and where they do not, the end of the stream, and a round trip
 * through nshm_ivproto_send. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "doorbell/ivproto.h"
#include "tap.h"

/* Raw bytes, with fds (n of them) attached. */
static void raw(int s, const void *b, size_t len, const int *fds, int n)
{
	char ctl[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { (void *)b, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (n) {
		struct cmsghdr *h;

		memset(ctl, 0, sizeof(ctl));
		m.msg_control = ctl;
		m.msg_controllen = CMSG_SPACE(n * sizeof(int));
		h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(h), fds, n * sizeof(int));
	}
	if (sendmsg(s, &m, 0) != (ssize_t)len)
		perror("sendmsg");
}

static void le(unsigned char *b, int64_t v)
{
	for (int i = 0; i < 8; i++, v = (int64_t)((uint64_t)v >> 8))
		b[i] = (unsigned char)v;
}

int main(void)
{
	struct ivproto_rx rx;
	unsigned char b[8];
	int sv[2], e1 = eventfd(0, 0), e2 = eventfd(0, 0), fd, rc, two[2];
	int64_t msg;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || e1 < 0 || e2 < 0)
		return 1;
	nshm_ivproto_rx_init(&rx);

	rc = nshm_ivproto_recv(sv[1], &rx, &msg, &fd);
	ok(rc == -EAGAIN, "nothing sent: -EAGAIN, never blocks (%d)", rc);

	/* A message in three pieces, the fd with the middle one. */
	le(b, 4242);
	raw(sv[0], b, 3, NULL, 0);
	rc = nshm_ivproto_recv(sv[1], &rx, &msg, &fd);
	ok(rc == -EAGAIN, "3 of 8 bytes: not a message yet");
	raw(sv[0], b + 3, 2, &e1, 1);
	raw(sv[0], b + 5, 3, NULL, 0);
	rc = nshm_ivproto_recv(sv[1], &rx, &msg, &fd);
	ok(rc == 0 && msg == 4242 && fd >= 0, "pieces make one message, with its fd");
	ok(fd >= 0 && nshm_ivproto_is_eventfd(fd), "the fd is the eventfd sent");
	if (fd >= 0)
		close(fd);
	ok(!nshm_ivproto_is_eventfd(sv[0]), "a socket is not an eventfd");

	/* Negative values, little-endian. */
	le(b, -1);
	raw(sv[0], b, 8, NULL, 0);
	rc = nshm_ivproto_recv(sv[1], &rx, &msg, &fd);
	ok(rc == 0 && msg == -1 && fd == -1, "-1 without an fd");

	/* Two fds with one message: an error, both closed, stream in step. */
	two[0] = e1;
	two[1] = e2;
	le(b, 7);
	raw(sv[0], b, 8, two, 2);
	rc = nshm_ivproto_recv(sv[1], &rx, &msg, &fd);
	ok(rc == -EPROTO && fd == -1, "two fds in one message: -EPROTO");
	le(b, 8);
	raw(sv[0], b, 8, NULL, 0);
	rc = nshm_ivproto_recv(sv[1], &rx, &msg, &fd);
	ok(rc == 0 && msg == 8, "the next message reads whole");

	/* The sending side, round trip. */
	rc = nshm_ivproto_send(sv[0], 65535, e2);
	ok(rc == 0, "send with an fd");
	rc = nshm_ivproto_recv(sv[1], &rx, &msg, &fd);
	ok(rc == 0 && msg == 65535 && fd >= 0 && nshm_ivproto_is_eventfd(fd),
	   "received as sent");
	if (fd >= 0)
		close(fd);

	/* A partial message, then the end: -EPIPE, and reset frees its fd. */
	raw(sv[0], b, 4, &e1, 1);
	close(sv[0]);
	rc = nshm_ivproto_recv(sv[1], &rx, &msg, &fd);
	ok(rc == -EPIPE, "end of stream mid-message: -EPIPE");
	ok(rx.fd >= 0, "the piece's fd is held until reset");
	nshm_ivproto_rx_reset(&rx);
	ok(rx.fd == -1 && rx.have == 0, "reset drops the piece and its fd");
	close(sv[1]);
	close(e1);
	close(e2);
	return done_testing();
}
