/* SPDX-License-Identifier: BSD-2-Clause */
/* Sending for the programs: one file as itself, several files or a
 * directory as one pax archive (nshm_tx_tree). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "send.h"
#include "tree/tree.h"
#include "util/util.h"

/* What to offer for one file: its base name, size, mode and mtime. */
int send_describe(const struct send_what *w, const char *file, int fd,
		  struct nshm_meta *m)
{
	struct stat st;
	char *copy;

	memset(m, 0, sizeof(*m));
	if (fstat(fd, &st) != 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		/* What is left from the offset: standard input may be a
		 * file that someone already read part of. */
		off_t at = lseek(fd, 0, SEEK_CUR);

		if (at < 0)
			at = 0;
		m->size = at < st.st_size ? (uint64_t)(st.st_size - at) : 0;
		m->size_known = 1;
	}
	m->mode = S_ISREG(st.st_mode) ? st.st_mode & 07777 : 0644;
	m->mtime_sec = S_ISREG(st.st_mode) ? st.st_mtim.tv_sec : time(NULL);
	m->mtime_nsec = S_ISREG(st.st_mode) ? (uint32_t)st.st_mtim.tv_nsec : 0;
	m->request = w->request;
	m->path = w->path;
	if (strcmp(file, "-") == 0) {
		snprintf(m->name, sizeof(m->name), "%s", w->name ? w->name : "stdin");
		return 0;
	}
	copy = strdup(file);
	if (!copy)
		return -ENOMEM;
	snprintf(m->name, sizeof(m->name), "%s", w->name ? w->name : basename(copy));
	free(copy);
	return 0;
}

/* The tail both kinds share: say how it went, give the side back. */
static int finish(struct cli *c, struct nshm_tx *tx, int rc, const char *name,
		  const char *extra_json)
{
	if (rc == 0) {
		unsigned char d[32];

		if (c->digest)
			cli_set_digest(c, nshm_tx_digest(tx, d), d);
		cli_summary(c, name, nshm_tx_bytes(tx), nshm_tx_crc(tx), extra_json);
	} else {
		cli_progress_done(c);
		cli_err(c, "%s", tx && *nshm_tx_why(tx) ? nshm_tx_why(tx) : nshm_strerror(rc));
	}
	nshm_tx_close(tx, nshm_stop_reason(rc));
	return rc;
}

static int send_file(struct cli *c, struct nshm_region *r, const struct send_what *w)
{
	const char *file = w->files[0];
	struct nshm_tx *tx = NULL;
	struct nshm_meta meta;
	int fd = w->by_fd ? w->fd : strcmp(file, "-") == 0 ? STDIN_FILENO
		 : open(file, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0) {
		int err = errno;

		cli_err(c, "%s: %s", file, strerror(err));
		return -err;
	}
	rc = send_describe(w, file, fd, &meta);
	if (rc < 0)
		goto out;
	cli_set_label(c, meta.name);
	rc = nshm_tx_begin(r, &meta, &c->params, &tx);
	if (rc == 0) {
		c->start_ns = cli_now_ns();
		rc = nshm_tx_from_fd(tx, fd);
	}
	if (rc == 0)
		rc = nshm_tx_end(tx);
	rc = finish(c, tx, rc, meta.name, NULL);
out:
	if (fd != STDIN_FILENO && !w->by_fd)
		close(fd);
	return rc;
}

bool send_wants_archive(const struct send_what *w)
{
	struct stat st;

	if (w->by_fd)
		return fstat(w->fd, &st) == 0 && S_ISDIR(st.st_mode);
	if (w->nfiles > 1)
		return true;
	return strcmp(w->files[0], "-") != 0 && lstat(w->files[0], &st) == 0 &&
	       S_ISDIR(st.st_mode);
}

/* The offer of a set of files: its name, the size of its regular files. */
int send_tree_meta(struct cli *c, const struct send_what *w, struct nshm_meta *meta)
{
	struct nshm_tree_stats total;
	char *copy;
	int rc;

	for (int i = 0; i < w->nfiles; i++)
		if (strcmp(w->files[i], "-") == 0) {
			cli_err(c, "- (standard input) cannot be sent with other files");
			return -EINVAL;
		}
	rc = w->by_fd ? tree_measure_fd(w->fd, w->name, &total)
		      : nshm_tree_measure(w->files, w->nfiles, &total);
	if (rc < 0) {
		cli_err(c, "cannot read the files to send: %s", strerror(-rc));
		return rc;
	}
	copy = strdup(w->files[0]);
	if (!copy)
		return -ENOMEM;
	*meta = (struct nshm_meta){ .archive = 1, .mode = 0755, .request = w->request,
				    .path = w->path };
	if (w->name)
		snprintf(meta->name, sizeof(meta->name), "%s", w->name);
	else if (w->nfiles == 1)
		snprintf(meta->name, sizeof(meta->name), "%s", basename(copy));
	else
		snprintf(meta->name, sizeof(meta->name), "%d-items", w->nfiles);
	free(copy);
	meta->size = total.bytes;
	meta->mtime_sec = time(NULL);
	return 0;
}

/* Several files or a directory: one pax stream, extracted on the other side. */
static int send_tree(struct cli *c, struct nshm_region *r, const struct send_what *w)
{
	struct nshm_tree_stats sent;
	struct nshm_meta meta;
	struct nshm_tx *tx = NULL;
	char extra[96];
	int rc;

	rc = send_tree_meta(c, w, &meta);
	if (rc < 0)
		return rc;
	rc = nshm_tx_begin(r, &meta, &c->params, &tx);
	if (rc == 0) {
		c->start_ns = cli_now_ns();
		rc = w->by_fd ? tx_tree_fd(tx, w->fd, w->name, cli_on_entry, c, &sent)
			      : nshm_tx_tree(tx, w->files, w->nfiles, cli_on_entry, c, &sent);
	}
	if (rc == 0)
		rc = nshm_tx_end(tx);
	snprintf(extra, sizeof(extra), "\"entries\":%llu,\"file_bytes\":%llu",
		 (unsigned long long)(rc == 0 ? sent.entries : 0),
		 (unsigned long long)(rc == 0 ? sent.bytes : 0));
	return finish(c, tx, rc, meta.name, extra);
}

int send_what(struct cli *c, struct nshm_region *r, const struct send_what *w)
{
	return send_wants_archive(w) ? send_tree(c, r, w) : send_file(c, r, w);
}
