/* SPDX-License-Identifier: BSD-2-Clause */
/* Receiving a tree: making an entry once it passed the checks
 * (extract.h), each relative to its parent directory's fd (rx_dest.c):
 * - a regular file is created under a fresh temporary name with O_EXCL,
 *   written, given owner (restored), mode and times by its fd, stat'ed
 *   for the hard-link table and renamed into place;
 * - a directory is made with mkdirat (an existing one is reused as it is:
 *   that is how trees merge), opened without following a symlink, given
 *   its owner by fd, and its mode and times at the end (rx_dest.c);
 * - a symlink is made with symlinkat, a hard link with linkat (never
 *   following a symlink), each under a temporary name renamed into place
 *   as a file is, so that --force replaces what is there in one step.
 * Set-id and sticky bits are never given; without owners restored, modes
 * pass through the umask (the kernel applies it to what is created).
 * libarchive's writer made about 26 system calls per small file and
 * looked every entry up by its path; nothing here does. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "extract.h"
#include "proto/proto.h"
#include "tree.h"

/* The sender's times, as libarchive set them (a missing atime: now, a
 * missing mtime: left as it is). */
void ex_times(struct archive_entry *e, struct timespec ts[2])
{
	ts[0] = (struct timespec){ .tv_nsec = UTIME_NOW };
	ts[1] = (struct timespec){ .tv_nsec = UTIME_OMIT };
	if (archive_entry_atime_is_set(e)) {
		ts[0].tv_sec = archive_entry_atime(e);
		ts[0].tv_nsec = archive_entry_atime_nsec(e);
	}
	if (archive_entry_mtime_is_set(e)) {
		ts[1].tv_sec = archive_entry_mtime(e);
		ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	}
}

/* The ids of an entry's owner, as tar and libarchive map them: by name
 * when this system knows the name, else by number. The last name found
 * is kept (a tree's entries mostly have one owner). */
int ex_owner(struct extract *x, struct archive_entry *e, uid_t *uid, gid_t *gid)
{
	const char *un = archive_entry_uname(e), *gn = archive_entry_gname(e);
	char buf[4096];
	struct passwd pw, *pr = NULL;
	struct group gr, *gres = NULL;

	*uid = (uid_t)archive_entry_uid(e);
	*gid = (gid_t)archive_entry_gid(e);
	if (un && *un && strlen(un) < sizeof(x->uname)) {
		if (strcmp(un, x->uname) != 0 &&
		    getpwnam_r(un, &pw, buf, sizeof(buf), &pr) == 0 && pr) {
			strcpy(x->uname, un);
			x->uid = pr->pw_uid;
		}
		if (!strcmp(un, x->uname))
			*uid = x->uid;
	}
	if (gn && *gn && strlen(gn) < sizeof(x->gname)) {
		if (strcmp(gn, x->gname) != 0 &&
		    getgrnam_r(gn, &gr, buf, sizeof(buf), &gres) == 0 && gres) {
			strcpy(x->gname, gn);
			x->gid = gres->gr_gid;
		}
		if (!strcmp(gn, x->gname))
			*gid = x->gid;
	}
	return 0;
}

/* The entry's data at its offsets (a sparse entry's come with gaps: holes),
 * never past its size, as libarchive's writer does. */
static int write_data(struct extract *x, struct archive *a, int fd, int64_t size,
		      const char *name)
{
	const void *buf;
	size_t len;
	la_int64_t off, end = 0;
	int r, rc;

	while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
		if (off < 0 || off >= size)
			continue;
		if ((int64_t)len > size - off)
			len = (size_t)(size - off);
		if (len == 0)
			continue;
		if ((rc = nshm_pwrite_all(fd, buf, len, off, NULL)) < 0)
			return ex_fast_failed(x, -rc, name, "");
		if (off + (la_int64_t)len > end)
			end = off + (la_int64_t)len;
	}
	if (r != ARCHIVE_EOF) {
		char esc[160];

		return x->rc ? x->rc : side_fail(rx_side(x->rx), -EIO, NSHM_R_IO, "%s: %s",
						 ex_shown(name, esc, sizeof(esc)),
						 archive_error_string(a));
	}
	if (end < size && ftruncate(fd, size) != 0)
		return ex_fast_failed(x, errno, name, "");
	return 0;
}

/* A written file's owner and exact mode (owners restored), times, and
 * its identity for the hard-link table. */
static int finish_file(struct extract *x, int fd, struct archive_entry *e,
		       const char *name, struct stat *st)
{
	struct timespec ts[2];
	uid_t uid;
	gid_t gid;

	if (x->flags & NSHM_EXTRACT_OWNER) {
		ex_owner(x, e, &uid, &gid);
		if (fchown(fd, uid, gid) != 0 ||
		    fchmod(fd, (mode_t)archive_entry_perm(e) & 0777) != 0)
			return ex_fast_failed(x, errno, name, "");
	}
	ex_times(e, ts);
	(void)futimens(fd, ts);   /* libarchive too only warned */
	if (fstat(fd, st) != 0)
		return ex_fast_failed(x, errno, name, "");
	return 0;
}

int ex_write_fast(struct extract *x, struct archive *a, struct archive_entry *e,
		  int dfd, const char *base, const char *name)
{
	char tmp[NSHM_TEMP_LEN];
	struct stat st;
	int rc, fd = nshm_temp_open(dfd, tmp, (mode_t)archive_entry_perm(e) & 0777, &x->rnd);

	if (fd < 0)
		return ex_fast_failed(x, -fd, name, "no temporary file beside it: ");
	rc = write_data(x, a, fd, archive_entry_size(e), name);
	if (rc == 0)
		rc = finish_file(x, fd, e, name, &st);
	if (close(fd) != 0 && rc == 0)
		rc = ex_fast_failed(x, errno, name, "");
	if (rc < 0) {
		unlinkat(dfd, tmp, 0);   /* the file in progress; directories stay */
		return rc;
	}
	if ((rc = ex_publish(x, dfd, tmp, base, name)) < 0)
		return rc;
	ex_remember(x, &st);
	return 0;
}

/* ---- directories ---- */

/* mkdirat, or what is there: 1 for an existing directory (reused as it
 * is), 0 made, or a failure. Without --force nothing else may be there;
 * with it a file or symlink is replaced, never followed. */
static int make_dir_at(struct extract *x, int dfd, const char *base, mode_t mode,
		       const char *name)
{
	struct stat st;
	char esc[160];

	if (mkdirat(dfd, base, mode) == 0)
		return 0;
	if (errno != EEXIST || fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return ex_fast_failed(x, errno, name, "");
	if (S_ISDIR(st.st_mode))
		return 1;
	if (!(x->flags & NSHM_EXTRACT_FORCE))
		return side_fail(rx_side(x->rx), -EEXIST, NSHM_R_EXISTS,
				 "%s exists (use --force to replace it)",
				 ex_shown(name, esc, sizeof(esc)));
	if (unlinkat(dfd, base, 0) != 0 || mkdirat(dfd, base, mode) != 0)
		return ex_fast_failed(x, errno, name, "");
	return 0;
}

#ifdef NSHM_TEST_HOOKS
#include <signal.h>
#include <stdbool.h>
/* NSHM_TEST_STOP_MADE_DIR=BASE (tests only): stop once, right after a
 * directory named BASE was made and before it is opened: the moment
 * another user could swap it (tests/confine.bats). */
static void hook_made_dir(const char *base)
{
	static bool done;
	const char *v = getenv("NSHM_TEST_STOP_MADE_DIR");

	if (!done && v && strcmp(v, base) == 0) {
		done = true;
		raise(SIGSTOP);
	}
}
#else
static void hook_made_dir(const char *base) { (void)base; }
#endif

/* Made with u+rwx whatever its mode, so that its content can be written;
 * its own mode (through the umask, or exact with owners restored) comes
 * at the end. The directory opened must be this process's to be given
 * owner, mode or times: one another user swapped in between mkdirat and
 * the open (a user can move only a directory it may write), or one a file
 * system gives its own owner (vfat, NFS with root squashed), is left as
 * it is, as an existing directory is. */
int ex_make_dir(struct extract *x, struct archive_entry *e, int dfd, const char *base,
		const char *name)
{
	mode_t perm = (mode_t)archive_entry_perm(e) & 0777, mode;
	struct timespec ts[2];
	struct stat st;
	uid_t uid;
	gid_t gid;
	int fd, rc = make_dir_at(x, dfd, base, perm | 0700, name);

	if (rc != 0)
		return rc < 0 ? rc : 0;
	hook_made_dir(base);
	fd = nshm_open_child(dfd, base, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return ex_walk_failed(x, -fd, name);
	rc = fstat(fd, &st) != 0 ? ex_fast_failed(x, errno, name, "") : 0;
	if (rc < 0 || st.st_uid != x->euid) {
		close(fd);
		return rc;
	}
	/* The umask took what it takes from perm | 0700: the same from perm. */
	mode = (st.st_mode & 0777) & ~(0700 & ~perm);
	if (x->flags & NSHM_EXTRACT_OWNER) {
		ex_owner(x, e, &uid, &gid);
		mode = perm;
		if (fchown(fd, uid, gid) != 0) {
			close(fd);
			return ex_fast_failed(x, errno, name, "");
		}
	}
	ex_times(e, ts);
	return ex_defer(x, fd, &st, mode, ts);
}

/* ---- symlinks and hard links: a temporary name, then renamed ---- */

struct maker {
	const char *target;   /* the symlink's, or the link target's name */
	int tfd;              /* the link target's directory; -1: a symlink */
};

static int make_temp(struct extract *x, const struct maker *m, int dfd,
		     char tmp[NSHM_TEMP_LEN])
{
	for (int tries = 0; tries < 16; tries++) {
		int r;

		nshm_temp_name(tmp, &x->rnd);
		r = m->tfd < 0 ? symlinkat(m->target, dfd, tmp)
			       : linkat(m->tfd, m->target, dfd, tmp, 0);
		if (r == 0 || errno != EEXIST)
			return r == 0 ? 0 : -errno;
	}
	return -EEXIST;
}

int ex_make_symlink(struct extract *x, struct archive_entry *e, int dfd,
		    const char *base, const char *name)
{
	struct maker m = { archive_entry_symlink(e), -1 };
	char tmp[NSHM_TEMP_LEN];
	struct timespec ts[2];
	uid_t uid;
	gid_t gid;
	int rc = make_temp(x, &m, dfd, tmp);

	if (rc < 0)
		return ex_fast_failed(x, -rc, name, "");
	if (x->flags & NSHM_EXTRACT_OWNER) {
		ex_owner(x, e, &uid, &gid);
		if (fchownat(dfd, tmp, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = ex_fast_failed(x, errno, name, "");
			unlinkat(dfd, tmp, 0);
			return rc;
		}
	}
	ex_times(e, ts);
	(void)utimensat(dfd, tmp, ts, AT_SYMLINK_NOFOLLOW);
	return ex_publish(x, dfd, tmp, base, name);
}

/* The link target: a regular file this transfer made, found from DEST's
 * fd as any entry's parent is (nothing made on the way). Its directory's
 * fd (a duplicate: the cache moves on) in *tfd, its name in *tbase. */
static int link_target(struct extract *x, struct archive_entry *e, const char *name,
		       char *trel, int *tfd, const char **tbase, struct stat *st)
{
	const char *hard = archive_entry_hardlink(e);
	char esc[160];
	int dfd;

	if (ex_place_name(hard, trel, PATH_MAX) != 0 || !*trel)
		return side_fail(rx_side(x->rx), -NSHM_EPROTO, NSHM_R_BADNAME,
				 "refused a hard link to '%s': outside the destination",
				 ex_shown(hard, esc, sizeof(esc)));
	dfd = ex_parent(x, trel, false, tbase);
	if (dfd < 0 || fstatat(dfd, *tbase, st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    !S_ISREG(st->st_mode) || !ex_made_here(x, st))
		return ex_not_made_here(x, name, hard);
	if ((*tfd = fcntl(dfd, F_DUPFD_CLOEXEC, 0)) < 0)
		return ex_fast_failed(x, errno, name, "");
	return 0;
}

/* What linkat made is the file checked (not one put in its place since):
 * then renamed into place. A rename onto another name of the same file
 * does nothing and leaves the temporary name: removed after. */
static int place_link(struct extract *x, int dfd, const char *tmp, const char *base,
		      const struct stat *want, const char *name, const char *hard)
{
	struct stat st;
	int rc;

	if (fstatat(dfd, tmp, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_ino != want->st_ino ||
	    st.st_dev != want->st_dev) {
		unlinkat(dfd, tmp, 0);
		return ex_not_made_here(x, name, hard);
	}
	if ((rc = ex_publish(x, dfd, tmp, base, name)) == 0)
		(void)unlinkat(dfd, tmp, 0);
	return rc;
}

int ex_make_link(struct extract *x, struct archive_entry *e, const char *rel,
		 const char *name)
{
	char trel[PATH_MAX], tmp[NSHM_TEMP_LEN];
	const char *tbase, *base;
	struct stat want;
	struct maker m;
	int dfd, rc = link_target(x, e, name, trel, &m.tfd, &tbase, &want);

	if (rc < 0)
		return rc;
	m.target = tbase;
	dfd = ex_parent(x, rel, true, &base);
	rc = dfd < 0 ? ex_walk_failed(x, -dfd, name) : make_temp(x, &m, dfd, tmp);
	close(m.tfd);
	if (rc == 0)
		return place_link(x, dfd, tmp, base, &want, name, archive_entry_hardlink(e));
	return dfd < 0 ? rc : ex_fast_failed(x, -rc, name, "");
}
