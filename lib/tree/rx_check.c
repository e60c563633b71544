/* SPDX-License-Identifier: BSD-2-Clause */
/* Receiving a tree: the checks on each entry before anything is made for
 * it (extract.h), and the table of the regular files this transfer made,
 * the only targets a hard link may have. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "extract.h"
#include "proto/proto.h"
#include "tree.h"

/* ---- the regular files this transfer made ---- */

static size_t id_slot(const struct extract *x, uint64_t dev, uint64_t ino)
{
	/* murmur3's finalizer: every input bit reaches the low bits (a bare
	 * multiply and shift clustered tmpfs's inode numbers: about 250 probes
	 * a lookup over 1000 files). */
	uint64_t h = ino ^ (dev * 0x9e3779b97f4a7c15ull);

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return (size_t)h & (x->slots - 1);
}

bool ex_made_here(const struct extract *x, const struct stat *st)
{
	if (!x->slots || st->st_ino == 0)
		return false;
	for (size_t i = id_slot(x, st->st_dev, st->st_ino);; i = (i + 1) & (x->slots - 1)) {
		if (x->made[i].ino == 0)
			return false;
		if (x->made[i].dev == st->st_dev && x->made[i].ino == st->st_ino)
			return true;
	}
}

static void id_put(struct file_id *t, size_t slots, const struct extract *x,
		   uint64_t dev, uint64_t ino)
{
	size_t i = id_slot(x, dev, ino);

	while (t[i].ino != 0 && !(t[i].dev == dev && t[i].ino == ino))
		i = (i + 1) & (slots - 1);
	t[i].dev = dev;
	t[i].ino = ino;
}

/* Remembers a file this transfer made; past MADE_MAX files, or without
 * memory, a later hard link to it is refused (never a wrong one taken). */
void ex_remember(struct extract *x, const struct stat *st)
{
	if (st->st_ino == 0 || ex_made_here(x, st) || x->nmade >= MADE_MAX)
		return;
	if (2 * (x->nmade + 1) > x->slots) {
		size_t slots = x->slots ? 2 * x->slots : 1024;
		struct file_id *t = calloc(slots, sizeof(*t));
		struct extract grown = *x;

		if (!t)
			return;
		grown.slots = slots;
		for (size_t i = 0; i < x->slots; i++)
			if (x->made[i].ino)
				id_put(t, slots, &grown, x->made[i].dev, x->made[i].ino);
		free(x->made);
		x->made = t;
		x->slots = slots;
	}
	id_put(x->made, x->slots, x, st->st_dev, st->st_ino);
	x->nmade++;
}

/* name below DEST with empty and "." components dropped: "a/b", or ""
 * for DEST itself; -1 for an absolute name, a ".." component or a path
 * too long. */
int ex_place_name(const char *name, char *out, size_t outlen)
{
	size_t len = 0;
	const char *p = name;

	if (*name == '/' || outlen == 0)
		return -1;
	out[0] = '\0';
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -1;
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (len + 1 + n >= outlen)
				return -1;
			if (len)
				out[len++] = '/';
			memcpy(out + len, p, n);
			out[len += n] = '\0';
		}
		p += n;
		while (*p == '/')
			p++;
	}
	return 0;
}

/* The entry's name for a message: escaped, it came from the peer. */
const char *ex_shown(const char *name, char *buf, size_t len)
{
	nshm_escape(buf, len, name ? name : "", 0);
	return buf;
}

static const char *type_name(mode_t type)
{
	switch (type) {
	case AE_IFCHR: return "a character device";
	case AE_IFBLK: return "a block device";
	case AE_IFIFO: return "a FIFO";
	case AE_IFSOCK: return "a socket";
	case AE_IFLNK: return "a symbolic link without a valid target";
	default: return "an entry of an unknown type";
	}
}

int ex_classify(struct extract *x, struct archive_entry *e, const char *name,
		    enum kind *k)
{
	const char *hard = archive_entry_hardlink(e), *sym = archive_entry_symlink(e);
	mode_t type = archive_entry_filetype(e);
	char esc[160];

	if (hard) {
		/* With data, libarchive would open the target and rewrite it. */
		if (archive_entry_size(e) > 0)
			return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_UNSUPPORTED,
					"refused '%s': a hard link carrying data",
					ex_shown(name, esc, sizeof(esc)));
		if ((type != 0 && type != AE_IFREG) || sym)
			return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_UNSUPPORTED,
					"refused '%s': a hard link of an odd type",
					ex_shown(name, esc, sizeof(esc)));
		*k = K_HARDLINK;
	} else if (type == AE_IFREG && !sym) {
		*k = K_FILE;
	} else if (type == AE_IFDIR && !sym) {
		*k = K_DIR;
	} else if (type == AE_IFLNK && sym && *sym && strlen(sym) < PATH_MAX) {
		*k = K_SYMLINK;
	} else {
		return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_UNSUPPORTED,
				"refused '%s': %s (only directories, regular files, "
				"symbolic links and hard links are taken)",
				ex_shown(name, esc, sizeof(esc)), type_name(type));
	}
	return 0;
}

int ex_fast_failed(struct extract *x, int err, const char *name, const char *what)
{
	char esc[160];

	if (x->rc)
		return x->rc;
	return side_fail(rx_side(x->rx), -err, nshm_errno_reason(err, NSHM_R_IO), "%s: %s%s",
			 ex_shown(name, esc, sizeof(esc)), what, strerror(err));
}

/* An entry's parent could not be reached (ex_parent). */
int ex_walk_failed(struct extract *x, int err, const char *name)
{
	char esc[160];

	if (err == ELOOP)
		return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_BADNAME,
				 "refused '%s': through a symbolic link",
				 ex_shown(name, esc, sizeof(esc)));
	if (err == ENOTDIR)
		return side_fail(rx_side(x->rx), -ENOTDIR, nshm_errno_reason(ENOTDIR, NSHM_R_IO),
				 "refused '%s': a component on its way is not a directory",
				 ex_shown(name, esc, sizeof(esc)));
	return ex_fast_failed(x, err, name, "");
}

/* A hard link must name a regular file this transfer made. */
int ex_not_made_here(struct extract *x, const char *name, const char *target)
{
	char esc[160], esc2[160];

	return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_BADNAME,
			 "refused '%s': a hard link to '%s', which is not a file "
			 "this transfer made", ex_shown(name, esc, sizeof(esc)),
			 ex_shown(target, esc2, sizeof(esc2)));
}
