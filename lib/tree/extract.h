/* SPDX-License-Identifier: BSD-2-Clause */
/* Receiving a tree (archive_rx.c), between its files, inside tree/ only:
 * the state of one extraction, and what each file gives the others.
 *   archive_rx.c  the stream: libarchive fed from verified chunks, entry
 *                 by entry, and the run beneath a directory fd
 *   rx_check.c    entry checks: names, kinds, hard-link targets (the files
 *                 this transfer made), what exists; how a refusal is said
 *   rx_create.c   creating entries: libarchive's writer, and our own for
 *                 regular files (the common case)
 *   rx_dest.c     destinations: the parent directory by fd, temporary
 *                 names, the final rename (util/publish.c's rules) */
#ifndef NSHM_TREE_EXTRACT_H
#define NSHM_TREE_EXTRACT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "archive_dl.h"
#include "nshm.h"

/* Regular files this transfer made, the only targets a hard link may
 * have: at most this many are remembered (16 bytes each, in a table of
 * twice as many slots: 16 MiB at most). */
#define MADE_MAX (1u << 19)
/* libarchive keeps a record (about 240 bytes) of each directory it makes,
 * to give it its mode and times once its content is written; after this
 * many the records are applied and a fresh writer starts (8 MiB at most).
 * A directory made before that point whose content comes after it may
 * get a later mtime, or refuse that content if its mode forbids writing
 * (not to root). */
#define DIRS_PER_WRITER (1u << 15)

struct file_id {
	uint64_t dev, ino;    /* ino 0: an empty slot */
};

struct extract {
	struct nshm_rx *rx;
	unsigned flags;
	uint64_t max_bytes;       /* 0: no limit */
	char dest[PATH_MAX];
	char current[PATH_MAX];   /* temporary file being written, removed on failure */
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
	struct archive *disk;     /* the writer; replaced every DIRS_PER_WRITER dirs */
	unsigned dirs;            /* directories the writer made */
	/* The regular files' own path (write_fast): DEST, and the last
	 * parent directory below it, open without following symlinks. */
	int destfd, pfd;
	char pdir[PATH_MAX];      /* pfd's path */
	uint64_t rnd;             /* temporary names (O_EXCL decides, not them) */
	uid_t uid;
	gid_t gid;
};

/* What an entry is; everything else is refused. */
enum kind { K_DIR, K_FILE, K_SYMLINK, K_HARDLINK };

/* rx_check.c */
void ex_remember(struct extract *x, const struct stat *st);
int ex_place_name(const struct extract *x, const char *name, char *out, size_t outlen);
const char *ex_shown(const char *name, char *buf, size_t len);
int ex_classify(struct extract *x, struct archive_entry *e, const char *name,
		enum kind *k);
int ex_check_link_target(struct extract *x, struct archive_entry *e, const char *name);
int ex_check_existing(struct extract *x, enum kind k, const char *final,
		      const char *name);
int ex_fast_failed(struct extract *x, int err, const char *name, const char *what);

/* rx_create.c */
struct archive *ex_new_writer(void);
int ex_write_file(struct extract *x, struct archive *a, struct archive *disk,
		  struct archive_entry *e, const char *final, const char *name);
int ex_write_other(struct extract *x, struct archive *disk, struct archive_entry *e,
		   enum kind k, const char *name);
int ex_write_fast(struct extract *x, struct archive *a, struct archive_entry *e,
		  int dfd, const char *final, const char *base, const char *name);

/* rx_dest.c */
int ex_temp_beside(struct extract *x, const char *final, char *out, size_t outlen);
int ex_put_in_place(struct extract *x, const char *tmp, const char *final,
		    const char *name);
int ex_parent_fd(struct extract *x, const char *final, const char **base);
int ex_temp_at(struct extract *x, int dfd, const char *final, const char *base,
	       mode_t mode, char *tmp);
int ex_rename_at(struct extract *x, int dfd, const char *tmp, const char *base,
		 const char *name);

#endif
