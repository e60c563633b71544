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

static bool made_here(const struct extract *x, const struct stat *st)
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
	if (st->st_ino == 0 || made_here(x, st) || x->nmade >= MADE_MAX)
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

/* dest/name with empty and "." components dropped; -1 for an absolute
 * name, a ".." component or a path too long. An empty result stands for
 * DEST itself. */
int ex_place_name(const struct extract *x, const char *name, char *out, size_t outlen)
{
	size_t len = strlen(x->dest);
	const char *p = name;

	if (*name == '/' || len >= outlen)
		return -1;
	memcpy(out, x->dest, len + 1);
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -1;
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (len + 1 + n >= outlen)
				return -1;
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

/* A symlink among path's directories below DEST: libarchive would refuse
 * to write through it; refuse before looking through it, so that a
 * symlink of the sender's cannot ask about things outside. */
static bool through_symlink(const struct extract *x, const char *path)
{
	char p[PATH_MAX];
	size_t len = strlen(path), at = strlen(x->dest) + 1;
	struct stat st;

	memcpy(p, path, len + 1);
	for (char *s = strchr(p + at, '/'); at < len && s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (lstat(p, &st) == 0 && S_ISLNK(st.st_mode))
			return true;
		*s = '/';
	}
	return false;
}

/* A hard link must name a regular file this transfer made. */
int ex_check_link_target(struct extract *x, struct archive_entry *e, const char *name)
{
	const char *hard = archive_entry_hardlink(e);
	char target[PATH_MAX], esc[160], esc2[160];
	struct stat st;

	if (ex_place_name(x, hard, target, sizeof(target)) != 0 || !strcmp(target, x->dest))
		return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_BADNAME,
				"refused a hard link to '%s': outside the destination",
				ex_shown(hard, esc, sizeof(esc)));
	if (through_symlink(x, target) || lstat(target, &st) != 0 || !S_ISREG(st.st_mode) ||
	    !made_here(x, &st))
		return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_BADNAME,
				"refused '%s': a hard link to '%s', which is not a file "
				"this transfer made", ex_shown(name, esc, sizeof(esc)),
				ex_shown(hard, esc2, sizeof(esc2)));
	archive_entry_copy_hardlink(e, target);
	return 0;
}

/* Without --force nothing may be replaced; with it files and symlinks
 * may, directories never. Returns 1 for a directory entry on an existing
 * directory: nothing to do, it keeps its mode, owner and times. */
int ex_check_existing(struct extract *x, enum kind k, const char *final,
			  const char *name)
{
	struct stat st;
	char esc[160];

	if (through_symlink(x, final))
		return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_BADNAME,
				"refused '%s': through a symbolic link",
				ex_shown(name, esc, sizeof(esc)));
	if (lstat(final, &st) != 0)
		return 0;
	if (k == K_DIR && S_ISDIR(st.st_mode))
		return 1;
	/* libarchive's NO_OVERWRITE skips existing files in silence; a user
	 * must hear that a file was not delivered, so refuse it here. */
	if (!(x->flags & NSHM_EXTRACT_FORCE))
		return side_fail(rx_side(x->rx), -EEXIST, NSHM_R_EXISTS,
				"%s exists (use --force to replace it)",
				ex_shown(name, esc, sizeof(esc)));
	if (S_ISDIR(st.st_mode))
		return side_fail(rx_side(x->rx), -EEXIST, NSHM_R_EXISTS,
				"%s is a directory: --force replaces files only",
				ex_shown(name, esc, sizeof(esc)));
	/* A file where a directory goes: out of the way, so that libarchive
	 * never looks through a symlink left there. */
	if (k == K_DIR && unlink(final) != 0)
		return side_fail(rx_side(x->rx), -errno, NSHM_R_IO, "%s: %s",
				ex_shown(name, esc, sizeof(esc)), strerror(errno));
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
