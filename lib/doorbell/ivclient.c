/* SPDX-License-Identifier: BSD-2-Clause */
/* A NAME endpoint's doorbell: connect to nshm-server as an ordinary
 * ivshmem peer (QEMU's server protocol, docs/specs/ivshmem-spec.rst in
 * QEMU) and ring peers by writing their eventfds, be rung on our own.
 *
 * The server is trusted less than it might expect: every message is
 * checked (version 0, IDs 0..65535, an fd only where one belongs, fds that
 * really are eventfds, the memory fd the very object we mapped), counts are
 * bounded, and the handshake has a deadline. Any failure leaves the region
 * polling, which always works. After the handshake the socket is read only
 * when it is readable (in drain, or in ring for a peer not yet known), and
 * a server that misbehaves or goes away is dropped, keeping the eventfds
 * already received.
 *
 * No thread of the caller's ever writes or reads a shared eventfd in a way
 * that can block. Every eventfd here is shared: nshm-server made it and
 * gave it to every client, so the server, the peer it belongs to and any
 * other client hold the same open file description, and its O_NONBLOCK is
 * theirs as much as ours (QEMU clears it on every fd it receives; a hostile
 * peer can clear it at any moment). An eventfd write blocks while the
 * counter would pass 0xfffffffffffffffe, and anyone holding the fd brings it
 * there with one write; a read blocks while the counter is 0, and anyone
 * holding it can read it empty. Checking first cannot close that window:
 * poll's POLLOUT, or setting O_NONBLOCK again, can both be undone by another
 * process between the check and our write. Reads have a per-call way out
 * (preadv2 RWF_NOWAIT, whatever the file's flags). Writes have none
 * (pwritev2 RWF_NOWAIT is EOPNOTSUPP on eventfds, 6.18 included), and a
 * timer signal to interrupt one could fire just before the write starts.
 * So rings are written by a thread of their own (ringer): it polls for
 * POLLOUT first, so it blocks only when another holder wins that race; then
 * only the ringer waits (the peer is woken late: it polls as its floor),
 * the rings asked meanwhile wait in a small queue or are dropped, and
 * closing the client cancels the ringer (write is a cancellation point).
 * A sender's or a receiver's deadline never waits on a write.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "doorbell.h"
#include "ivproto.h"

#define HANDSHAKE_NS 2000000000LL
#define MAX_OWN 16u             /* our vectors kept (peers ring vector 0) */
#define MAX_PEERS 256u          /* peers whose vector 0 we keep */
#define MAX_HANDSHAKE_MSGS (MAX_PEERS * IVPROTO_MAX_VECTORS + 8u)
#define MAX_DRAIN_MSGS 64u      /* per drain: a flooding server waits its turn */
#define MAX_LEFT 64u            /* peers that left, remembered (the latest) */
#define RING_QUEUE 8u           /* peers with a ring pending; more: dropped */
#define RING_POLL_MS 1000       /* the ringer's wait for a full counter to empty */
#define REJOIN_NS 1000000000LL  /* a lost server: join it again this often at most */

struct iv_peer {
	uint32_t id;
	int fd;                 /* its vector 0 */
};

struct ivclient {
	pthread_mutex_t lock;   /* ring and drain may come from two threads */
	int sock;               /* -1 once the server is dropped */
	int ep;                 /* epoll: own eventfds and sock; the db.fd */
	uint32_t id;
	int own[MAX_OWN];
	unsigned nown;
	struct iv_peer peers[MAX_PEERS];
	unsigned npeers;
	uint32_t left[MAX_LEFT];  /* peers known to us that the server said left */
	unsigned nleft;           /* total ever; the last MAX_LEFT are kept */
	struct ivproto_rx in;   /* a message being read */
	/* The ringer (see the top): its queue, under ring_lock. */
	pthread_t ringer;
	bool ringer_on;
	bool ringer_stop;
	pthread_mutex_t ring_lock;
	pthread_cond_t ring_cond;
	uint32_t ring_q[RING_QUEUE];
	unsigned nring;
	/* To join a restarted server again (iv_reachable). */
	char name[NAME_MAX + 1];
	struct stat shm;
	int64_t rejoin_ns;
};

static struct iv_peer *find_peer(struct ivclient *c, uint32_t id)
{
	for (unsigned i = 0; i < c->npeers; i++)
		if (c->peers[i].id == id)
			return &c->peers[i];
	return NULL;
}

static void peer_left(struct ivclient *c, uint32_t id)
{
	struct iv_peer *p = find_peer(c, id);

	if (!p)
		return;     /* a peer we never knew: nothing to remember */
	close(p->fd);
	*p = c->peers[--c->npeers];
	c->left[c->nleft++ % MAX_LEFT] = id;
}

static bool has_left(const struct ivclient *c, uint32_t id)
{
	unsigned n = c->nleft < MAX_LEFT ? c->nleft : MAX_LEFT;

	for (unsigned i = 0; i < n; i++)
		if (c->left[i] == id)
			return true;
	return false;
}

static int add_own(struct ivclient *c, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	if (c->nown >= MAX_OWN) {
		close(fd);
		return 0;
	}
	if (epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	c->own[c->nown++] = fd;
	return 0;
}

/* A peer's eventfd for its next vector: we keep vector 0 only. */
static void add_peer_fd(struct ivclient *c, uint32_t id, int fd)
{
	if (find_peer(c, id) || c->npeers >= MAX_PEERS || has_left(c, id)) {
		close(fd);  /* vector 1 on, too many, or an ID that left (reused) */
		return;
	}
	c->peers[c->npeers].id = id;
	c->peers[c->npeers].fd = fd;
	c->npeers++;
}

/* One checked message. shm: the fd of the region (st) during the
 * handshake, NULL after it (a second memory message is an error). */
static int handle(struct ivclient *c, int64_t msg, int fd, const struct stat *shm,
		  bool *got_shm)
{
	struct stat st;

	if (msg == -1) {
		bool same = fd >= 0 && shm && !*got_shm && fstat(fd, &st) == 0 &&
			    st.st_dev == shm->st_dev && st.st_ino == shm->st_ino;

		if (fd >= 0)
			close(fd);      /* we map the object ourselves */
		if (!same)
			return -EPROTO;
		*got_shm = true;
		return 0;
	}
	if (msg < 0 || msg > IVPROTO_MAX_ID) {
		if (fd >= 0)
			close(fd);
		return -EPROTO;
	}
	if (fd < 0) {
		if ((uint32_t)msg == c->id)
			return -EPROTO;   /* told that we left */
		peer_left(c, (uint32_t)msg);
		return 0;
	}
	if (!nshm_ivproto_is_eventfd(fd) ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
		close(fd);
		return -EPROTO;
	}
	if ((uint32_t)msg == c->id)
		return add_own(c, fd);
	add_peer_fd(c, (uint32_t)msg, fd);
	return 0;
}

/* The server goes: keep what we have, stop listening to it. */
static void drop_server(struct ivclient *c)
{
	if (c->sock < 0)
		return;
	epoll_ctl(c->ep, EPOLL_CTL_DEL, c->sock, NULL);
	close(c->sock);
	c->sock = -1;
	nshm_ivproto_rx_reset(&c->in);
}

/* Messages already waiting on the socket, at most max of them. */
static void read_pending(struct ivclient *c, unsigned max)
{
	bool got_shm = true;

	while (c->sock >= 0 && max-- > 0) {
		int64_t msg;
		int fd, rc = nshm_ivproto_recv(c->sock, &c->in, &msg, &fd);

		if (rc == -EAGAIN)
			return;
		if (rc < 0 || handle(c, msg, fd, NULL, &got_shm) < 0)
			drop_server(c);
	}
}

static int wait_readable(int fd, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int64_t left = deadline - nshm_now_ns();
	int n;

	if (left <= 0)
		return -ETIMEDOUT;
	n = poll(&p, 1, (int)(left / 1000000) + 1);
	return n > 0 ? 0 : n == 0 ? -ETIMEDOUT : errno == EINTR ? 0 : -errno;
}

/* The next whole message, waiting for it until deadline. */
static int recv_by(struct ivclient *c, int64_t deadline, int64_t *msg, int *fd)
{
	for (;;) {
		int rc = nshm_ivproto_recv(c->sock, &c->in, msg, fd);

		if (rc != -EAGAIN)
			return rc;
		rc = wait_readable(c->sock, deadline);
		if (rc < 0)
			return rc;
	}
}

/* Version, our ID, then messages until both the memory and our vector 0
 * have come (QEMU's server sends ours last). */
static int handshake(struct ivclient *c, const struct stat *shm)
{
	int64_t deadline = nshm_now_ns() + HANDSHAKE_NS, msg;
	bool got_shm = false;
	unsigned n;
	int fd, rc;

	rc = recv_by(c, deadline, &msg, &fd);
	if (rc == 0 && (msg != IVPROTO_VERSION || fd >= 0))
		rc = -EPROTO;
	if (rc == 0)
		rc = recv_by(c, deadline, &msg, &fd);
	if (rc == 0 && (msg < 0 || msg > IVPROTO_MAX_ID || fd >= 0))
		rc = -EPROTO;
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		return rc;
	c->id = (uint32_t)msg;
	for (n = 0; n < MAX_HANDSHAKE_MSGS && !(got_shm && c->nown > 0); n++) {
		rc = recv_by(c, deadline, &msg, &fd);
		if (rc == 0)
			rc = handle(c, msg, fd, shm, &got_shm);
		if (rc < 0)
			return rc;
	}
	return got_shm && c->nown > 0 ? 0 : -EPROTO;
}

static void close_fd(void *fd)
{
	close(*(int *)fd);
}

/* The ringer's one ring: a dup of the peer's fd taken under the lock (the
 * peer may leave and its fd be closed meanwhile), then poll and write with
 * cancellation on. While it holds the lock it also reads what the server
 * sent: a busy sender that never sleeps still reads it (nshm-server drops a
 * client that leaves messages unread). */
static void ring_one(struct ivclient *c, uint32_t id)
{
	static const uint64_t one = 1;
	struct pollfd p = { .fd = -1, .events = POLLOUT };
	struct iv_peer *peer;

	pthread_mutex_lock(&c->lock);
	peer = find_peer(c, id);
	if (peer)
		p.fd = fcntl(peer->fd, F_DUPFD_CLOEXEC, 0);
	read_pending(c, MAX_DRAIN_MSGS);
	pthread_mutex_unlock(&c->lock);
	if (p.fd < 0)
		return;
	pthread_cleanup_push(close_fd, &p.fd);
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	/* No POLLOUT within RING_POLL_MS: the counter is full, so the peer
	 * has a wake-up pending anyway. EAGAIN from write: the same. */
	if (poll(&p, 1, RING_POLL_MS) == 1 && (p.revents & POLLOUT))
		(void)!write(p.fd, &one, sizeof(one));
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_cleanup_pop(1);
}

static void *ringer_main(void *arg)
{
	struct ivclient *c = arg;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_mutex_lock(&c->ring_lock);
	/* Rings asked before the stop still go out (a program's last word:
	 * its peer may be asleep until rung); stop_ringer bounds this. */
	while (!c->ringer_stop || c->nring > 0) {
		uint32_t id;

		if (c->nring == 0) {
			pthread_cond_wait(&c->ring_cond, &c->ring_lock);
			continue;
		}
		id = c->ring_q[0];
		c->nring--;
		memmove(c->ring_q, c->ring_q + 1, c->nring * sizeof(id));
		pthread_mutex_unlock(&c->ring_lock);
		ring_one(c, id);
		pthread_mutex_lock(&c->ring_lock);
	}
	pthread_mutex_unlock(&c->ring_lock);
	return NULL;
}

/* Every signal blocked in the ringer: the program's handlers run in its
 * own threads, where its waits expect them. */
static int start_ringer(struct ivclient *c)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&c->ringer, NULL, ringer_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	c->ringer_on = rc == 0;
	return -rc;
}

/* A ringer that is not stuck in a write stops on its own at once; only
 * one that is (it lost the race for a full counter) is cancelled. Not
 * cancelled every time: glibc loads libgcc_s for a cancellation, about a
 * millisecond at every program's exit. */
#define RINGER_STOP_NS 50000000L

static void stop_ringer(struct ivclient *c)
{
	struct timespec until;

	if (!c->ringer_on)
		return;
	pthread_mutex_lock(&c->ring_lock);
	c->ringer_stop = true;
	pthread_cond_signal(&c->ring_cond);
	pthread_mutex_unlock(&c->ring_lock);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += RINGER_STOP_NS;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	if (pthread_timedjoin_np(c->ringer, NULL, &until) != 0) {
		pthread_cancel(c->ringer);   /* a write that lost the race ends here */
		pthread_join(c->ringer, NULL);
	}
	c->ringer_on = false;
}

/* Queues a ring for the ringer; never waits on a descriptor. A ring already
 * pending for the peer covers this one. */
static int iv_ring(struct nshm_doorbell *db, uint32_t peer_id)
{
	struct ivclient *c = db->ctx;
	unsigned i;
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	if (!find_peer(c, peer_id))
		read_pending(c, MAX_DRAIN_MSGS);  /* joined after us: its eventfds wait on the socket */
	if (!find_peer(c, peer_id))
		rc = -ENOENT;
	pthread_mutex_unlock(&c->lock);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->ring_lock);
	for (i = 0; i < c->nring && c->ring_q[i] != peer_id; i++)
		;
	if (i == c->nring && c->nring < RING_QUEUE)
		c->ring_q[c->nring++] = peer_id;
	else if (i == c->nring)
		rc = -EAGAIN;
	pthread_cond_signal(&c->ring_cond);
	pthread_mutex_unlock(&c->ring_lock);
	return rc;
}

/* Takes our eventfd's count without ever waiting for one. */
static void take_count(int fd)
{
	uint64_t v;
	struct iovec iov = { &v, sizeof(v) };
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (preadv2(fd, &iov, 1, -1, RWF_NOWAIT) >= 0 || errno != EOPNOTSUPP)
		return;
	/* A kernel before 5.12 (no RWF_NOWAIT for eventfds): read only what
	 * poll says is there, the best it allows. */
	if (poll(&p, 1, 0) == 1 && (p.revents & POLLIN))
		(void)!read(fd, &v, sizeof(v));
}

static void iv_drain(struct nshm_doorbell *db)
{
	struct ivclient *c = db->ctx;

	pthread_mutex_lock(&c->lock);
	/* One read of an eventfd takes its whole count. */
	for (unsigned i = 0; i < c->nown; i++)
		take_count(c->own[i]);
	read_pending(c, MAX_DRAIN_MSGS);
	pthread_mutex_unlock(&c->lock);
}

static bool iv_gone(struct nshm_doorbell *db, uint32_t peer_id)
{
	struct ivclient *c = db->ctx;
	bool gone;

	pthread_mutex_lock(&c->lock);
	/* What the socket holds already counts (the waiter drains it too). */
	read_pending(c, MAX_DRAIN_MSGS);
	gone = has_left(c, peer_id);
	pthread_mutex_unlock(&c->lock);
	return gone;
}

/* Newcomers learn our ID and eventfd from the server: while we hear it. */
static bool iv_reachable(struct nshm_doorbell *db);

static void free_client(struct ivclient *c)
{
	stop_ringer(c);
	drop_server(c);
	for (unsigned i = 0; i < c->nown; i++)
		close(c->own[i]);
	for (unsigned i = 0; i < c->npeers; i++)
		close(c->peers[i].fd);
	if (c->ep >= 0)
		close(c->ep);
	nshm_ivproto_rx_reset(&c->in);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->ring_lock);
	pthread_cond_destroy(&c->ring_cond);
	free(c);
}

static void iv_close(struct nshm_doorbell *db)
{
	free_client(db->ctx);
	*db = NSHM_DOORBELL_NONE;
}

/* 0 connected, -ENOENT no server here, other -errno: one that failed. */
static int connect_server(const char *name, int *out)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int s, n;

	n = snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s.sock", nshm_run_dir(), name);
	if (n < 0 || (size_t)n >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -errno;
	/* Non-blocking: a server whose backlog is full is no reason to hang. */
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
		int rc = -errno;

		close(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* A client joined to the server of name that serves the object shm, or
 * NULL with *why saying what failed (NULL: no server there). */
static struct ivclient *join(const char *name, const struct stat *shm, const char **why)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct ivclient *c = calloc(1, sizeof(*c));
	int rc;

	*why = NULL;
	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->ring_lock, NULL);
	pthread_cond_init(&c->ring_cond, NULL);
	nshm_ivproto_rx_init(&c->in);
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->shm = *shm;
	c->ep = -1;
	rc = connect_server(name, &c->sock);
	if (rc < 0) {
		c->sock = -1;
		if (rc != -ENOENT)
			*why = "polling (nshm-server's socket does not answer)";
		goto fail;
	}
	c->ep = epoll_create1(EPOLL_CLOEXEC);
	rc = c->ep < 0 ? -errno : handshake(c, shm);
	if (rc == 0) {
		ev.data.fd = c->sock;
		rc = epoll_ctl(c->ep, EPOLL_CTL_ADD, c->sock, &ev) == 0 ? 0 : -errno;
	}
	if (rc < 0) {
		*why = rc == -ETIMEDOUT ? "polling (nshm-server did not answer in time)"
		     : "polling (nshm-server's answer did not validate)";
		goto fail;
	}
	if (start_ringer(c) < 0) {
		*why = "polling (no thread for the doorbell)";
		goto fail;
	}
	return c;
fail:
	free_client(c);
	return NULL;
}

static const struct nshm_doorbell iv_doorbell = {
	.kind = "eventfd (nshm-server)",
	.ring = iv_ring,
	.drain = iv_drain,
	.close = iv_close,
	.gone = iv_gone,
	.reachable = iv_reachable,
};

static void install(struct nshm_doorbell *db, struct ivclient *c)
{
	*db = iv_doorbell;
	db->fd = c->ep;
	db->self_id = c->id;
	db->ctx = c;
}

/* Newcomers learn our ID and eventfd from the server: while we hear it.
 * A server that went away (restarted, say) is joined again, at most once
 * every REJOIN_NS, as a new client with a new ID (the caller publishes it:
 * nshm_bell_word); polling goes on meanwhile. */
static bool iv_reachable(struct nshm_doorbell *db)
{
	struct ivclient *c = db->ctx, *n;
	const char *why;
	int64_t now;
	bool up;

	pthread_mutex_lock(&c->lock);
	up = c->sock >= 0;
	pthread_mutex_unlock(&c->lock);
	now = nshm_now_ns();
	if (up || now - c->rejoin_ns < REJOIN_NS)
		return up;
	c->rejoin_ns = now;
	n = join(c->name, &c->shm, &why);
	if (!n)
		return false;
	free_client(c);
	install(db, n);
	return true;
}

void nshm_ivclient_attach(struct nshm_doorbell *db, const char *name, int fd)
{
	struct ivclient *c;
	struct stat shm;
	const char *why;

	if (fstat(fd, &shm) != 0)
		return;
	c = join(name, &shm, &why);
	if (c)
		install(db, c);
	else if (why)
		db->kind = why;
}
