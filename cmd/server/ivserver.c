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
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "doorbell/ivproto.h"
#include "proto/layout.h"
#include "util/util.h"
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
	int64_t unread_since;   /* when messages to it were first seen unread; 0 */
	const char *gone;       /* why it is to be dropped, or NULL */
};

struct nshm_ivserver {
	struct nshm_ivserver_cfg cfg;
	char label[128];        /* NAME, escaped for the log */
	char shm_path[300];
	struct sockaddr_un addr;
	int shm, lsock;
	int lock;               /* the socket's PATH.lock, flock()ed */
	dev_t lock_dev;         /* ... and the file it is, to remove only that */
	ino_t lock_ino;
	gid_t gid;              /* group of the memory and the socket */
	mode_t shm_mode, socket_mode;
	uint64_t size;
	bool bound;             /* a socket was bound: ours to remove ... */
	dev_t sock_dev;         /* ... if PATH is still this one */
	ino_t sock_ino;
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

/* Whether an object already at /dev/shm/NAME may be served. It will carry
 * every transfer and QEMU maps it: whoever could have written it (or can
 * write or truncate it) could read or break those, so only one that this
 * uid owns, with no other name, and that nobody but the owner and the
 * configured group can write is taken. st is from fstat of the open fd,
 * never from the name (a name can be swapped between two looks). */
static int check_existing(struct nshm_ivserver *s, const struct stat *st,
			  char *msg, size_t msglen)
{
	char why[160];

	if (!S_ISREG(st->st_mode))
		snprintf(why, sizeof(why), "is not a shared memory object (a regular file)");
	else if (st->st_uid != geteuid())
		snprintf(why, sizeof(why), "is owned by uid %u, not by this server's uid %u",
			 (unsigned)st->st_uid, (unsigned)geteuid());
	else if (st->st_nlink != 1)
		snprintf(why, sizeof(why), "has %lu names (hard links), not one",
			 (unsigned long)st->st_nlink);
	else if (st->st_mode & S_IWOTH)
		snprintf(why, sizeof(why), "is writable by others (mode %04o)",
			 (unsigned)(st->st_mode & 07777));
	else if ((st->st_mode & S_IWGRP) && st->st_gid != s->gid)
		snprintf(why, sizeof(why), "is writable by group %u, not the server's group %u",
			 (unsigned)st->st_gid, (unsigned)s->gid);
	else
		return 0;
	snprintf(msg, msglen, "%s %s: whoever made it could read every transfer or "
		 "truncate it under QEMU; remove it and start again (the server then "
		 "creates it)", s->shm_path, why);
	return -EPERM;
}

/* The configured group and mode, set on the fd (open's mode is cut by the
 * umask: what the manual promises is set here, whatever the umask). */
static int set_owner(int fd, const struct nshm_ivserver *s, mode_t mode)
{
	if (fchown(fd, (uid_t)-1, s->gid) != 0 || fchmod(fd, mode) != 0)
		return -errno;
	return 0;
}

static int open_memory(struct nshm_ivserver *s, char *msg, size_t msglen)
{
	bool created = true;
	struct stat st;
	int rc;

	snprintf(s->shm_path, sizeof(s->shm_path), "/dev/shm/%s", s->cfg.name);
	/* 0600 until set_owner: nobody else can open it in between. */
	s->shm = open(s->shm_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
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
	if (fstat(s->shm, &st) != 0) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", s->shm_path, strerror(errno));
		return rc;
	}
	rc = created ? 0 : check_existing(s, &st, msg, msglen);
	if (rc == 0)
		rc = pick_size(s, &st, created || st.st_size == 0, msg, msglen);
	if (rc == 0 && (uint64_t)st.st_size != s->size &&
	    ftruncate(s->shm, (off_t)s->size) != 0) {
		rc = -errno;
		snprintf(msg, msglen, "%s: cannot size it: %s", s->shm_path, strerror(errno));
	}
	if (rc == 0) {
		rc = set_owner(s->shm, s, s->shm_mode);
		if (rc < 0)
			snprintf(msg, msglen, "%s: cannot set its group %u and mode %04o: %s",
				 s->shm_path, (unsigned)s->gid, (unsigned)s->shm_mode,
				 strerror(-rc));
	}
	if (rc < 0 && created)
		unlink(s->shm_path);
	if (rc == 0)
		logf_(s, "memory %s: %llu bytes, group %u, mode %04o (%s)", s->label,
		      (unsigned long long)s->size, (unsigned)s->gid, (unsigned)s->shm_mode,
		      created ? "created" : "existing, reused");
	return rc;
}

/* PATH.lock, flock()ed for the server's life: the one server holding it
 * owns PATH. Whatever is at PATH under the lock was left by a server that
 * died (or is not a server's), so replacing it cannot take a live
 * server's socket: there is no window between a check and the act.
 * A stopping server removes its lock file (remove_lock), so a lock taken
 * on a file that was since unlinked or replaced is nobody's: the holder
 * checks that PATH.lock still names the file it locked, and tries again
 * on the file that is there now. */
static int lock_once(struct nshm_ivserver *s, const char *path, char *msg, size_t msglen)
{
	struct stat st, now;
	int rc;

	s->lock = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (s->lock < 0 || fstat(s->lock, &st) != 0) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(msg, msglen, "%s is not a regular file", path);
		return -EINVAL;
	}
	if (flock(s->lock, LOCK_EX | LOCK_NB) != 0) {
		rc = -errno;
		if (rc == -EWOULDBLOCK) {
			snprintf(msg, msglen, "another nshm-server is serving %s (it holds %s)",
				 s->addr.sun_path, path);
			return -EADDRINUSE;
		}
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (lstat(path, &now) != 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino)
		return -EAGAIN;
	s->lock_dev = st.st_dev;
	s->lock_ino = st.st_ino;
	return 0;
}

static int lock_socket(struct nshm_ivserver *s, char *msg, size_t msglen)
{
	char path[sizeof(s->addr.sun_path) + 8];
	int rc = -EAGAIN;

	snprintf(path, sizeof(path), "%s.lock", s->addr.sun_path);
	for (int tries = 0; rc == -EAGAIN && tries < 100; tries++) {
		if (s->lock >= 0)
			close(s->lock);
		s->lock = -1;
		rc = lock_once(s, path, msg, msglen);
	}
	if (rc == -EAGAIN)
		snprintf(msg, msglen, "%s: replaced each time it was locked", path);
	return rc;
}

/* Still locked: a server waiting for the file finds it gone and makes its
 * own (lock_once). One that an admin put there instead is left alone. */
/* Unlinks path only while it still names the file (dev, ino) this server
 * made: one another server made there since is left alone. Returns whether
 * path named something else. */
static bool unlink_if_ours(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return false;
	if (st.st_dev != dev || st.st_ino != ino)
		return true;
	unlink(path);
	return false;
}

static void remove_lock(struct nshm_ivserver *s)
{
	char path[sizeof(s->addr.sun_path) + 8];

	snprintf(path, sizeof(path), "%s.lock", s->addr.sun_path);
	if (s->lock_ino)
		unlink_if_ours(path, s->lock_dev, s->lock_ino);
}

/* Under the lock: a socket left at path by a server that died is removed;
 * anything that is not a socket, or a socket something answers on (not an
 * nshm-server: those hold the lock), is left alone and is an error. */
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
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (probe < 0)
		return -errno;
	rc = connect(probe, (struct sockaddr *)&s->addr, sizeof(s->addr));
	close(probe);
	if (rc == 0 || errno == EAGAIN) {
		snprintf(msg, msglen, "something else is listening on %s", s->addr.sun_path);
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

/* The socket we just bound (0600 by the umask), by an O_PATH fd checked to
 * be a socket: its group and mode set, its identity kept so that we remove
 * only our own at exit. A socket's mode cannot be set through the socket's
 * own fd, hence the /proc/self/fd name of the O_PATH one. */
static int own_socket(struct nshm_ivserver *s)
{
	char proc[64];
	struct stat st;
	int fd = open(s->addr.sun_path, O_PATH | O_NOFOLLOW | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0)
		rc = -errno;
	else if (!S_ISSOCK(st.st_mode))
		rc = -EEXIST;
	if (rc == 0) {
		s->sock_dev = st.st_dev;
		s->sock_ino = st.st_ino;
		s->bound = true;
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (fchownat(fd, "", (uid_t)-1, s->gid, AT_EMPTY_PATH) != 0 ||
		    chmod(proc, s->socket_mode) != 0)
			rc = -errno;
	}
	close(fd);
	return rc;
}

static int listen_socket(struct nshm_ivserver *s, char *msg, size_t msglen)
{
	mode_t old;
	int rc = socket_path(s, msg, msglen);

	if (rc == 0)
		rc = lock_socket(s, msg, msglen);
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
	/* 0600 until own_socket sets the configured group and mode. */
	old = umask(0177);
	rc = bind(s->lsock, (struct sockaddr *)&s->addr, sizeof(s->addr));
	umask(old);
	if (rc != 0) {
		rc = -errno;
		snprintf(msg, msglen, "%s: %s", s->addr.sun_path, strerror(errno));
		return rc;
	}
	rc = own_socket(s);
	if (rc < 0) {
		snprintf(msg, msglen, "%s: cannot set its group %u and mode %04o: %s",
			 s->addr.sun_path, (unsigned)s->gid, (unsigned)s->socket_mode,
			 strerror(-rc));
		return rc;
	}
	if (listen(s->lsock, 16) != 0) {
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
	s->shm = s->lsock = s->lock = -1;
	s->gid = cfg->has_group ? cfg->group : getegid();
	s->shm_mode = cfg->shm_mode ? cfg->shm_mode : NSHM_IVSERVER_DEFAULT_MODE;
	s->socket_mode = cfg->socket_mode ? cfg->socket_mode : NSHM_IVSERVER_DEFAULT_MODE;
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

/* Sends one message to c; a failure marks it for dropping. A client that
 * has read all we sent before is reading: its stall clock (find_stalled)
 * starts again with this message. find_stalled alone looks right after we
 * send (a peer joined or left), so under steady traffic it could find every
 * prompt reader with something unread and drop it after 5 s. */
static void tell(struct client *c, int64_t msg, int fd)
{
	int rc, queued = 0;

	if (c->gone)
		return;
	if (ioctl(c->sock, SIOCOUTQ, &queued) == 0 && queued == 0)
		c->unread_since = nshm_now_ns();
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
	c->unread_since = 0;
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

/* A client that does not read is dropped, so that it cannot hold a slot
 * for ever (a full send buffer is caught by tell(); this catches one that
 * never reads even its welcome): what is still queued to it (SIOCOUTQ) has
 * stayed unread for STALL_NS since the first message that found its queue
 * empty (tell). Marks those (true if any); *due: how long until the next
 * one is, -1 if none. */
static bool find_stalled(struct nshm_ivserver *s, int64_t *due)
{
	int64_t now = nshm_now_ns(), next = -1;
	bool marked = false;

	for (unsigned i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &s->c[i];
		int64_t left;
		int queued = 0;

		if (c->sock < 0 || c->gone)
			continue;
		if (ioctl(c->sock, SIOCOUTQ, &queued) != 0 || queued <= 0) {
			c->unread_since = 0;
			continue;
		}
		if (!c->unread_since)
			c->unread_since = now;
		left = c->unread_since + NSHM_IVSERVER_STALL_NS - now;
		if (left <= 0) {
			c->gone = "left its messages unread for 5 s: dropped";
			marked = true;
		} else if (next < 0 || left < next) {
			next = left;
		}
	}
	*due = next;
	return marked;
}

int nshm_ivserver_run(struct nshm_ivserver *s, volatile sig_atomic_t *stop,
		      const sigset_t *waitmask)
{
	struct pollfd p[MAX_CLIENTS + 1];
	struct client *who[MAX_CLIENTS + 1];
	struct timespec ts;
	int64_t due;

	logf_(s, "serving %s on %s, %u vector%s per client", s->label,
	      s->addr.sun_path, s->cfg.vectors, s->cfg.vectors == 1 ? "" : "s");
	while (!*stop) {
		nfds_t n = 1;
		int k;

		/* Dropping one tells the others: messages they may leave unread. */
		while (find_stalled(s, &due))
			sweep(s);
		ts.tv_sec = due / 1000000000;
		ts.tv_nsec = due % 1000000000 + 1000000;   /* past it, not just before */
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		p[0] = (struct pollfd){ .fd = s->lsock, .events = POLLIN };
		for (unsigned i = 0; i < MAX_CLIENTS; i++) {
			if (s->c[i].sock < 0)
				continue;
			who[n] = &s->c[i];
			p[n++] = (struct pollfd){ .fd = s->c[i].sock, .events = POLLIN };
		}
		k = ppoll(p, n, due < 0 ? NULL : &ts, waitmask);
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

/* Only the socket we bound: one that replaced it (a server started by
 * hand after ours lost its socket, a file an admin put there) is not ours
 * to remove. Still under our lock: no server of ours can bind in between. */
static void remove_socket(struct nshm_ivserver *s)
{
	if (s->bound && unlink_if_ours(s->addr.sun_path, s->sock_dev, s->sock_ino))
		logf_(s, "left %s alone: it is no longer the socket this server bound",
		      s->addr.sun_path);
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
	remove_socket(s);
	if (s->lock >= 0) {
		remove_lock(s);
		close(s->lock);     /* after the unlinks: the next server waits for it */
	}
	if (s->shm >= 0)
		close(s->shm);
	free(s);
}
