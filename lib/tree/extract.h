/* SPDX-License-Identifier: BSD-2-Clause */
/* Receiving a tree (archive_rx.c), between its files, inside tree/ only:
 * the state of one extraction, and what each file gives the others.
 *   archive_rx.c  the stream: libarchive fed from verified chunks, entry
 *                 by entry, and the run beneath a directory fd
 *   rx_check.c    entry checks: names, kinds, the table of the files this
 *                 transfer made (a hard link's only targets); how a
 *                 refusal is said
 *   rx_create.c   making each kind of entry relative to its parent's fd:
 *                 files, directories, symlinks, hard links
 *   rx_dest.c     where an entry goes: its parent directory reached one
 *                 name at a time from DEST's fd (and cached), temporary
 *                 names and the final rename (util/publish.c's rules),
 *                 the directories' modes and times applied at the end
 * No entry is ever made or looked up by a path from the receiver's
 * working directory, and libarchive only parses. */
#ifndef NSHM_TREE_EXTRACT_H
#define NSHM_TREE_EXTRACT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "archive_dl.h"
#include "nshm.h"

/* Regular files this transfer made, the only targets a hard link may
 * have: at most this many are remembered (16 bytes each, in a table of
 * twice as many slots: 16 MiB at most). */
#define MADE_MAX (1u << 19)
/* The parent-directory cache keeps an fd for each of the first LEVELS_MAX
 * components of the last parent opened, and one for that parent itself:
 * the next entry's parent (walk order: the same, a child, or a sibling
 * of an ancestor) is one openat away. Deeper than that, going back up
 * reopens from level LEVELS_MAX. */
#define LEVELS_MAX 64
/* A directory this transfer made gets its mode and times once its content
 * is written (a read-only one would refuse it, a new entry would change
 * its mtime). Each waits as an open fd, at most DEFER_MAX of them (with
 * LEVELS_MAX + 1 for the cache, well under the usual 1024 fds); past that
 * the oldest finished directories (not on the way to the current entry)
 * get theirs first, and if all are on that way, all do: a read-only
 * directory made before that point whose content comes after it may then
 * refuse that content (not to root) and get a later mtime. */
#define DEFER_MAX 256

struct file_id {
	uint64_t dev, ino;    /* ino 0: an empty slot */
};

/* The last parent directory opened below DEST, as a stack of fds. */
struct dir_cache {
	char path[PATH_MAX];      /* its path below DEST, "" for DEST */
	size_t len;               /* strlen(path) */
	unsigned depth;           /* its components */
	int fd[LEVELS_MAX + 1];   /* fd[i]: its first i components (fd[0]: DEST) */
	uint64_t ino[LEVELS_MAX + 1];  /* theirs (0: not known) */
	size_t end[LEVELS_MAX + 1];    /* where each of them ends in path */
	int deep;                 /* the parent itself when depth > LEVELS_MAX */
};

/* A directory made here, waiting for its mode and times. */
struct dir_fix {
	int fd;
	uint64_t ino;
	mode_t mode;
	bool remode;              /* made with more than its mode (u+rwx) */
	struct timespec ts[2];
};

struct extract {
	struct nshm_rx *rx;
	unsigned flags;
	uint64_t max_bytes;       /* 0: no limit */
	int rc;                   /* the stream's own failure, if any */
	/* The read callback's position in the chunk it holds. */
	const unsigned char *left;
	size_t nleft;
	uint64_t stream;          /* stream bytes taken so far */
	bool in_header;
	size_t header;            /* stream bytes given during this header */
	/* Regular files made by this transfer (open addressing). */
	struct file_id *made;
	size_t nmade, slots;
	int destfd;
	struct dir_cache cache;
	struct dir_fix fix[DEFER_MAX];
	unsigned nfix;
	uint64_t rnd;             /* temporary names (O_EXCL decides, not them) */
	uid_t euid;
	/* Owners restored: the last names looked up. */
	char uname[64], gname[64];
	uid_t uid;
	gid_t gid;
};

/* What an entry is; everything else is refused. */
enum kind { K_DIR, K_FILE, K_SYMLINK, K_HARDLINK };

/* rx_check.c */
void ex_remember(struct extract *x, const struct stat *st);
bool ex_made_here(const struct extract *x, const struct stat *st);
int ex_place_name(const char *name, char *out, size_t outlen);
const char *ex_shown(const char *name, char *buf, size_t len);
int ex_classify(struct extract *x, struct archive_entry *e, const char *name,
		enum kind *k);
int ex_fast_failed(struct extract *x, int err, const char *name, const char *what);
int ex_walk_failed(struct extract *x, int err, const char *name);
int ex_not_made_here(struct extract *x, const char *name, const char *target);

/* rx_create.c */
int ex_write_fast(struct extract *x, struct archive *a, struct archive_entry *e,
		  int dfd, const char *base, const char *name);
int ex_make_dir(struct extract *x, struct archive_entry *e, int dfd, const char *base,
		const char *name);
int ex_make_symlink(struct extract *x, struct archive_entry *e, int dfd,
		    const char *base, const char *name);
int ex_make_link(struct extract *x, struct archive_entry *e, const char *rel,
		 const char *name);
void ex_times(struct archive_entry *e, struct timespec ts[2]);
int ex_owner(struct extract *x, struct archive_entry *e, uid_t *uid, gid_t *gid);

/* rx_dest.c */
int ex_parent(struct extract *x, const char *rel, bool make, const char **base);
void ex_cache_drop(struct extract *x);
int ex_publish(struct extract *x, int dfd, const char *tmp, const char *base,
	       const char *name);
int ex_defer(struct extract *x, int fd, const struct stat *st, mode_t mode,
	     const struct timespec ts[2]);
int ex_fix_dirs(struct extract *x, bool all);

#endif
