/* SPDX-License-Identifier: BSD-2-Clause */
/* The walk behind nshm_tree_measure and nshm_tx_tree. libarchive's
 * read_disk cost about 36 system calls per small file (fstatfs, SEEK_DATA
 * probes, several stats and opens) and a fresh reader per FILE argument;
 * this walk makes one fstatat per entry, relative to an open directory,
 * and one open per directory. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "walk.h"

struct walk {
	nshm_walk_fn fn;
	void *arg;
	char name[PATH_MAX];   /* the entry's name in the stream */
	char *failed;
};

static int failed_at(struct walk *w, int err, const char *what)
{
	if (w->failed) {
		size_t n = strnlen(what, PATH_MAX - 1);

		memcpy(w->failed, what, n);
		w->failed[n] = '\0';
	}
	return -err;
}

/* The entries of the open directory dfd, whose stream name is w->name
 * (len bytes). Takes dfd over. */
static int walk_dir(struct walk *w, int dfd, size_t len)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		close(dfd);
		return failed_at(w, errno, w->name);
	}
	for (;;) {
		struct nshm_walk_entry e = { .dirfd = dfd, .name = w->name };
		size_t n;

		errno = 0;
		if (!(de = readdir(d))) {
			if (errno)
				rc = failed_at(w, errno, w->name);
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		n = strlen(de->d_name);
		if (len + 1 + n >= sizeof(w->name)) {
			rc = failed_at(w, ENAMETOOLONG, w->name);
			break;
		}
		w->name[len] = '/';
		memcpy(w->name + len + 1, de->d_name, n + 1);
		e.at = de->d_name;
		if (fstatat(dfd, de->d_name, &e.st, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = failed_at(w, errno, w->name);
			break;
		}
		if ((rc = w->fn(w->arg, &e)) < 0)
			break;
		if (S_ISDIR(e.st.st_mode)) {
			int sub = openat(dfd, de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0) {
				rc = failed_at(w, errno, w->name);
				break;
			}
			if ((rc = walk_dir(w, sub, len + 1 + n)) < 0)
				break;
		}
		w->name[len] = '\0';
	}
	closedir(d);
	return rc;
}

/* Length of path before its last component ("a/b/" of "a/b/dir/"),
 * which stream names leave out. */
static size_t prefix_len(const char *path)
{
	size_t len = strlen(path);

	while (len > 1 && path[len - 1] == '/')
		len--;
	while (len > 0 && path[len - 1] != '/')
		len--;
	return len;
}

int nshm_walk(const char *path, nshm_walk_fn fn, void *arg, char *failed)
{
	struct walk w;     /* not zeroed: name alone is 4 KiB, set below */
	struct nshm_walk_entry e = { .dirfd = AT_FDCWD, .at = path, .name = w.name };
	size_t skip = prefix_len(path), len;
	int rc;

	w.fn = fn;
	w.arg = arg;
	w.failed = failed;

	/* "dir/" is named "dir"; "/" keeps its name. */
	len = strlen(path);
	while (len > skip + 1 && path[len - 1] == '/')
		len--;
	if (len <= skip)
		skip = 0;
	if (len - skip >= sizeof(w.name))
		return failed_at(&w, ENAMETOOLONG, path);
	memcpy(w.name, path + skip, len - skip);
	w.name[len - skip] = '\0';
	if (fstatat(AT_FDCWD, path, &e.st, AT_SYMLINK_NOFOLLOW) != 0)
		return failed_at(&w, errno, path);
	if ((rc = fn(arg, &e)) < 0 || !S_ISDIR(e.st.st_mode))
		return rc < 0 ? rc : 0;
	rc = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rc < 0)
		return failed_at(&w, errno, path);
	return walk_dir(&w, rc, len - skip);
}

int nshm_walk_fd(int fd, const char *name, nshm_walk_fn fn, void *arg, char *failed)
{
	struct walk w;
	struct nshm_walk_entry e = { .dirfd = fd, .at = ".", .name = w.name };
	size_t len = strlen(name);
	int rc;

	w.fn = fn;
	w.arg = arg;
	w.failed = failed;
	if (len >= sizeof(w.name))
		return failed_at(&w, ENAMETOOLONG, name);
	memcpy(w.name, name, len + 1);
	if (fstat(fd, &e.st) != 0)
		return failed_at(&w, errno, name);
	if ((rc = fn(arg, &e)) < 0 || !S_ISDIR(e.st.st_mode))
		return rc < 0 ? rc : 0;
	/* A fresh open of the directory itself ("." beneath it, no name
	 * looked up again): each walk reads it from its start. */
	rc = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rc < 0)
		return failed_at(&w, errno, name);
	return walk_dir(&w, rc, len);
}
