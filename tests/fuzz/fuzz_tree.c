/* SPDX-License-Identifier: BSD-2-Clause */
/* libFuzzer harness: the tree receiver (nshm_rx_tree) against arbitrary
 * pax byte streams, through the real protocol.
 *
 * The input, after a flags byte, is the archive stream: a sender sends it
 * with the real library (nshm_tx_begin, nshm_tx_write, nshm_tx_end) over a
 * region in a memfd (fake_region.h), and the receiver in the calling
 * thread accepts it and extracts it with nshm_rx_tree into a destination
 * that already holds things, as a user's directory would:
 *
 *     WORK/outside/victim.txt       beside the destination
 *     WORK/dest/            0750    the destination
 *     WORK/dest/victim.txt  0644
 *     WORK/dest/sub/        0700
 *     WORK/dest/sub/keep    0600
 *
 * Asserted after every input, whatever the stream held: nothing appeared or
 * changed outside dest (WORK holds outside/ and dest/, outside/ holds
 * victim.txt, unchanged); no file that existed before was written, linked
 * to or re-moded (each is held open and compared: content, mode, link
 * count), --force or not; dest and an existing directory keep their mode;
 * without --force every name that existed is the same inode; everything
 * under dest is a directory, a regular file or a symlink, without set-id
 * or sticky bits, and (without owner restoring) within the umask; the
 * returned code is one nshm_rx_tree documents. Crashes, sanitizer reports
 * and hangs (libFuzzer -timeout) are failures too.
 *
 * The sender is a coroutine in virtual time (fake_region.h: its sleeps
 * hand the receiver its turn and the receiver's hand it back), and the
 * heartbeat threads of both claims are not started: the virtual clock
 * beats both lines every NSHM_HEARTBEAT_MS instead. No thread starts and
 * no real time passes in an input. NSHM_FUZZ_THREADS=1 makes the sender
 * a thread in real time, as it was.
 *
 * Input: [flags: 1 = --force, 2 = restore owners (as root), 4 = chunks
 * of 4 KiB, else 64 KiB] then the stream.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define FAKE_PEER_COROUTINE     /* see fake_region.h */
#include "fake_region.h"

#define F_FORCE 1u
#define F_OWNER 2u
#define F_SMALL 4u

static char work[1024], dest[1100], outside[1100];
static mode_t mask;

struct held {
	const char *rel;          /* under WORK */
	const char *content;
	mode_t mode;
	bool dir;
	int fd;
	struct stat st;
};

static struct held held[] = {
	{ "outside", NULL, 0755, true, -1, { 0 } },
	{ "outside/victim.txt", "outside\n", 0644, false, -1, { 0 } },
	{ "dest", NULL, 0750, true, -1, { 0 } },
	{ "dest/victim.txt", "victim\n", 0644, false, -1, { 0 } },
	{ "dest/sub", NULL, 0700, true, -1, { 0 } },
	{ "dest/sub/keep", "keep\n", 0600, false, -1, { 0 } },
};
#define NHELD (sizeof(held) / sizeof(held[0]))
#define HELD_DEST 2

static void path_of(char *out, size_t len, const char *rel)
{
	snprintf(out, len, "%s/%s", work, rel);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		FAIL("cannot remove %s: %s", path, strerror(errno));
	return 0;
}

/* The held thing is in place: its name is its inode. */
static bool held_intact(const struct held *h)
{
	char p[1200];
	struct stat st;

	path_of(p, sizeof(p), h->rel);
	return h->fd >= 0 && lstat(p, &st) == 0 && st.st_ino == h->st.st_ino &&
	       st.st_dev == h->st.st_dev;
}

/* dest as the user had it, and every held thing opened and noted. The
 * last input's check_world verified what is still in place (content,
 * mode, owner, links) and its sweep removed everything else that input
 * made: only what is missing (the first time; a file --force replaced) is
 * made again, parents first. */
static void make_world(void)
{
	char p[1200];

	for (size_t i = 0; i < NHELD; i++) {
		struct held *h = &held[i];

		if (held_intact(h))
			continue;
		if (h->fd >= 0)
			close(h->fd);
		h->fd = -1;
		path_of(p, sizeof(p), h->rel);
		if (h->dir) {
			if (mkdir(p, h->mode) != 0 && errno != EEXIST)
				FAIL("mkdir %s: %s", p, strerror(errno));
			chmod(p, h->mode);
			h->fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		} else {
			int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, h->mode);

			if (fd < 0 || write(fd, h->content, strlen(h->content)) < 0)
				FAIL("writing %s: %s", p, strerror(errno));
			fchmod(fd, h->mode);
			close(fd);
			h->fd = open(p, O_RDONLY | O_CLOEXEC);
		}
		if (h->fd < 0 || fstat(h->fd, &h->st) != 0)
			FAIL("opening %s: %s", p, strerror(errno));
	}
}

/* The names in dir, sorted into one string "a,b,". */
static void names_in(const char *dir, char *out, size_t len)
{
	struct dirent **list;
	int n = scandir(dir, &list, NULL, alphasort);
	size_t used = 0;

	out[0] = '\0';
	if (n < 0)
		FAIL("scandir %s: %s", dir, strerror(errno));
	for (int i = 0; i < n; i++) {
		if (strcmp(list[i]->d_name, ".") && strcmp(list[i]->d_name, "..") && used < len)
			used += (size_t)snprintf(out + used, len - used, "%s,", list[i]->d_name);
		free(list[i]);
	}
	free(list);
}

/* What sweep looks at: its path under WORK. */
static char rel[2 * PATH_MAX];

static bool is_held(const char *r, const struct stat *st)
{
	for (size_t i = 0; i < NHELD; i++)
		if (!strcmp(held[i].rel, r) && held[i].st.st_ino == st->st_ino &&
		    held[i].st.st_dev == st->st_dev)
			return true;
	return false;
}

/* Everything under dest: a directory, a regular file or a symlink, no
 * set-id or sticky bit, and (without owner restoring) within the umask. */
static void check_entry(const char *r, const struct stat *st, unsigned flags)
{
	mode_t m = st->st_mode;

	if (!S_ISDIR(m) && !S_ISREG(m) && !S_ISLNK(m))
		FAIL("%s/%s arrived with type %o", work, r, (unsigned)(m & S_IFMT));
	if (!S_ISLNK(m) && (m & 07000))
		FAIL("%s/%s arrived with mode %o", work, r, (unsigned)(m & 07777));
	if (!(flags & F_OWNER) && !S_ISLNK(m) && (m & mask) && strcmp(r, "dest") != 0) {
		/* Directories that existed keep the mode they had. */
		for (size_t i = 0; i < NHELD; i++)
			if (held[i].dir && held[i].st.st_ino == st->st_ino &&
			    held[i].st.st_dev == st->st_dev)
				return;
		FAIL("%s/%s arrived with mode %o past the umask %o", work, r,
		     (unsigned)(m & 07777), (unsigned)mask);
	}
}

/* The listings of the directories sweep is in, one above the other: a
 * directory's whole listing is read before any of its entries is looked
 * at (so removing them does not move a reader), with getdents64 into
 * this stack rather than opendir, whose fstat, two fcntl and 32 KiB
 * buffer per directory cost a tree 2000 deep more than making it did.
 * (glibc's struct dirent64 is the kernel's record.) */
static _Alignas(8) char listing[4 << 20];
static size_t listed;

/* fd's entries appended to listing; returns where they start. */
static size_t list_dir(int fd)
{
	size_t start = listed;
	long n;

	do {
		size_t room = sizeof(listing) - listed;

		if (room < 65536)
			FAIL("%s/%s: more entries than the harness can list", work, rel);
		n = syscall(SYS_getdents64, fd, listing + listed, 65536);
		if (n < 0)
			FAIL("getdents %s/%s: %s", work, rel, strerror(errno));
		listed += (size_t)n;
	} while (n > 0);
	return start;
}

static void sweep(int fd, size_t len, unsigned flags);

/* One entry of the directory fd (its path under WORK: rel, len bytes):
 * checked, swept if a directory, removed unless held. */
static void sweep_one(int fd, size_t len, const char *name, unsigned flags)
{
	size_t n = strlen(name);
	struct stat st;

	if (len + 1 + n >= sizeof(rel))
		FAIL("%s/%s/%s: deeper than the harness can follow", work, rel, name);
	rel[len] = '/';
	memcpy(rel + len + 1, name, n + 1);
	if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		FAIL("stat %s/%s: %s", work, rel, strerror(errno));
	check_entry(rel, &st, flags);
	if (S_ISDIR(st.st_mode)) {
		int sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (sub < 0)
			FAIL("open %s/%s: %s", work, rel, strerror(errno));
		sweep(sub, len + 1 + n, flags);
	}
	if (!is_held(rel, &st) &&
	    unlinkat(fd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0)
		FAIL("cannot remove %s/%s: %s", work, rel, strerror(errno));
	rel[len] = '\0';
}

/* Every entry under the directory open as fd (its path under WORK is the
 * first len bytes of rel) is checked, and removed unless it is held: one
 * pass, relative to directory descriptors, so a deep tree costs no path
 * walks (nftw's full paths made a tree 80 deep cost more than the rest of
 * the input). Closes fd. */
static void sweep(int fd, size_t len, unsigned flags)
{
	size_t start = list_dir(fd), end = listed;

	for (size_t at = start; at < end;) {
		const struct dirent64 *e = (const struct dirent64 *)(listing + at);

		at += e->d_reclen;
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			sweep_one(fd, len, e->d_name, flags);
	}
	listed = start;
	close(fd);
}

static void check_world(unsigned flags)
{
	char names[512], p[1200];
	struct stat st;

	names_in(work, names, sizeof(names));
	if (strcmp(names, "dest,outside,") != 0)
		FAIL("WORK holds %s", names);
	names_in(outside, names, sizeof(names));
	if (strcmp(names, "victim.txt,") != 0)
		FAIL("outside/ holds %s", names);
	for (size_t i = 0; i < NHELD; i++) {
		struct held *h = &held[i];
		char buf[64];
		ssize_t n;

		if (fstat(h->fd, &st) != 0)
			FAIL("fstat %s", h->rel);
		if ((st.st_mode & 07777) != h->mode)
			FAIL("%s was re-moded to %o", h->rel, (unsigned)(st.st_mode & 07777));
		if (st.st_uid != h->st.st_uid || st.st_gid != h->st.st_gid)
			FAIL("%s changed owner", h->rel);
		if (!h->dir) {
			/* Replaced (--force) leaves it unlinked; never linked to. */
			if (st.st_nlink > 1)
				FAIL("%s got %lu links", h->rel, (unsigned long)st.st_nlink);
			n = pread(h->fd, buf, sizeof(buf), 0);
			if (n != (ssize_t)strlen(h->content) || memcmp(buf, h->content, (size_t)n))
				FAIL("%s was written", h->rel);
		}
		path_of(p, sizeof(p), h->rel);
		if (!(flags & F_FORCE) || h->dir) {
			/* Without --force every name is what it was; directories
			 * are never replaced. A directory's content may go
			 * (nothing removes it: check the name when present). */
			if (lstat(p, &st) != 0) {
				if (!h->dir || strcmp(h->rel, "dest") == 0)
					FAIL("%s vanished", h->rel);
			} else if (st.st_ino != h->st.st_ino || st.st_dev != h->st.st_dev) {
				FAIL("%s is another inode", h->rel);
			}
		}
	}
	/* dest itself (its mode: the held check above), then all under it. */
	if (fstat(held[HELD_DEST].fd, &st) != 0)
		FAIL("fstat dest: %s", strerror(errno));
	check_entry("dest", &st, flags);
	strcpy(rel, "dest");
	sweep(openat(held[HELD_DEST].fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), 4, flags);
}

struct sender {
	struct nshm_region *r;
	const uint8_t *data;
	size_t len;
	uint32_t chunk;
	volatile sig_atomic_t cancel;
	int rc;
};

static void send_main(void *arg)
{
	struct sender *s = arg;
	struct nshm_tx *tx = NULL;
	struct nshm_meta m = { .archive = 1, .mode = 0644 };
	struct nshm_params p = { .slots = 2, .chunk = s->chunk, .timeout_ms = 2000,
				 .peer_timeout_ms = 2000, .cancel = &s->cancel };
	int rc;

	strcpy(m.name, "fuzz");
	rc = nshm_tx_begin(s->r, &m, &p, &tx);
	if (rc == 0 && s->len)
		rc = nshm_tx_write(tx, s->data, s->len);
	if (rc == 0)
		rc = nshm_tx_end(tx);
	nshm_tx_close(tx, NSHM_R_IO);
	s->rc = rc;
}

static unsigned char *peer;     /* the region, as this harness maps it */
static int64_t next_beat;

/* The heartbeat threads' work, on the virtual clock: each claimed line
 * beats every NSHM_HEARTBEAT_MS (relaxed, as claim.c's beat() does). */
static void beat_lines(void)
{
	struct line_head *lines[2];

	if (!peer || pe.clock < next_beat)
		return;
	next_beat = pe.clock + NSHM_HEARTBEAT_MS * 1000000ll;
	lines[0] = &TX(peer)->head;
	lines[1] = &RX(peer)->head;
	for (int i = 0; i < 2; i++)
		if (atomic_load_explicit(&lines[i]->owner, memory_order_relaxed) != 0)
			atomic_fetch_add_explicit(&lines[i]->heartbeat, 1, memory_order_relaxed);
}

static void setup_once(void)
{
	const char *tmp = getenv("TMPDIR");
	struct rlimit rl;

	int n = snprintf(work, sizeof(work), "%s/nshm-fuzz-tree-XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");

	if (n < 0 || (size_t)n >= sizeof(work) || !mkdtemp(work))
		FAIL("mkdtemp: %s", strerror(errno));
	snprintf(dest, sizeof(dest), "%s/dest", work);
	snprintf(outside, sizeof(outside), "%s/outside", work);
	mask = umask(0);
	umask(mask);
	/* sweep holds a descriptor per level of a tree, and a path of
	 * PATH_MAX makes 2048 levels. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096 && rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void cleanup(void)
{
	if (work[0])
		nftw(work, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned flags = size ? data[0] : 0;
	struct sender s = { 0 };
	struct nshm_region *rr;
	struct nshm_rx *rx = NULL;
	struct nshm_params p = { .timeout_ms = 2000, .peer_timeout_ms = 2000 };
	struct nshm_tree_stats got;
	struct nshm_meta meta;
	size_t rsize;
	int rc;

	if (!work[0]) {
		setup_once();
		atexit(cleanup);
	}
	if ((flags & F_OWNER) && geteuid() != 0)
		flags &= ~F_OWNER;
	s.chunk = flags & F_SMALL ? 4096 : 65536;
	s.data = size ? data + 1 : data;
	s.len = size ? size - 1 : 0;
	make_world();
	rsize = NSHM_DATA_OFF + 2 * (size_t)s.chunk;
	peer = region_new(rsize);
	s.r = region_open();
	rr = region_open();
	pe_on_clock = beat_lines;
	pe.eager = true;
	next_beat = 0;
	peer_start(send_main, &s);
	/* Not while the sender writes its line's identity: a line read
	 * between its version and its magic looks foreign (EMAGIC), a race
	 * of the handshake that this harness is not about (fuzz_receiver's
	 * is). The other way round it costs the sender its offer. (A
	 * coroutine sender has written it by its first wait.) */
	for (int i = 0; pe.threads && i < 2000 &&
	     atomic_load(&TX(peer)->head.magic) != NSHM_MAGIC; i++)
		pause_us(50);
	rc = nshm_rx_begin(rr, &p, &rx, &meta);
	if (rc != 0) {
		nshm_rx_close(rx, NSHM_R_IO);
		s.cancel = 1;
		peer_finish();
		if (rc == -NSHM_EMAGIC || (rc == -ETIMEDOUT && s.rc == -NSHM_EMAGIC))
			goto out;
		FAIL("nshm_rx_begin returned %d (%s), the sender %d", rc,
		     nshm_strerror(rc), s.rc);
	}
	CHECK(meta.archive);
	nshm_rx_accept(rx);
	rc = nshm_rx_tree(rx, dest, (flags & F_FORCE ? NSHM_EXTRACT_FORCE : 0) |
			  (flags & F_OWNER ? NSHM_EXTRACT_OWNER : 0), NULL, NULL, &got);
	if (!IN_SET(rc, 0, -NSHM_EPROTO, -NSHM_ECHECKSUM, -NSHM_EPEERGONE, -NSHM_EPEERABORT,
		    -EEXIST, -EIO, -ENOSPC, -EFBIG, -ENAMETOOLONG, -ENOENT, -ENOTDIR,
		    -EISDIR, -ENOTEMPTY, -EXDEV, -EPERM, -EACCES, -ELOOP, -EMLINK))
		FAIL("nshm_rx_tree returned %d (%s)", rc, nshm_strerror(rc));
	if (getenv("NSHM_FUZZ_DEBUG"))
		fprintf(stderr, "fuzz_tree: flags %u, %zu bytes: rc %d (%s), %llu entries\n",
			flags, s.len, rc, rc ? nshm_rx_why(rx) : "ok",
			(unsigned long long)got.entries);
	if (rc < 0)
		CHECK(nshm_rx_why(rx)[0] != '\0');
	nshm_rx_complete(rx, rc == 0, rc ? (nshm_rx_reason(rx) ? nshm_rx_reason(rx)
							       : NSHM_R_IO) : NSHM_R_NONE);
	nshm_rx_close(rx, NSHM_R_IO);
	s.cancel = 1;
	peer_finish();
out:
	nshm_close(rr);
	nshm_close(s.r);
	munmap(peer, rsize);
	peer = NULL;
	check_world(flags);
	return 0;
}
