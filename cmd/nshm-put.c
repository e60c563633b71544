/* SPDX-License-Identifier: BSD-2-Clause */
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

#include "fanout.h"
#include "beneath.h"

static const char usage[] =
"usage: nshm-put [OPTIONS] FILE... TARGET[:SUBDIR]\n"
"       nshm-put [OPTIONS] -T TARGET[:SUBDIR] [-T TARGET[:SUBDIR]]... FILE...\n"
"Send FILE (or - for standard input) through the ivshmem region TARGET.\n"
"Several FILEs, or a directory, are sent as one archive.\n"
"Several -T targets get it at once, the source read once.\n"
"TARGET: NAME (/dev/shm/NAME), a path with '/', pci or pci:DDDD:BB:DD.F\n"
"SUBDIR: where under its directory the receiver places what arrives\n"
"\n"
"  -n, --name NAME         name to offer for standard input (default: stdin)\n"
"  -t, --to SUBDIR         the same as TARGET:SUBDIR (for every target)\n"
"  -T, --target TARGET[:SUBDIR]\n"
"                          send to TARGET (repeat it: several at once); then\n"
"                          every operand is a FILE\n"
"      --buffer SIZE       several targets: how far one may fall behind the\n"
"                          fastest (default 32M)\n"
"      --slots N           number of slots in the region (default 2)\n"
"      --chunk SIZE        bytes per slot, e.g. 1M (default: up to 2M, fitted)\n"
"      --timeout SECONDS   give up if no receiver appears (default: wait)\n"
"      --peer-timeout SECONDS\n"
"                          fail if the receiver is silent this long (default 15)\n"
CLI_USAGE_TRANSFER_TAIL
"\n"
"Exit status: 0 sent and verified, 1 transfer failed, 2 usage error,\n"
"3 region unusable, 4 refused by the receiver, 5 no receiver in time,\n"
"6 several targets: not every one got it (a line each says which),\n"
"130 interrupted.\n";

/* -T taken at most this often: each target is a thread and a region. */
#define MAX_TARGETS 64

struct put {
	struct cli cli;
	const char *name;
	const char *to;          /* --to SUBDIR */
	const char *targets[MAX_TARGETS]; /* -T, or the last operand */
	struct fanout_target t[MAX_TARGETS];
	int ntargets;
	uint64_t buffer;         /* --buffer */
	char **files;
	int nfiles;
};

/* pci:DDDD:BB:DD.F at s? Its length, else 0. */
static size_t bdf_len(const char *s)
{
	unsigned a, b, c, d;
	int n = 0;

	if (sscanf(s, "%4x:%2x:%2x.%1x%n", &a, &b, &c, &d, &n) == 4 && n == 12)
		return 12;
	return 0;
}

/* TARGET[:SUBDIR], scp-like. A PCI address has colons of its own; any
 * other endpoint ends at the first colon (--to takes a SUBDIR for a path
 * with a colon in it). */
static int split_target(struct put *p, struct fanout_target *ft)
{
	const char *t = ft->arg, *colon;
	size_t len;

	if (strncmp(t, "pci:", 4) == 0 && bdf_len(t + 4))
		colon = t[16] == ':' ? t + 16 : NULL;
	else
		colon = strchr(t, ':');
	len = colon ? (size_t)(colon - t) : strlen(t);
	if (len >= sizeof(ft->endpoint)) {
		cli_err(&p->cli, "TARGET too long");
		return EXIT_USAGE;
	}
	memcpy(ft->endpoint, t, len);
	ft->endpoint[len] = '\0';
	if (colon && p->to) {
		cli_err(&p->cli, "give SUBDIR once: TARGET:SUBDIR or --to SUBDIR");
		return EXIT_USAGE;
	}
	ft->subdir = colon ? colon + 1 : p->to;
	return 0;
}

/* A SUBDIR the receiver will refuse is a usage error here, found by the
 * receiver's own rule (beneath_check) with its words. Whether a component
 * is a symbolic link there only the receiver can tell. */
static int check_subdir(struct put *p, struct fanout_target *ft)
{
	char msg[NSHM_REQ_PATH_MAX + 256];

	if (!ft->subdir || !*ft->subdir) {
		ft->subdir = NULL;   /* "vm1:" is DIR itself */
		return 0;
	}
	if (beneath_check("SUBDIR", ft->subdir, false, msg, sizeof(msg)) < 0) {
		cli_err(&p->cli, "%s", msg);
		return EXIT_USAGE;
	}
	return 0;
}

/* Each TARGET split and checked; one named twice is a usage error (a
 * region carries one transfer at a time; fanout.c also finds one region
 * under two names). */
static int check_targets(struct put *p)
{
	for (int i = 0; i < p->ntargets; i++) {
		struct fanout_target *ft = &p->t[i];
		int rc;

		ft->arg = p->targets[i];
		if ((rc = split_target(p, ft)) || (rc = check_subdir(p, ft)))
			return rc;
		for (int j = 0; j < i; j++)
			if (strcmp(p->t[j].endpoint, ft->endpoint) == 0) {
				cli_err(&p->cli, "target %s is named twice (%s, %s): name each "
					"target once", ft->endpoint, p->t[j].arg, ft->arg);
				return EXIT_USAGE;
			}
	}
	return 0;
}

/* The slot layout's options: --slots and --chunk. */
static int layout_option(struct put *p, int opt, const char *arg)
{
	uint64_t v;

	if (opt == OPT_SLOTS) {
		if (parse_size(arg, &v) || v < 1 || v > NSHM_MAX_SLOTS) {
			cli_err(&p->cli, "bad --slots '%s': 1 to %u", arg, NSHM_MAX_SLOTS);
			return EXIT_USAGE;
		}
		p->cli.params.slots = (unsigned)v;
		return 0;
	}
	if (parse_size(arg, &v) || v < NSHM_MIN_CHUNK || v > NSHM_MAX_CHUNK ||
	    v % NSHM_MIN_CHUNK) {
		cli_err(&p->cli, "bad --chunk '%s': a multiple of %uK, %uK to %uM", arg,
			NSHM_MIN_CHUNK >> 10, NSHM_MIN_CHUNK >> 10, NSHM_MAX_CHUNK >> 20);
		return EXIT_USAGE;
	}
	p->cli.params.chunk = (size_t)v;
	return 0;
}

/* -T and --buffer: where to, and how far one target may lag. */
static int target_option(struct put *p, int opt, const char *arg)
{
	uint64_t v;

	if (opt == 'T') {
		if (p->ntargets == MAX_TARGETS) {
			cli_err(&p->cli, "at most %d targets", MAX_TARGETS);
			return EXIT_USAGE;
		}
		p->targets[p->ntargets++] = arg;
		return 0;
	}
	if (parse_size(arg, &v) || v < FANOUT_BUFFER_MIN || v > FANOUT_BUFFER_MAX) {
		cli_err(&p->cli, "bad --buffer '%s': %uM to %uM", arg,
			FANOUT_BUFFER_MIN >> 20, FANOUT_BUFFER_MAX >> 20);
		return EXIT_USAGE;
	}
	p->buffer = v;
	return 0;
}

/* One option of nshm-put's own: 0, or the exit status. */
static int put_option(struct put *p, int opt, const char *arg)
{
	switch (opt) {
	case 'n':
		/* Checked here: cut to fit, it would offer another name. */
		if (!*arg || strlen(arg) > 255 || strchr(arg, '/')) {
			cli_err(&p->cli, "bad --name '%s': one file name of 1 to 255 bytes, "
				"without '/'", arg);
			return EXIT_USAGE;
		}
		p->name = arg;
		return 0;
	case 't':
		p->to = arg;
		return 0;
	case 'T':
	case OPT_BUFFER:
		return target_option(p, opt, arg);
	case OPT_SLOTS:
	case OPT_CHUNK:
		return layout_option(p, opt, arg);
	default:
		return cli_std_option(&p->cli, opt, usage);
	}
}

/* The operands: FILE... TARGET, or with -T FILE... alone ("FILE... vm1
 * vm2" could not tell a target from a file of that name). */
static int operands(struct put *p, int argc, char **argv)
{
	if (argc - optind < (p->ntargets ? 1 : 2)) {
		cli_err(&p->cli, p->ntargets ? "need FILE... (see --help)"
				: "need FILE... and TARGET (see --help)");
		return EXIT_USAGE;
	}
	p->files = argv + optind;
	p->nfiles = argc - optind;
	if (!p->ntargets) {
		p->targets[p->ntargets++] = argv[argc - 1];
		p->nfiles--;
	}
	return check_targets(p);
}

static int parse_args(struct put *p, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "to", required_argument, NULL, 't' },
		{ "target", required_argument, NULL, 'T' },
		{ "buffer", required_argument, NULL, OPT_BUFFER },
		{ "slots", required_argument, NULL, OPT_SLOTS },
		{ "chunk", required_argument, NULL, OPT_CHUNK },
		COMMON_LONG_OPTIONS,
		{ NULL, 0, NULL, 0 }
	};
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "n:t:T:qhV", longs, NULL)) != -1) {
		rc = cli_common_option(&p->cli, opt, optarg);
		if (rc < 0)
			return EXIT_USAGE;
		if (rc == 0 && (rc = put_option(p, opt, optarg)) != 0)
			return rc;
	}
	return operands(p, argc, argv);
}

int main(int argc, char **argv)
{
	static struct put p;
	struct nshm_region *r = NULL;
	int rc;

	cli_init(&p.cli, "nshm-put");
	rc = parse_args(&p, argc, argv);
	if (rc)
		return rc;
	cli_signals();
	cli_catch_sigbus(&p.cli, "the region", NULL, NULL);
	if (p.ntargets > 1)
		return fanout_send(&p.cli, &(struct send_what){
			.files = p.files, .nfiles = p.nfiles, .name = p.name },
			p.t, p.ntargets, p.buffer ? p.buffer : FANOUT_BUFFER_DEFAULT);
	rc = cli_open(&p.cli, p.t[0].endpoint, &r);
	if (rc)
		return rc;
	rc = send_what(&p.cli, r, &(struct send_what){
		.files = p.files, .nfiles = p.nfiles, .name = p.name,
		.request = p.t[0].subdir ? NSHM_REQ_PUSH_TO : 0, .path = p.t[0].subdir });
	nshm_close(r);
	return cli_exit_status(rc);
}
