/* SPDX-License-Identifier: BSD-2-Clause */
/* nshm-get: receive what nshm-put sends through an ivshmem region. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "get.h"
#include "send.h"
#include "beneath.h"
#include "proto/layout.h"
#include "tree/tree.h"
#include "util/util.h"

static const char usage[] =
"usage: nshm-get [OPTIONS] [DEST]\n"
"       nshm-get --serve [--allow-pull ROOT] [OPTIONS] DIR\n"
"       nshm-get --pull PATH [OPTIONS] [DEST]\n"
"Receive what nshm-put sends and store it at DEST. One file goes inside DEST\n"
"if it is a directory, else to DEST itself; a set of files (several FILEs or a\n"
"directory) is extracted under DEST, made if missing. - writes to standard\n"
"output (a set of files as a pax archive). DEST defaults to the current\n"
"directory.\n"
"\n"
"  -s, --source ENDPOINT   the region: pci (default), pci:DDDD:BB:DD.F,\n"
"                          NAME (/dev/shm/NAME) or a path with '/'\n"
"  -f, --force             replace existing files\n"
"  -p, --preserve-owner    restore owners of a set of files (as root)\n"
"      --max-bytes SIZE    take at most SIZE bytes (K, M, G suffixes): a larger\n"
"                          file is refused, a larger stream fails (default: no\n"
"                          limit)\n"
"      --serve             a resident receiver: take transfer after transfer\n"
"                          under DEST (a directory) until SIGTERM or SIGINT\n"
"      --allow-pull ROOT   with --serve: send files under ROOT when asked\n"
"      --pull PATH         ask a resident receiver (--allow-pull) for PATH\n"
"                          and receive it into DEST\n"
"      --timeout SECONDS   give up if no sender appears (default: wait)\n"
"      --peer-timeout SECONDS\n"
"                          fail if the sender is silent this long (default 15)\n"
CLI_USAGE_TRANSFER_TAIL
"\n"
"Exit status: 0 received and verified, 1 transfer failed, 2 usage error,\n"
"3 region unusable, 4 refused (the destination exists), 5 no sender in time,\n"
"130 interrupted.\n";

/* Where one file goes: a temporary name beside its final one, both in
 * dirfd, the directory opened once. */
struct target {
	bool to_stdout;
	int dirfd;
	char name[NAME_MAX + 1];
	char final[PATH_MAX];   /* for messages */
	char tmp[NSHM_TEMP_LEN];
	int fd;
};

/* The temporary file a SIGBUS (the region shrank) leaves behind. */
static int bus_dirfd = -1;
static char bus_tmp[NSHM_TEMP_LEN];

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* One option of nshm-get's own: 0, or the exit status. */
static int get_option(struct get *g, int opt, const char *arg)
{
	switch (opt) {
	case 's':
		g->source = arg;
		return 0;
	case 'f':
		g->force = true;
		return 0;
	case 'p':
		if (geteuid() != 0) {
			cli_err(&g->cli, "--preserve-owner needs root");
			return EXIT_USAGE;
		}
		g->owner = true;
		return 0;
	case OPT_SERVE:
		g->serve = true;
		g->cli.log = true;
		return 0;
	case OPT_MAX_BYTES:
		if (parse_size(arg, &g->cli.params.max_bytes) == 0 &&
		    g->cli.params.max_bytes != 0)
			return 0;
		cli_err(&g->cli, "--max-bytes: '%s' is not a size", arg);
		return EXIT_USAGE;
	case OPT_ALLOW_PULL:
		if (realpath(arg, g->allow_pull))
			return 0;
		cli_err(&g->cli, "--allow-pull %s: %s", arg, strerror(errno));
		return EXIT_USAGE;
	case OPT_PULL:
		if (!*arg || strlen(arg) > NSHM_REQ_PATH_MAX) {
			cli_err(&g->cli, "bad --pull '%s': a path of 1 to %d bytes",
				arg, NSHM_REQ_PATH_MAX);
			return EXIT_USAGE;
		}
		g->pull = arg;
		return 0;
	default:
		return cli_std_option(&g->cli, opt, usage);
	}
}

/* The options together, and the directories a resident opens once (what
 * peers name is resolved beneath these fds): 0, or the exit status. */
static int check_args(struct get *g)
{
	const char *bad = g->allow_pull[0] && !g->serve ? "--allow-pull goes with --serve"
			: g->serve && g->pull ? "--serve and --pull: one or the other" : NULL;

	if (bad) {
		cli_err(&g->cli, "%s", bad);
		return EXIT_USAGE;
	}
	if (g->serve && !is_dir(g->dest)) {
		cli_err(&g->cli, "--serve %s: not a directory", g->dest);
		return EXIT_USAGE;
	}
	if (g->serve && (g->destfd = open(g->dest, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		cli_err(&g->cli, "--serve %s: %s", g->dest, strerror(errno));
		return EXIT_USAGE;
	}
	if (g->allow_pull[0] &&
	    (g->rootfd = open(g->allow_pull, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		cli_err(&g->cli, "--allow-pull %s: %s", g->allow_pull, strerror(errno));
		return EXIT_USAGE;
	}
	return 0;
}

static int parse_args(struct get *g, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "source", required_argument, NULL, 's' },
		{ "force", no_argument, NULL, 'f' },
		{ "preserve-owner", no_argument, NULL, 'p' },
		{ "max-bytes", required_argument, NULL, OPT_MAX_BYTES },
		{ "serve", no_argument, NULL, OPT_SERVE },
		{ "allow-pull", required_argument, NULL, OPT_ALLOW_PULL },
		{ "pull", required_argument, NULL, OPT_PULL },
		COMMON_LONG_OPTIONS,
		{ NULL, 0, NULL, 0 }
	};
	int opt, rc;

	g->source = "pci";
	g->dest = ".";
	while ((opt = getopt_long(argc, argv, "s:fpqhV", longs, NULL)) != -1) {
		rc = cli_common_option(&g->cli, opt, optarg);
		if (rc < 0)
			return EXIT_USAGE;
		if (rc == 0 && (rc = get_option(g, opt, optarg)) != 0)
			return rc;
	}
	if (argc - optind > 1) {
		cli_err(&g->cli, "at most one DEST (see --help)");
		return EXIT_USAGE;
	}
	if (argc - optind == 1)
		g->dest = argv[optind];
	return check_args(g);
}

/* The directory a file goes in and its name there: this transfer's
 * directory (an fd) and the offered name, or DEST, the user's own path,
 * opened once here: a directory, or a file name in its parent. */
static int target_dir(struct get *g, const char *name, struct target *t)
{
	char *copy;
	int n;

	if (g->wherefd < 0)
		t->dirfd = open(g->where, O_PATH | O_DIRECTORY | O_CLOEXEC);
	else
		t->dirfd = fcntl(g->wherefd, F_DUPFD_CLOEXEC, 0);
	if (t->dirfd >= 0 || (errno != ENOTDIR && errno != ENOENT)) {
		snprintf(t->name, sizeof(t->name), "%s", name);
		n = snprintf(t->final, sizeof(t->final), "%s%s%s", g->where,
			     g->where[strlen(g->where) - 1] == '/' ? "" : "/", name);
		return t->dirfd < 0 ? -errno : n < 0 || (size_t)n >= sizeof(t->final)
			? -ENAMETOOLONG : 0;
	}
	n = snprintf(t->final, sizeof(t->final), "%s", g->where);
	if (n < 0 || (size_t)n >= sizeof(t->final) || !(copy = strdup(g->where)))
		return -ENAMETOOLONG;
	n = snprintf(t->name, sizeof(t->name), "%s", basename(copy));
	if (n < 0 || (size_t)n >= sizeof(t->name)) {
		free(copy);
		return -ENAMETOOLONG;
	}
	memcpy(copy, g->where, strlen(g->where) + 1);
	t->dirfd = open(dirname(copy), O_PATH | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	return t->dirfd < 0 ? -errno : 0;
}

/* Decide the final name and open a temporary file beside it; a reason to
 * refuse the offer on failure. */
static enum nshm_reason open_target(struct get *g, const char *name, struct target *t)
{
	struct stat st;
	int rc;

	memset(t, 0, sizeof(*t));
	t->fd = t->dirfd = -1;
	if (g->wherefd < 0 && strcmp(g->where, "-") == 0) {
		t->to_stdout = true;
		t->fd = STDOUT_FILENO;
		return NSHM_R_NONE;
	}
	if ((rc = target_dir(g, name, t)) < 0) {
		cli_err(&g->cli, "%s: %s", g->where, strerror(-rc));
		return rc == -ENAMETOOLONG ? NSHM_R_BADNAME : nshm_errno_reason(-rc, NSHM_R_IO);
	}
	if (fstatat(t->dirfd, t->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode)) {
			cli_err(&g->cli, "%s is a directory", t->final);
			return NSHM_R_EXISTS;
		}
		if (!g->force) {
			cli_err(&g->cli, "%s exists (use --force to replace it)", t->final);
			return NSHM_R_EXISTS;
		}
	}
	t->fd = nshm_temp_open(t->dirfd, t->tmp, 0600, NULL);
	if (t->fd < 0) {
		rc = t->fd;
		cli_err(&g->cli, "cannot create a file beside %s: %s", t->final, strerror(-rc));
		t->tmp[0] = '\0';
		return nshm_errno_reason(-rc, NSHM_R_IO);
	}
	bus_dirfd = t->dirfd;
	memcpy(bus_tmp, t->tmp, sizeof(bus_tmp));
	return NSHM_R_NONE;
}

static void drop_target(struct target *t)
{
	if (!t->to_stdout && t->fd >= 0)
		close(t->fd);
	bus_tmp[0] = '\0';
	if (t->tmp[0])
		unlinkat(t->dirfd, t->tmp, 0);
	if (t->dirfd >= 0)
		close(t->dirfd);
	t->fd = t->dirfd = -1;
	t->tmp[0] = '\0';
}

/* Only a verified file gets here: give it its mode and mtime and its name.
 * Without --force the rename must not replace a file that appeared since. */
static enum nshm_reason place_target(struct get *g, const struct nshm_meta *m,
				     struct target *t)
{
	struct timespec times[2] = { { 0, UTIME_OMIT },
				     { m->mtime_sec, m->mtime_nsec } };
	int rc;

	if (t->to_stdout)
		return fflush(stdout) == 0 ? NSHM_R_NONE : NSHM_R_IO;
	/* Never set-id bits from a peer. */
	if (fchmod(t->fd, m->mode & 0777 & ~(g->owner ? 0 : g->umask)) != 0 ||
	    futimens(t->fd, times) != 0 || close(t->fd) != 0) {
		int err = errno;

		t->fd = -1;
		cli_err(&g->cli, "%s: %s", t->tmp, strerror(err));
		return NSHM_R_IO;
	}
	t->fd = -1;
	rc = nshm_publish(t->dirfd, t->tmp, t->name, g->force);
	if (rc != 0) {
		int err = -rc;

		cli_err(&g->cli, "%s: %s", t->final, err == EEXIST
			? "appeared meanwhile (use --force to replace it)" : strerror(err));
		return nshm_errno_reason(err, NSHM_R_IO);
	}
	t->tmp[0] = bus_tmp[0] = '\0';
	drop_target(t);
	return NSHM_R_NONE;
}

static int receive_file(struct get *g, struct nshm_rx *rx, const struct nshm_meta *m)
{
	uint64_t max = g->cli.params.max_bytes;
	unsigned char d[32];
	struct target t;
	enum nshm_reason why;
	int rc;

	if (max && m->size_known && m->size > max) {
		cli_err(&g->cli, "%s: %llu bytes offered, over the limit of %llu bytes "
			"(--max-bytes)", m->name, (unsigned long long)m->size,
			(unsigned long long)max);
		get_refuse(g, rx, NSHM_R_NOSPACE);
		return -EFBIG;
	}
	why = open_target(g, m->name, &t);
	if (why != NSHM_R_NONE) {
		get_refuse(g, rx, why);
		return why == NSHM_R_EXISTS ? -EEXIST : -EIO;
	}
	nshm_rx_accept(rx);
	g->cli.start_ns = cli_now_ns();
	rc = nshm_rx_to_fd(rx, t.fd);
	if (rc < 0) {
		cli_progress_done(&g->cli);
		cli_err(&g->cli, "%s: %s", m->name, *nshm_rx_why(rx) ? nshm_rx_why(rx)
								     : nshm_strerror(rc));
		drop_target(&t);
		nshm_rx_complete(rx, 0, nshm_rx_reason(rx) ? nshm_rx_reason(rx) : NSHM_R_IO);
		return rc;
	}
	why = place_target(g, m, &t);
	if (why != NSHM_R_NONE) {
		drop_target(&t);
		nshm_rx_complete(rx, 0, why);
		return why == NSHM_R_EXISTS ? -EEXIST : -EIO;
	}
	nshm_rx_complete(rx, 1, NSHM_R_NONE);
	if (g->cli.digest)
		cli_set_digest(&g->cli, nshm_rx_digest(rx, d), d);
	cli_summary(&g->cli, t.to_stdout ? "-" : t.final, nshm_rx_bytes(rx),
		    nshm_rx_crc(rx), NULL);
	return 0;
}

/* The directory a set of files goes under, open: this transfer's, or
 * DEST, made if missing. -errno, said. */
static int tree_dir(struct get *g)
{
	int fd;

	if (g->wherefd >= 0) {
		fd = fcntl(g->wherefd, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? -errno : fd;
	}
	if (mkdir(g->where, 0777) != 0 && errno != EEXIST) {
		int err = errno;

		cli_err(&g->cli, "cannot create %s: %s", g->where, strerror(err));
		return -err;
	}
	fd = open(g->where, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		if (err == ENOTDIR) {
			cli_err(&g->cli, "%s is not a directory: a set of files needs one",
				g->where);
			return -EEXIST;
		}
		cli_err(&g->cli, "%s: %s", g->where, strerror(err));
		return -err;
	}
	return fd;
}

/* An archive goes under DEST, a directory (made if missing); "-" passes
 * the pax stream itself to standard output. */
static int receive_tree(struct get *g, struct nshm_rx *rx, const struct nshm_meta *m)
{
	struct nshm_tree_stats got;
	unsigned char d[32];
	char extra[96];
	int rc, fd;

	if (g->wherefd < 0 && strcmp(g->where, "-") == 0)
		return receive_file(g, rx, m);
	if ((fd = tree_dir(g)) < 0) {
		get_refuse(g, rx, nshm_errno_reason(-fd, NSHM_R_IO));
		return fd;
	}
	/* nshm_rx_tree accepts the offer, or refuses it when this machine
	 * cannot read archives (no libarchive): the sender hears why. */
	g->cli.start_ns = cli_now_ns();
	rc = rx_tree_at(rx, fd, (g->force ? NSHM_EXTRACT_FORCE : 0) |
			(g->owner ? NSHM_EXTRACT_OWNER : 0), cli_on_entry, &g->cli, &got);
	close(fd);
	if (rc < 0) {
		cli_progress_done(&g->cli);
		cli_err(&g->cli, "%s", *nshm_rx_why(rx) ? nshm_rx_why(rx) : nshm_strerror(rc));
		if (rc != -ENOTSUP)
			cli_err(&g->cli, "%llu entries arrived before the failure; the one in "
				"progress was removed", (unsigned long long)got.entries);
		nshm_rx_complete(rx, 0, nshm_rx_reason(rx) ? nshm_rx_reason(rx) : NSHM_R_IO);
		return rc;
	}
	nshm_rx_complete(rx, 1, NSHM_R_NONE);
	snprintf(extra, sizeof(extra), "\"entries\":%llu,\"file_bytes\":%llu",
		 (unsigned long long)got.entries, (unsigned long long)got.bytes);
	if (g->cli.digest)
		cli_set_digest(&g->cli, nshm_rx_digest(rx, d), d);
	cli_summary(&g->cli, g->where, nshm_rx_bytes(rx), nshm_rx_crc(rx), extra);
	return 0;
}

/* A request to place the stream under DEST/SUBDIR: made and opened beneath
 * DEST by beneath_mkdirs into g->wherefd, or refused. */
static enum nshm_reason place_under(struct get *g, const char *sub)
{
	char msg[PATH_MAX + 128];
	int base = g->destfd, rc, n;

	if (strcmp(g->dest, "-") == 0)
		return NSHM_R_NONE;
	if (base < 0 && (base = open(g->dest, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		cli_err(&g->cli, "the sender asked for a place under %s, but %s: %s",
			g->dest, g->dest, strerror(errno));
		return NSHM_R_UNSUPPORTED;
	}
	rc = beneath_mkdirs(base, sub, msg, sizeof(msg));
	if (base != g->destfd)
		close(base);
	if (rc < 0) {
		cli_err(&g->cli, "refused a place under %s: %s", g->dest, msg);
		return beneath_reason(rc);
	}
	if (g->wherefd >= 0)
		close(g->wherefd);
	g->wherefd = rc;
	/* For messages: sub passed the rule (no control bytes). */
	n = snprintf(g->where_buf, sizeof(g->where_buf), "%s/%s", g->dest, sub);
	g->where = n > 0 && (size_t)n < sizeof(g->where_buf) ? g->where_buf : g->dest;
	return NSHM_R_NONE;
}

int get_refuse(struct get *g, struct nshm_rx *rx, enum nshm_reason why)
{
	nshm_rx_refuse(rx, why);
	g->offer_refused = true;
	return why == NSHM_R_EXISTS || why == NSHM_R_NOPULL ? -EEXIST : -EIO;
}

/* One offer, taken: where it goes, then the file or the tree. */
static int take(struct get *g, struct nshm_region *r, struct nshm_rx **rxp,
		const struct nshm_meta *m)
{
	enum nshm_reason why;

	g->where = g->dest;
	if (g->wherefd >= 0)
		close(g->wherefd);
	g->wherefd = g->destfd < 0 ? -1 : fcntl(g->destfd, F_DUPFD_CLOEXEC, 0);
	if (g->destfd >= 0 && g->wherefd < 0) {
		cli_err(&g->cli, "%s: %s", g->dest, strerror(errno));
		return get_refuse(g, *rxp, NSHM_R_IO);
	}
	if (m->request == NSHM_REQ_PULL) {
		if (!g->serve || !g->allow_pull[0]) {
			cli_err(&g->cli, "refused a pull of %s: not allowed here "
				"(nshm-get --serve DIR --allow-pull ROOT serves pulls)", m->path);
			return get_refuse(g, *rxp, NSHM_R_NOPULL);
		}
		return serve_pull(g, r, rxp, m);
	}
	if (m->request == NSHM_REQ_PUSH_TO &&
	    (why = place_under(g, m->path)) != NSHM_R_NONE)
		return get_refuse(g, *rxp, why);
	if (m->archive)
		return receive_tree(g, *rxp, m);
	cli_set_label(&g->cli, m->name);
	return receive_file(g, *rxp, m);
}

int get_receive_one(struct get *g, struct nshm_region *r)
{
	struct nshm_rx *rx = NULL;
	struct nshm_meta meta;
	int rc = nshm_rx_begin(r, &g->cli.params, &rx, &meta);

	if (rc == 0) {
		cli_event(&g->cli, "offered", &meta);
		rc = take(g, r, &rx, &meta);
		if (rc < 0)
			cli_event_failed(&g->cli, rc, rx ? nshm_rx_why(rx) : "");
	} else if (!(g->serve && rc == -ECANCELED)) {
		/* A resident told to stop while it waits has nothing to say. */
		cli_err(&g->cli, "%s", rx && *nshm_rx_why(rx) ? nshm_rx_why(rx)
							  : nshm_strerror(rc));
		cli_event_failed(&g->cli, rc, rx ? nshm_rx_why(rx) : "");
	}
	nshm_rx_close(rx, nshm_stop_reason(rc));
	return rc;
}

/* --pull PATH: ask a resident receiver for PATH (an empty offer carrying
 * the request), then receive its reply into DEST as one-shot does. */
static int pull(struct get *g, struct nshm_region *r)
{
	struct nshm_meta ask = { .size_known = 1, .mode = 0644,
				 .request = NSHM_REQ_PULL, .path = g->pull };
	struct nshm_tx *tx = NULL;
	struct nshm_rx *rx = NULL;
	struct nshm_meta meta;
	int rc;

	snprintf(ask.name, sizeof(ask.name), "pull-request");
	rc = nshm_tx_begin(r, &ask, &g->cli.params, &tx);
	if (rc == 0)
		rc = nshm_tx_end(tx);
	if (rc < 0)
		cli_err(&g->cli, "pulling %s: %s", g->pull,
			tx && *nshm_tx_why(tx) ? nshm_tx_why(tx) : nshm_strerror(rc));
	nshm_tx_close(tx, nshm_stop_reason(rc));
	if (rc < 0)
		return rc;
	/* Our turn to receive: bounded even without --timeout, since the
	 * resident's reply comes at once or not at all. */
	g->cli.params.flags |= NSHM_P_WAIT_BUSY;
	if (!g->cli.params.timeout_ms)
		g->cli.params.timeout_ms = g->cli.params.peer_timeout_ms > 0
			? g->cli.params.peer_timeout_ms : 15000;
	rc = nshm_rx_begin(r, &g->cli.params, &rx, &meta);
	if (rc < 0) {
		cli_err(&g->cli, "pulling %s: %s", g->pull, rx && *nshm_rx_why(rx)
			? nshm_rx_why(rx) : nshm_strerror(rc));
	} else if (meta.request != NSHM_REQ_REPLY || strcmp(meta.path, g->pull) != 0) {
		cli_err(&g->cli, "pulling %s: the peer offered something else (%s)",
			g->pull, meta.name);
		rc = get_refuse(g, rx, NSHM_R_PROTO);
	} else {
		rc = take(g, r, &rx, &meta);
	}
	nshm_rx_close(rx, nshm_stop_reason(rc));
	return rc;
}

int main(int argc, char **argv)
{
	struct get g = { .rootfd = -1, .destfd = -1, .wherefd = -1 };
	struct nshm_region *r = NULL;
	int rc;

	cli_init(&g.cli, "nshm-get");
	g.umask = umask(0);
	umask(g.umask);
	rc = parse_args(&g, argc, argv);
	if (rc)
		return rc;
	cli_signals();
	cli_catch_sigbus(&g.cli, "the region", &bus_dirfd, bus_tmp);
	rc = cli_open(&g.cli, g.source, &r);
	if (rc)
		return rc;
	rc = g.serve ? serve(&g, r) : g.pull ? pull(&g, r) : get_receive_one(&g, r);
	nshm_close(r);
	return cli_exit_status(rc);
}
