/* SPDX-License-Identifier: BSD-2-Clause */
/* libFuzzer harness: a hostile nshm-server against the doorbell client.
 *
 * The input is a script of server messages (QEMU's ivshmem server protocol:
 * one little-endian int64 each, with at most one descriptor, see
 * lib/doorbell/ivproto.h). The harness writes them into one end of a socket pair,
 * in pieces where the script says so and with the descriptors it says
 * (none, an eventfd, the region's own memory, other memory, a pipe, two
 * at once), closes its end, and the real client code reads the other end:
 * the handshake (version, our ID, the memory, the vectors), then what
 * follows is read as after a handshake (peers joining and leaving), with
 * rings and "is peer N gone" questions in between, as the waits ask them.
 *
 * Single-threaded and with no sleep: every byte is on the socket before
 * the client reads, so no wait ever blocks; one input costs a socket pair,
 * its descriptors and a few dozen system calls (run.sh prints the rate).
 *
 * lib/doorbell/ivclient.c is included, not linked, for its static handshake and
 * message handling: no test hook in the library. Its public functions are
 * then defined here, so libnshm-fuzz.a's ivclient.o is never linked.
 *
 * Asserted: the handshake returns one of its documented codes, and on
 * success holds the memory and at least one own vector; every descriptor
 * kept is an eventfd in non-blocking mode; IDs kept are unique, within
 * 0..65535 and not our own; the bounds hold (own vectors, peers); a ring
 * never blocks; and after each input not one descriptor is left open
 * (neither the client's nor any received one). Crashes, sanitizer reports
 * and hangs are failures too.
 *
 * Input: [flags] then messages: [op] [value bytes as op says].
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/doorbell/ivclient.c"
#include "input.h"

#define FAIL(...)                                                          \
	do {                                                               \
		fprintf(stderr, "%s:%d: invariant failed: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                              \
		fputc('\n', stderr);                                       \
		abort();                                                   \
	} while (0)
#define CHECK(c) do { if (!(c)) FAIL("%s", #c); } while (0)

#define MAX_MSGS 300

/* op: bits 0-2 what comes with it, 3-4 the value, 5 in two pieces, 6 the
 * descriptor with the second piece, 7 then a client action (ring, gone). */
enum { FD_NONE, FD_EVENT, FD_SHM, FD_OTHER_MEM, FD_PIPE, FD_TWO, FD_NONE2, FD_EVENT2 };
enum { V_RAW, V_ID, V_MEM, V_SMALL };

static int shm_fd = -1;          /* the region's memory, made once */
static struct stat shm_st;
static int made[2 * MAX_MSGS + 8];
static unsigned nmade;

static int track(int fd)
{
	if (fd < 0) {
		perror("fuzz_ivproto: making a descriptor");
		abort();
	}
	made[nmade++] = fd;
	return fd;
}

/* The descriptors to send with one message (they are ours to close once
 * sent: the socket holds its own references). */
static unsigned make_fds(unsigned kind, int fds[2])
{
	int p[2];

	switch (kind) {
	case FD_EVENT:
	case FD_EVENT2:
		fds[0] = track(eventfd(0, EFD_CLOEXEC | (kind == FD_EVENT ? EFD_NONBLOCK : 0)));
		return 1;
	case FD_SHM:
		fds[0] = track(dup(shm_fd));
		return 1;
	case FD_OTHER_MEM:
		fds[0] = track(memfd_create("fuzz-ivproto-other", MFD_CLOEXEC));
		return 1;
	case FD_PIPE:
		if (pipe2(p, O_CLOEXEC) != 0)
			abort();
		track(p[0]);
		track(p[1]);
		fds[0] = p[0];
		return 1;
	case FD_TWO:
		fds[0] = track(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
		fds[1] = track(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
		return 2;
	default:
		return 0;
	}
}

/* Part of a message with nfd descriptors: false once the socket is full. */
static bool send_piece(int sock, const unsigned char *b, size_t len, const int *fds, unsigned nfd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(2 * sizeof(int))];
	} ctl;
	struct iovec iov = { (void *)b, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfd) {
		memset(&ctl, 0, sizeof(ctl));
		m.msg_control = &ctl;
		m.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
		ctl.h.cmsg_level = SOL_SOCKET;
		ctl.h.cmsg_type = SCM_RIGHTS;
		ctl.h.cmsg_len = CMSG_LEN(nfd * sizeof(int));
		memcpy(CMSG_DATA(&ctl.h), fds, nfd * sizeof(int));
	}
	return sendmsg(sock, &m, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len;
}

static int64_t value(struct in *in, unsigned kind)
{
	switch (kind) {
	case V_RAW: return (int64_t)in_u64(in);
	case V_ID: return in_u16(in);
	case V_MEM: return -1;
	default: return in_u8(in) % 4;
	}
}

struct action {
	bool ring;
	uint32_t id;
};

/* The script onto the socket; the client actions it asks for, in order. */
static unsigned write_script(struct in *in, int sock, struct action *acts)
{
	unsigned nact = 0;

	for (unsigned i = 0; i < MAX_MSGS && in->n > 0; i++) {
		uint8_t op = in_u8(in);
		int64_t v = value(in, (op >> 3) & 3);
		unsigned char b[8];
		int fds[2];
		unsigned nfd = make_fds(op & 7, fds);
		size_t cut = op & 0x20 ? 1 + in_u8(in) % 7 : 8;
		bool late = op & 0x40;
		bool ok;

		for (int k = 0; k < 8; k++)
			b[k] = (unsigned char)((uint64_t)v >> (8 * k));
		ok = send_piece(sock, b, cut, late && cut < 8 ? NULL : fds, late && cut < 8 ? 0 : nfd);
		if (ok && cut < 8)
			ok = send_piece(sock, b + cut, 8 - cut, fds, late ? nfd : 0);
		if (!ok)
			break;
		if (op & 0x80) {
			uint8_t a = in_u8(in);

			acts[nact].ring = a & 1;
			acts[nact].id = a >> 1 & 3;
			nact++;
		}
	}
	return nact;
}

static void check_client(const struct ivclient *c)
{
	CHECK(c->nown <= MAX_OWN && c->npeers <= MAX_PEERS);
	CHECK(c->id <= IVPROTO_MAX_ID);
	for (unsigned i = 0; i < c->nown; i++) {
		CHECK(nshm_ivproto_is_eventfd(c->own[i]));
		CHECK(fcntl(c->own[i], F_GETFL) & O_NONBLOCK);
	}
	for (unsigned i = 0; i < c->npeers; i++) {
		CHECK(c->peers[i].id <= IVPROTO_MAX_ID && c->peers[i].id != c->id);
		CHECK(nshm_ivproto_is_eventfd(c->peers[i].fd));
		CHECK(fcntl(c->peers[i].fd, F_GETFL) & O_NONBLOCK);
		for (unsigned j = 0; j < i; j++)
			CHECK(c->peers[j].id != c->peers[i].id);
	}
}

/* Descriptors open before an input in the range it may use (the
 * sanitizers' and libFuzzer's own may open some at any time). */
#define NOTED 64
static bool open_before[NOTED];
static int noted_from;

/* Only the first NOTED numbers from the lowest free one: an input's own
 * descriptors start there, and a sanitizer's late one lands there too. */
static void note_open(int from)
{
	noted_from = from;
	for (int i = 0; i < NOTED; i++)
		open_before[i] = fcntl(from + i, F_GETFD) != -1;
}

/* And every descriptor the process was started with, wherever it is: a
 * shell or a test runner may hand down a high one (bash's 255, a pipe at
 * 251 from the caller), which the range above does not reach. */
#define INHERITED_MAX 4096
static bool open_at_start[INHERITED_MAX];

static void note_inherited(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	for (int fd = 0; fd < INHERITED_MAX; fd++)
		open_at_start[fd] = fcntl(fd, F_GETFD) != -1;
}

static bool was_open(int fd)
{
	if (fd >= 0 && fd < INHERITED_MAX && open_at_start[fd])
		return true;
	return fd >= noted_from && fd < noted_from + NOTED && open_before[fd - noted_from];
}

/* The lowest descriptor number free now: what each input must give back. */
static int lowest_free(void)
{
	int fd = dup(0);

	if (fd < 0)
		abort();
	close(fd);
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct action acts[MAX_MSGS];
	struct nshm_doorbell db;
	struct ivclient *c;
	int sv[2], rc, base, top;
	unsigned nact;

	if (shm_fd < 0) {
		shm_fd = memfd_create("fuzz-ivproto-region", MFD_CLOEXEC);
		if (shm_fd < 0 || fstat(shm_fd, &shm_st) != 0)
			abort();
	}
	note_inherited();
	base = lowest_free();
	note_open(base);
	nmade = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0)
		abort();
	(void)in_u8(&in);  /* flags: reserved, keeps old corpora meaningful */
	nact = write_script(&in, sv[0], acts);
	/* The script is all there is: the client meets end of stream, never a
	 * wait for more (that would be the 2 s handshake deadline). */
	close(sv[0]);
	for (unsigned i = 0; i < nmade; i++)
		close(made[i]);

	c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	pthread_mutex_init(&c->lock, NULL);
	nshm_ivproto_rx_init(&c->in);
	c->sock = sv[1];
	c->ep = epoll_create1(EPOLL_CLOEXEC);
	if (c->ep < 0)
		abort();
	rc = handshake(c, &shm_st);
	if (!(rc == 0 || rc == -EPROTO || rc == -EPIPE || rc == -ETIMEDOUT))
		FAIL("handshake returned %d (%s)", rc, strerror(-rc));
	check_client(c);
	if (rc == 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = c->sock };

		CHECK(c->nown > 0);
		CHECK(epoll_ctl(c->ep, EPOLL_CTL_ADD, c->sock, &ev) == 0);
		memset(&db, 0, sizeof(db));
		db.fd = c->ep;
		db.ctx = c;
		/* What follows the handshake, as the waits read it. */
		for (unsigned i = 0; i < nact; i++) {
			if (acts[i].ring) {
				int rr = iv_ring(&db, acts[i].id);

				CHECK(rr == 0 || rr == -ENOENT);
			} else {
				(void)iv_gone(&db, acts[i].id);
			}
			check_client(c);
		}
		iv_drain(&db);
		check_client(c);
	}
	free_client(c);
	/* Nothing left open: numbers from base up to what this input could
	 * have used are all free again. */
	top = base + 4 * (int)nmade + NOTED;
	for (int fd = base; fd < top; fd++) {
		char path[64], what[128] = "?";
		ssize_t n;

		if (fcntl(fd, F_GETFD) == -1 || fd == shm_fd || was_open(fd))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, what, sizeof(what) - 1);
		what[n > 0 ? n : 0] = '\0';
		FAIL("descriptor %d (%s) left open (base %d)", fd, what, base);
	}
	return 0;
}
