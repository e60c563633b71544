/* SPDX-License-Identifier: BSD-2-Clause */
/* SPDX-License-Identifier: BSD-2-Clause */
/* nshm-server: an ivshmem server for one region (cmd/server/ivserver.c has the
 * logic). Options, signals and the log; runs in the foreground. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli.h"
#include "ivserver.h"

static const char usage[] =
"usage: nshm-server [OPTIONS] NAME\n"
"Serve the shared memory /dev/shm/NAME to QEMU's ivshmem-doorbell devices\n"
"and to nshm-put/nshm-get on this host, with eventfd doorbells between them\n"
"(QEMU's ivshmem server protocol). Runs in the foreground; logs one line\n"
"per event on standard output. SIGTERM or SIGINT stops it.\n"
"\n"
"  -s, --size SIZE       size of the memory when it is created (a power of\n"
"                        two, K/M/G suffixes; default 64M); an existing\n"
"                        /dev/shm/NAME is reused as it is, and must match\n"
"      --socket PATH     listen on PATH (default /run/nshm/NAME.sock); the\n"
"                        server holds PATH.lock while it serves\n"
"  -g, --group GROUP     owner group of the memory and the socket (a name\n"
"                        or a number; default the server's own group):\n"
"                        QEMU's group, e.g. libvirt-qemu under libvirt\n"
"      --socket-mode MODE  the socket's mode, octal (default 0660; QEMU\n"
"                        needs write permission to connect)\n"
"      --shm-mode MODE   the memory's mode, octal (default 0660)\n"
"  -n, --vectors N       interrupt vectors per client, the vectors= of the\n"
"                        ivshmem-doorbell devices (1 to 8, default 2)\n"
"  -h, --help            show this help\n"
"  -V, --version         show the version\n"
"\n"
"QEMU: -chardev socket,path=/run/nshm/NAME.sock,id=ivs\n"
"      with -device ivshmem-doorbell,chardev=ivs,vectors=2\n"
"\n"
"An existing /dev/shm/NAME is served only if this uid owns it, it has one\n"
"name, and nobody but the owner and GROUP can write it.\n"
"\n"
"Exit status: 0 stopped by a signal, 1 failed while serving, 2 usage error,\n"
"3 cannot serve NAME (the memory or the socket).\n";

enum { OPT_SOCKET = 0x100, OPT_SOCKET_MODE, OPT_SHM_MODE };

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void log_line(void *arg, const char *line)
{
	(void)arg;
	printf("%s\n", line);
	fflush(stdout);
}

/* The stop signals are blocked but while the server waits (waitmask), so
 * one arriving between two waits is taken by the next, never lost. */
static void signals(sigset_t *waitmask)
{
	struct sigaction sa;
	sigset_t block;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, waitmask);
	sigdelset(waitmask, SIGTERM);
	sigdelset(waitmask, SIGINT);
	sigdelset(waitmask, SIGHUP);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int parse_vectors(const char *s, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (end == s || *end || *s == '-' || v < 1 || v > NSHM_IVSERVER_MAX_VECTORS)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* A mode for a file others may open: permission bits only (no set-id,
 * sticky), and at least the owner's read and write. */
static int parse_mode(const char *s, mode_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 8);
	if (end == s || *end || *s == '-' || errno || v > 0777 || (v & 0600) != 0600)
		return -1;
	*out = (mode_t)v;
	return 0;
}

static int parse_group(const char *s, gid_t *out)
{
	struct group *g = getgrnam(s);
	char *end;
	unsigned long v;

	if (g) {
		*out = g->gr_gid;
		return 0;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (end == s || *end || *s == '-' || errno || v >= (gid_t)-1)
		return -1;
	*out = (gid_t)v;
	return 0;
}

/* One option into cfg: 0, or the exit status (a bad value: EXIT_USAGE;
 * -h and -V exit here). */
static int server_option(struct cli *c, struct nshm_ivserver_cfg *cfg, int opt,
			 const char *arg)
{
	switch (opt) {
	case 's':
		if (parse_size(arg, &cfg->size) || cfg->size == 0) {
			cli_err(c, "bad --size '%s'", arg);
			return EXIT_USAGE;
		}
		return 0;
	case OPT_SOCKET:
		cfg->socket = arg;
		return 0;
	case 'g':
		if (parse_group(arg, &cfg->group)) {
			cli_err(c, "bad --group '%s': no such group", arg);
			return EXIT_USAGE;
		}
		cfg->has_group = true;
		return 0;
	case OPT_SOCKET_MODE:
	case OPT_SHM_MODE:
		if (parse_mode(arg, opt == OPT_SHM_MODE ? &cfg->shm_mode : &cfg->socket_mode)) {
			cli_err(c, "bad --%s '%s': octal permission bits with at "
				"least the owner's read and write (0600 to 0777)",
				opt == OPT_SHM_MODE ? "shm-mode" : "socket-mode", arg);
			return EXIT_USAGE;
		}
		return 0;
	case 'n':
		if (parse_vectors(arg, &cfg->vectors)) {
			cli_err(c, "bad --vectors '%s': 1 to %u", arg, NSHM_IVSERVER_MAX_VECTORS);
			return EXIT_USAGE;
		}
		return 0;
	default:
		return cli_std_option(c, opt, usage);
	}
}

static int parse_args(struct cli *c, struct nshm_ivserver_cfg *cfg, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "size", required_argument, NULL, 's' },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "group", required_argument, NULL, 'g' },
		{ "socket-mode", required_argument, NULL, OPT_SOCKET_MODE },
		{ "shm-mode", required_argument, NULL, OPT_SHM_MODE },
		{ "vectors", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "s:n:g:hV", longs, NULL)) != -1)
		if ((rc = server_option(c, cfg, opt, optarg)) != 0)
			return rc;
	if (argc - optind != 1) {
		cli_err(c, "one NAME");
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	cfg->name = argv[optind];
	return 0;
}

int main(int argc, char **argv)
{
	struct nshm_ivserver_cfg cfg = { .vectors = NSHM_IVSERVER_DEFAULT_VECTORS,
					 .log = log_line };
	struct nshm_ivserver *s;
	struct cli c;
	sigset_t waitmask;
	char msg[1024];
	int rc;

	cli_init(&c, "nshm-server");
	if ((rc = parse_args(&c, &cfg, argc, argv)) != 0)
		return rc;
	signals(&waitmask);
	rc = nshm_ivserver_open(&s, &cfg, msg, sizeof(msg));
	if (rc < 0) {
		cli_err(&c, "%s", msg[0] ? msg : strerror(-rc));
		return EXIT_ENDPOINT;
	}
	rc = nshm_ivserver_run(s, &stop, &waitmask);
	if (rc < 0)
		cli_err(&c, "waiting for clients: %s", strerror(-rc));
	nshm_ivserver_close(s);
	return rc < 0 ? EXIT_FAILED : EXIT_OK;
}
