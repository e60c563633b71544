/* SPDX-License-Identifier: BSD-2-Clause */
/* What the three programs share: option values, signals, progress,
 * messages, exit statuses. */
#ifndef NSHM_CLI_H
#define NSHM_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "nshm.h"

/* Exit statuses (documented in the man pages). */
enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,      /* the transfer failed */
	EXIT_USAGE = 2,
	EXIT_ENDPOINT = 3,    /* the region cannot be used */
	EXIT_REFUSED = 4,     /* refused: the destination exists, ... */
	EXIT_TIMEOUT = 5,     /* no peer appeared within --timeout */
	EXIT_PARTIAL = 6,     /* nshm-put to several targets: some got it, some not */
	EXIT_INTERRUPTED = 130,
};

struct cli {
	const char *prog;
	bool quiet, json, tty;
	bool log;            /* a resident: one line per transfer on stderr */
	bool digest;         /* --digest sha256 */
	char sha256[65];     /* the last transfer's, hex, for cli_summary */
	unsigned map_flags;
	struct nshm_params params;
	/* progress: our own escaped copy, never a pointer into a name the
	 * library may free (an archive entry's) */
	char label[256];
	int64_t start_ns, last_ns;
	bool drew;
};

extern volatile sig_atomic_t cli_cancel;

void cli_init(struct cli *c, const char *prog);
void cli_signals(void);
/* On SIGBUS: unlink cleanup_name in *cleanup_dirfd (if it holds a name
 * then; AT_FDCWD without a dirfd), say that what
 * ("the region") shrank under the transfer, exit 1. */
void cli_catch_sigbus(const struct cli *c, const char *what, const int *cleanup_dirfd,
		      const char *cleanup_name);
/* Long options both programs take; returns 1 if handled, -1 on error. */
int cli_common_option(struct cli *c, int opt, const char *arg);
int parse_size(const char *s, uint64_t *out);
int parse_seconds(const char *s, int64_t *ms);

/* With --digest: the ended stream's SHA-256 (from nshm_*_digest) into
 * c->sha256, which cli_summary says. */
void cli_set_digest(struct cli *c, int rc, const unsigned char d[32]);
/* One message on stderr, escaped for the terminal; errno is kept. */
void cli_err(const struct cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void cli_set_label(struct cli *c, const char *name);
/* An entry callback for nshm_tx_tree / nshm_rx_tree: the label follows it. */
void cli_on_entry(void *arg, const char *name);
int cli_exit_status(int rc);
/* What every program does with -h, -V and an unknown option: help or the
 * version on stdout and exit 0; usage on stderr and EXIT_USAGE. */
int cli_std_option(const struct cli *c, int opt, const char *usage);
void cli_progress_done(struct cli *c);
void cli_summary(struct cli *c, const char *name, uint64_t bytes, uint32_t crc,
		 const char *extra_json);
int64_t cli_now_ns(void);
void json_string(FILE *f, const char *s);
/* --json event lines of a resident receiver (no-ops without --json). */
void cli_event(struct cli *c, const char *event, const struct nshm_meta *m);
void cli_event_failed(struct cli *c, int rc, const char *why);
/* Sleep that a signal cuts short (the programs' cancel flag). */
void cli_sleep_ns(int64_t ns);

/* nshm_open with the message on failure: 0, or the exit status. Inline:
 * cli.o then needs nothing of libnshm beyond lib/util/, and nshm-server,
 * which opens no region, links cli.o without the library. */
static inline int cli_open(struct cli *c, const char *endpoint, struct nshm_region **r)
{
	char msg[1024];
	int rc = nshm_open(r, endpoint, c->map_flags, msg, sizeof(msg));

	if (rc == 0)
		return 0;
	cli_err(c, "%s", msg);
	return cli_exit_status(rc);
}

/* --help lines every program shares (nshm-server has no --map). */
#define CLI_USAGE_MAP \
"      --map uc|wc|wb      for pci: map BAR2 uncached, write-combining or\n" \
"                          write-back (default: write-back through the guest\n" \
"                          module when it is bound, else uc)\n"
#define CLI_USAGE_HELP \
"  -h, --help              show this help\n" \
"  -V, --version           show the version\n"
/* ... and the two transfer programs. */
#define CLI_USAGE_TRANSFER_TAIL \
	CLI_USAGE_MAP \
"      --digest sha256     print the stream's SHA-256 once it is verified\n" \
"  -q, --quiet             no progress or messages, only errors\n" \
"      --json              print a JSON summary on standard output\n" \
	CLI_USAGE_HELP

#define COMMON_LONG_OPTIONS \
	{ "timeout", required_argument, NULL, OPT_TIMEOUT }, \
	{ "peer-timeout", required_argument, NULL, OPT_PEER_TIMEOUT }, \
	{ "map", required_argument, NULL, OPT_MAP }, \
	{ "digest", required_argument, NULL, OPT_DIGEST }, \
	{ "json", no_argument, NULL, OPT_JSON }, \
	{ "quiet", no_argument, NULL, 'q' }, \
	{ "help", no_argument, NULL, 'h' }, \
	{ "version", no_argument, NULL, 'V' }

enum { OPT_TIMEOUT = 256, OPT_PEER_TIMEOUT, OPT_MAP, OPT_JSON, OPT_NAME,
       OPT_SLOTS, OPT_CHUNK, OPT_WATCH_INTERVAL, OPT_SERVE, OPT_ALLOW_PULL,
       OPT_PULL, OPT_MAX_BYTES, OPT_DIGEST, OPT_BUFFER };

#endif
