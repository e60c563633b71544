/* SPDX-License-Identifier: BSD-2-Clause */
/* SPDX-License-Identifier: BSD-2-Clause */
/* nshm-server's logic: QEMU's ivshmem server protocol (ivproto.h), serving
 * /dev/shm/NAME, as QEMU's contrib/ivshmem-server does.
 *
 * Clients are hostile input: the protocol is one-way, so a client that
 * sends anything, stops reading (its socket buffer fills) or vanishes is
 * dropped and announced as gone; nothing a client does blocks the server
 * (every send is non-blocking) or grows it (at most MAX_CLIENTS clients, a
 * fixed number of eventfds each). IDs are handed out in turn, as QEMU's
 * server does, so a restarted VM gets a fresh one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "ivproto.h"
#include "ivserver.h"

#define MAX_CLIENTS NSHM_IVSERVER_MAX_CLIENTS
#define MAX_VECTORS NSHM_IVSERVER_MAX_VECTORS
#define MIN_SIZE ((uint64_t)NSHM_DATA_OFF + NSHM_MIN_CHUNK)
#define MAX_SIZE ((uint64_t)1 << 40)
#define SNDBUF (1 << 20)        /* room for a join's messages; best effort */

struct client {
	int sock;               /* -1: a free slot */
	uint32_t id;
	int vec[MAX_VECTORS];   /* the eventfds others ring it through */
	pid_t pid;
	uid_t uid;
	const char *gone;       /* why it is to be dropped, or NULL */
};

struct nshm_ivserver {
	struct nshm_ivserver_cfg cfg;
	char label[128];        /* NAME, escaped for the log */
	char shm_path[300];
	struct sockaddr_un addr;
	int shm, lsock;
	uint64_t size;
	bool bound;             /* the socket is ours to remove */
	struct client c[MAX_CLIENTS];
	unsigned nclients;
	uint32_t next_id;
};

static void logf_(struct nshm_ivserver *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void logf_(struct nshm_ivserver *s, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (s->cfg.log)
		s->cfg.log(s->cfg.arg, line);
}

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static int bad_name(const char *n, char *msg, size_t msglen)
{
	if (!*n || strchr(n, '/') || strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
	    strlen(n) > 200) {
		snprintf(msg, msglen, "bad NAME: one file name in /dev/shm, "
			 "without '/', at most 200 bytes");
		return -EINVAL;
	}
	return 0;
}

/* The size an existing or new object gets, checked: QEMU maps it as a
 * PCI BAR, whose size is a power of two. */
static int pick_size(struct nshm_ivserver *s, const struct stat *st, bool fresh,
		     char *msg, size_t msglen)
{
	uint64_t want = s->cfg.size ? s->cfg.size : NSHM_IVSERVER_DEFAULT_SIZE;

	if (!fresh && s->cfg.size && (uint64_t)st->st_size != s->cfg.size) {
		snprintf(msg, msglen, "%s exists with %lld bytes, not --size %llu: "
			 "remove it, or leave --size out to serve it as it is",
			 s->shm_path, (long long)st->st_size, (unsigned long long)s->cfg.size);
		return -EEXIST;
	}
	s->size = fresh ? want : (uint64_t)st->st_size;
	if (!pow2(s->size) || s->size < MIN_SIZE || s->size > MAX_SIZE) {
		snprintf(msg, msglen, "%s: %llu bytes will not do: QEMU needs a power "
			 "of two (a PCI BAR), nshm at least %llu", s->shm_path,
			 (unsigned long long)s->size, (unsigned long long)MIN_SIZE);
		return -EINVAL;
	}
	return 0;
}

static int open_memory(struct nshm_ivserver *s, char *msg, size_t msglen)
{
	bool created = true;
	struct stat st;
	int rc;

	snprintf(s->shm_path, sizeof(s->shm_path), "/dev/shm/%s", s->cfg.name);
	s->shm = open(s->shm_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0660);
	if (s->shm < 0 && errno == EEXIST) {
		created = false;
		/* A link or a FIFO planted there is refused, never followed. */
		s->shm = open(s->shm_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	}
	if (s->shm < 0) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", s->shm_path, strerror(errno));
		return rc;
	}
	if (fstat(s->shm, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(msg, msglen, "%s is not a shared memory object", s->shm_path);
		return -EINVAL;
	}
	rc = pick_size(s, &st, created || st.st_size == 0, msg, msglen);
	if (rc == 0 && (uint64_t)st.st_size != s->size &&
	    ftruncate(s->shm, (off_t)s->size) != 0) {
		rc = -errno;
		snprintf(msg, msglen, "%s: cannot size it: %s", s->shm_path, strerror(errno));
	}
	if (rc < 0 && created)
		unlink(s->shm_path);
	if (rc == 0)
		logf_(s, "memory %s: %llu bytes (%s)", s->label, (unsigned long long)s->size,
		      created ? "created" : "existing, reused");
	return rc;
}

/* A socket left at path by a server that died is removed; a live server
 * there is an error, and so is anything that is not a socket. */
static int clear_stale(struct nshm_ivserver *s, char *msg, size_t msglen)
{
	struct stat st;
	int probe, rc;

	if (lstat(s->addr.sun_path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(msg, msglen, "%s exists and is not a socket", s->addr.sun_path);
		return -EEXIST;
	}
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return -errno;
	rc = connect(probe, (struct sockaddr *)&s->addr, sizeof(s->addr));
	close(probe);
	if (rc == 0) {
		snprintf(msg, msglen, "another nshm-server is serving %s", s->addr.sun_path);
		return -EADDRINUSE;
	}
	if (unlink(s->addr.sun_path) != 0)
		return -errno;
	logf_(s, "removed a stale socket");
	return 0;
}

static int socket_path(struct nshm_ivserver *s, char *msg, size_t msglen)
{
	char dir[200];
	int n;

	s->addr.sun_family = AF_UNIX;
	if (s->cfg.socket) {
		n = snprintf(s->addr.sun_path, sizeof(s->addr.sun_path), "%s", s->cfg.socket);
	} else {
		snprintf(dir, sizeof(dir), "%s", nshm_run_dir());
		if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
			n = -errno;
			snprintf(msg, msglen, "cannot create %s: %s", dir, strerror(errno));
			return n;
		}
		n = snprintf(s->addr.sun_path, sizeof(s->addr.sun_path), "%s/%s.sock",
			     dir, s->cfg.name);
	}
	if (n < 0 || (size_t)n >= sizeof(s->addr.sun_path)) {
		snprintf(msg, msglen, "socket path too long (at most %zu bytes)",
			 sizeof(s->addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int listen_socket(struct nshm_ivserver *s, char *msg, size_t msglen)
{
	mode_t old;
	int rc = socket_path(s, msg, msglen);

	if (rc == 0)
		rc = clear_stale(s, msg, msglen);
	if (rc < 0) {
		if (!*msg)
			snprintf(msg, msglen, "%s: %s", s->addr.sun_path, strerror(-rc));
		return rc;
	}
	s->lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->lsock < 0)
		return -errno;
	/* 0660: connecting takes write permission; the group may use it. */
	old = umask(0117);
	rc = bind(s->lsock, (struct sockaddr *)&s->addr, sizeof(s->addr));
	umask(old);
	if (rc == 0)
		s->bound = true;
	if (rc != 0 || listen(s->lsock, 16) != 0) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", s->addr.sun_path, strerror(errno));
		return rc;
	}
	return 0;
}

int nshm_ivserver_open(struct nshm_ivserver **out, const struct nshm_ivserver_cfg *cfg,
		       char *msg, size_t msglen)
{
	struct nshm_ivserver *s;
	int rc;

	*out = NULL;
	msg[0] = '\0';
	rc = bad_name(cfg->name, msg, msglen);
	if (rc < 0)
		return rc;
	if (cfg->vectors < 1 || cfg->vectors > MAX_VECTORS) {
		snprintf(msg, msglen, "--vectors: 1 to %u", MAX_VECTORS);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	s->shm = s->lsock = -1;
	for (unsigned i = 0; i < MAX_CLIENTS; i++)
		s->c[i].sock = -1;
	nshm_escape(s->label, sizeof(s->label), cfg->name, 0);
	rc = open_memory(s, msg, msglen);
	if (rc == 0)
		rc = listen_socket(s, msg, msglen);
	if (rc < 0) {
		nshm_ivserver_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

const char *nshm_ivserver_socket(const struct nshm_ivserver *s)
{
	return s->addr.sun_path;
}

static void free_client(struct client *c)
{
	close(c->sock);
	for (unsigned v = 0; v < MAX_VECTORS; v++)
		if (c->vec[v] >= 0)
			close(c->vec[v]);
	c->sock = -1;
	c->gone = NULL;
}

/* Sends one message to c; a failure marks it for dropping. */
static void tell(struct client *c, int64_t msg, int fd)
{
	int rc;

	if (c->gone)
		return;
	rc = nshm_ivproto_send(c->sock, msg, fd);
	if (rc == -EAGAIN)
		c->gone = "stopped reading: dropped";
	else if (rc < 0)
		c->gone = "left";
}

/* Drops every client marked gone, telling the others; telling may mark
 * more, so until none is left. */
static void sweep(struct nshm_ivserver *s)
{
	bool again = true;

	while (again) {
		again = false;
		for (unsigned i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = &s->c[i];

			if (c->sock < 0 || !c->gone)
				continue;
			logf_(s, "client %u %s; %u client%s", c->id, c->gone,
			      s->nclients - 1, s->nclients == 2 ? "" : "s");
			free_client(c);
			s->nclients--;
			for (unsigned j = 0; j < MAX_CLIENTS; j++)
				if (s->c[j].sock >= 0)
					tell(&s->c[j], c->id, -1);
			again = true;
		}
	}
}

static bool id_used(const struct nshm_ivserver *s, uint32_t id)
{
	for (unsigned i = 0; i < MAX_CLIENTS; i++)
		if (s->c[i].sock >= 0 && s->c[i].id == id)
			return true;
	return false;
}

/* IDs in turn, skipping those in use (fewer clients than IDs: one is free). */
static uint32_t next_id(struct nshm_ivserver *s)
{
	while (id_used(s, s->next_id))
		s->next_id = (s->next_id + 1) & IVPROTO_MAX_ID;
	uint32_t id = s->next_id;

	s->next_id = (s->next_id + 1) & IVPROTO_MAX_ID;
	return id;
}

static int setup_client(struct nshm_ivserver *s, struct client *c, int sock)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int buf = SNDBUF;

	c->id = next_id(s);     /* before the slot is in use */
	c->sock = sock;
	c->gone = NULL;
	c->pid = 0;
	c->uid = 0;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0) {
		c->pid = cr.pid;
		c->uid = cr.uid;
	}
	setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	for (unsigned v = 0; v < MAX_VECTORS; v++)
		c->vec[v] = -1;
	for (unsigned v = 0; v < s->cfg.vectors; v++) {
		c->vec[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (c->vec[v] < 0)
			return -errno;
	}
	return 0;
}

/* What a new client is told, in the order of QEMU's server: version, its
 * ID, the memory, every other client's vectors, then its own. */
static void welcome(struct nshm_ivserver *s, struct client *c)
{
	tell(c, IVPROTO_VERSION, -1);
	tell(c, c->id, -1);
	tell(c, -1, s->shm);
	for (unsigned i = 0; i < MAX_CLIENTS; i++) {
		struct client *o = &s->c[i];

		if (o == c || o->sock < 0 || o->gone)
			continue;
		for (unsigned v = 0; v < s->cfg.vectors; v++)
			tell(c, o->id, o->vec[v]);
	}
	for (unsigned v = 0; v < s->cfg.vectors; v++)
		tell(c, c->id, c->vec[v]);
}

static struct client *free_slot(struct nshm_ivserver *s)
{
	for (unsigned i = 0; i < MAX_CLIENTS; i++)
		if (s->c[i].sock < 0)
			return &s->c[i];
	return NULL;
}

static void accept_client(struct nshm_ivserver *s)
{
	struct client *c;
	int sock = accept4(s->lsock, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (sock < 0) {
		/* Out of descriptors or memory: the connection stays queued
		 * and the socket readable, so pause rather than spin. */
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
			logf_(s, "cannot accept a client: %s", strerror(errno));
			nshm_sleep_ns(100000000);
		}
		return;
	}
	c = free_slot(s);
	if (!c) {
		logf_(s, "refused a client: %u clients already (the most)", MAX_CLIENTS);
		close(sock);
		return;
	}
	if (setup_client(s, c, sock) < 0) {
		logf_(s, "refused a client: cannot create eventfds: %s", strerror(errno));
		free_client(c);
		return;
	}
	s->nclients++;
	welcome(s, c);
	if (c->gone) {
		/* Not announced yet: nobody else needs telling. */
		logf_(s, "client %u vanished during the handshake (pid %d)", c->id, (int)c->pid);
		free_client(c);
		s->nclients--;
		return;
	}
	for (unsigned i = 0; i < MAX_CLIENTS; i++)
		if (&s->c[i] != c && s->c[i].sock >= 0)
			for (unsigned v = 0; v < s->cfg.vectors; v++)
				tell(&s->c[i], c->id, c->vec[v]);
	logf_(s, "client %u joined (pid %d, uid %u); %u client%s", c->id, (int)c->pid,
	      (unsigned)c->uid, s->nclients, s->nclients == 1 ? "" : "s");
	sweep(s);
}

/* A client's socket woke us: it sent something (it must not) or left. */
static void client_event(struct client *c, short revents)
{
	char b;
	ssize_t n;

	if (revents & POLLIN) {
		n = recv(c->sock, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n > 0)
			c->gone = "sent data (the protocol is one-way): dropped";
		else if (n == 0 || errno != EAGAIN)
			c->gone = "left";
	}
	if (!c->gone && (revents & (POLLHUP | POLLERR | POLLNVAL)))
		c->gone = "left";
}

int nshm_ivserver_run(struct nshm_ivserver *s, volatile sig_atomic_t *stop,
		      const sigset_t *waitmask)
{
	struct pollfd p[MAX_CLIENTS + 1];
	struct client *who[MAX_CLIENTS + 1];

	logf_(s, "serving %s on %s, %u vector%s per client", s->label,
	      s->addr.sun_path, s->cfg.vectors, s->cfg.vectors == 1 ? "" : "s");
	while (!*stop) {
		nfds_t n = 1;
		int k;

		p[0] = (struct pollfd){ .fd = s->lsock, .events = POLLIN };
		for (unsigned i = 0; i < MAX_CLIENTS; i++) {
			if (s->c[i].sock < 0)
				continue;
			who[n] = &s->c[i];
			p[n++] = (struct pollfd){ .fd = s->c[i].sock, .events = POLLIN };
		}
		k = ppoll(p, n, NULL, waitmask);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		for (nfds_t i = 1; i < n; i++)
			if (p[i].revents)
				client_event(who[i], p[i].revents);
		sweep(s);
		if (p[0].revents & POLLIN)
			accept_client(s);
	}
	return 0;
}

void nshm_ivserver_close(struct nshm_ivserver *s)
{
	if (!s)
		return;
	if (s->nclients)
		logf_(s, "stopping: %u client%s disconnected", s->nclients,
		      s->nclients == 1 ? "" : "s");
	for (unsigned i = 0; i < MAX_CLIENTS; i++)
		if (s->c[i].sock >= 0)
			free_client(&s->c[i]);
	if (s->lsock >= 0)
		close(s->lsock);
	if (s->bound)
		unlink(s->addr.sun_path);
	if (s->shm >= 0)
		close(s->shm);
	free(s);
}
