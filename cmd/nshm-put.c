/* nshm-put: send files into an ivshmem region. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
"usage: nshm-put [OPTIONS] FILE... TARGET\n"
"Send FILE (or - for standard input) through the ivshmem region TARGET.\n"
"Several FILEs, or a directory, are sent as one archive.\n"
"TARGET: NAME (/dev/shm/NAME), a path with '/', pci or pci:DDDD:BB:DD.F\n"
"\n"
"  -n, --name NAME         name to offer for standard input (default: stdin)\n"
"      --slots N           number of slots in the region (default 2)\n"
"      --chunk SIZE        bytes per slot, e.g. 1M (default: up to 2M, fitted)\n"
"      --timeout SECONDS   give up if no receiver appears (default: wait)\n"
"      --peer-timeout SECONDS\n"
"                          fail if the receiver is silent this long (default 15)\n"
"      --map uc|wc         for pci: map resource2 (uc) or resource2_wc (wc)\n"
"  -q, --quiet             no progress or messages, only errors\n"
"      --json              print a JSON summary on standard output\n"
"  -h, --help              show this help\n"
"  -V, --version           show the version\n"
"\n"
"Exit status: 0 sent and verified, 1 transfer failed, 2 usage error,\n"
"3 region unusable, 4 refused by the receiver, 5 no receiver in time,\n"
"130 interrupted.\n";

struct put {
	struct cli cli;
	const char *name;
	const char *target;
	char **files;
	int nfiles;
};

static int parse_args(struct put *p, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "slots", required_argument, NULL, OPT_SLOTS },
		{ "chunk", required_argument, NULL, OPT_CHUNK },
		COMMON_LONG_OPTIONS,
		{ NULL, 0, NULL, 0 }
	};
	uint64_t v;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "n:qhV", longs, NULL)) != -1) {
		rc = cli_common_option(&p->cli, opt, optarg);
		if (rc < 0)
			return EXIT_USAGE;
		if (rc > 0)
			continue;
		switch (opt) {
		case 'n':
			/* Checked here: cut to fit, it would offer another name. */
			if (!*optarg || strlen(optarg) > 255 || strchr(optarg, '/')) {
				cli_err(&p->cli, "bad --name '%s': one file name of "
					"1 to 255 bytes, without '/'", optarg);
				return EXIT_USAGE;
			}
			p->name = optarg;
			break;
		case OPT_SLOTS:
			if (parse_size(optarg, &v) || v < 1 || v > 64) {
				cli_err(&p->cli, "bad --slots '%s': 1 to 64", optarg);
				return EXIT_USAGE;
			}
			p->cli.params.slots = (unsigned)v;
			break;
		case OPT_CHUNK:
			if (parse_size(optarg, &v) || v < 4096 || v > (256u << 20) || v % 4096) {
				cli_err(&p->cli, "bad --chunk '%s': a multiple of 4K, 4K to 256M",
					optarg);
				return EXIT_USAGE;
			}
			p->cli.params.chunk = (size_t)v;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(EXIT_OK);
		case 'V':
			printf("nshm-put %s (protocol %d, crc32 %s)\n", NSHM_LIB_VERSION,
			       NSHM_PROTOCOL_VERSION, nshm_crc32_impl());
			exit(EXIT_OK);
		default:
			fputs(usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind < 2) {
		cli_err(&p->cli, "need FILE... and TARGET (see --help)");
		return EXIT_USAGE;
	}
	p->files = argv + optind;
	p->nfiles = argc - optind - 1;
	p->target = argv[argc - 1];
	return 0;
}

/* What to offer for one file: its base name, size, mode and mtime. */
static int describe(struct put *p, const char *file, int fd, struct nshm_meta *m)
{
	struct stat st;
	char *copy;

	memset(m, 0, sizeof(*m));
	if (fstat(fd, &st) != 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		m->size = (uint64_t)st.st_size;
		m->size_known = 1;
	}
	m->mode = S_ISREG(st.st_mode) ? st.st_mode & 07777 : 0644;
	m->mtime_sec = S_ISREG(st.st_mode) ? st.st_mtim.tv_sec : time(NULL);
	m->mtime_nsec = S_ISREG(st.st_mode) ? (uint32_t)st.st_mtim.tv_nsec : 0;
	if (strcmp(file, "-") == 0) {
		snprintf(m->name, sizeof(m->name), "%s", p->name ? p->name : "stdin");
		return 0;
	}
	copy = strdup(file);
	if (!copy)
		return -ENOMEM;
	snprintf(m->name, sizeof(m->name), "%s", p->name ? p->name : basename(copy));
	free(copy);
	return 0;
}

static int send_file(struct put *p, struct nshm_region *r, const char *file)
{
	struct nshm_tx *tx = NULL;
	struct nshm_meta meta;
	int fd = strcmp(file, "-") == 0 ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0) {
		int err = errno;

		cli_err(&p->cli, "%s: %s", file, strerror(err));
		return -err;
	}
	rc = describe(p, file, fd, &meta);
	if (rc < 0)
		goto out;
	cli_set_label(&p->cli, meta.name);
	rc = nshm_tx_begin(r, &meta, &p->cli.params, &tx);
	if (rc == 0) {
		p->cli.start_ns = cli_now_ns();
		rc = nshm_tx_from_fd(tx, fd);
	}
	if (rc == 0)
		rc = nshm_tx_end(tx);
	if (rc == 0)
		cli_summary(&p->cli, meta.name, nshm_tx_bytes(tx), nshm_tx_crc(tx), NULL);
	else {
		cli_progress_done(&p->cli);
		cli_err(&p->cli, "%s", tx && *nshm_tx_why(tx) ? nshm_tx_why(tx)
							   : nshm_strerror(rc));
	}
	nshm_tx_close(tx, rc == -ECANCELED ? NSHM_R_CANCELED : NSHM_R_IO);
out:
	if (fd != STDIN_FILENO)
		close(fd);
	return rc;
}

static bool wants_archive(const struct put *p)
{
	struct stat st;

	if (p->nfiles > 1)
		return true;
	return strcmp(p->files[0], "-") != 0 && lstat(p->files[0], &st) == 0 &&
	       S_ISDIR(st.st_mode);
}

/* Several files or a directory: one pax stream, extracted on the other side. */
static int send_tree(struct put *p, struct nshm_region *r)
{
	struct nshm_tree_stats total, sent;
	struct nshm_meta meta = { .archive = 1, .mode = 0755 };
	struct nshm_tx *tx = NULL;
	char extra[96], *copy;
	int rc;

	for (int i = 0; i < p->nfiles; i++)
		if (strcmp(p->files[i], "-") == 0) {
			cli_err(&p->cli, "- (standard input) cannot be sent with other files");
			return -EINVAL;
		}
	rc = nshm_tree_measure(p->files, p->nfiles, &total);
	if (rc < 0) {
		cli_err(&p->cli, "cannot read the files to send: %s", strerror(-rc));
		return rc;
	}
	copy = strdup(p->files[0]);
	if (!copy)
		return -ENOMEM;
	if (p->nfiles == 1)
		snprintf(meta.name, sizeof(meta.name), "%s", basename(copy));
	else
		snprintf(meta.name, sizeof(meta.name), "%d-items", p->nfiles);
	free(copy);
	meta.size = total.bytes;
	meta.mtime_sec = time(NULL);
	rc = nshm_tx_begin(r, &meta, &p->cli.params, &tx);
	if (rc == 0) {
		p->cli.start_ns = cli_now_ns();
		rc = nshm_tx_tree(tx, p->files, p->nfiles, cli_on_entry, &p->cli, &sent);
	}
	if (rc == 0)
		rc = nshm_tx_end(tx);
	if (rc == 0) {
		snprintf(extra, sizeof(extra), "\"entries\":%llu,\"file_bytes\":%llu",
			 (unsigned long long)sent.entries, (unsigned long long)sent.bytes);
		cli_summary(&p->cli, meta.name, nshm_tx_bytes(tx), nshm_tx_crc(tx), extra);
	} else {
		cli_progress_done(&p->cli);
		cli_err(&p->cli, "%s", tx && *nshm_tx_why(tx) ? nshm_tx_why(tx)
							   : nshm_strerror(rc));
	}
	nshm_tx_close(tx, rc == -ECANCELED ? NSHM_R_CANCELED : NSHM_R_IO);
	return rc;
}

int main(int argc, char **argv)
{
	struct put p = { 0 };
	struct nshm_region *r = NULL;
	char msg[1024];
	int rc;

	cli_init(&p.cli, "nshm-put");
	rc = parse_args(&p, argc, argv);
	if (rc)
		return rc;
	cli_signals();
	cli_catch_sigbus(&p.cli, NULL);
	rc = nshm_open(&r, p.target, p.cli.map_flags, msg, sizeof(msg));
	if (rc < 0) {
		cli_err(&p.cli, "%s", msg);
		return cli_exit_status(rc);
	}
	rc = wants_archive(&p) ? send_tree(&p, r) : send_file(&p, r, p.files[0]);
	nshm_close(r);
	return cli_exit_status(rc);
}
