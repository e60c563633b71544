/* SPDX-License-Identifier: BSD-2-Clause */
/* Shared pieces of the command-line programs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

volatile sig_atomic_t cli_cancel;
/* The last message cli_err printed: a --json "failed" event says it. */
static char last_err[512];
static char bus_msg[128];
static size_t bus_len;
static const char *bus_cleanup;
static const int *bus_dirfd;

/* The region can shrink under the mapping (a truncated shm object), and
 * so can an input file that nshm_tx_from_fd maps: an access then raises
 * SIGBUS. Nothing is safe to continue; remove the
 * partial output, say why, and fail. Only async-signal-safe calls here. */
static void on_sigbus(int sig)
{
	(void)sig;
	if (bus_cleanup && bus_cleanup[0])
		unlinkat(bus_dirfd ? *bus_dirfd : AT_FDCWD, bus_cleanup, 0);
	if (write(STDERR_FILENO, bus_msg, bus_len) < 0) {
		/* nothing more to do */
	}
	_exit(EXIT_FAILED);
}

void cli_catch_sigbus(const struct cli *c, const char *what, const int *cleanup_dirfd,
		      const char *cleanup_name)
{
	bus_len = (size_t)snprintf(bus_msg, sizeof(bus_msg),
				   "%s: %s shrank or vanished under the transfer\n",
				   c->prog, what);
	if (bus_len >= sizeof(bus_msg))
		bus_len = sizeof(bus_msg) - 1;
	bus_dirfd = cleanup_dirfd;
	bus_cleanup = cleanup_name;
	signal(SIGBUS, on_sigbus);
}

static void on_signal(int sig)
{
	cli_cancel = sig;
}

int64_t cli_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* No SA_RESTART: a blocked read() or write() returns EINTR and the library
 * sees the flag. SIGPIPE is ignored so a closed stdout is an EPIPE error. */
void cli_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void waiting(void *arg, const char *what)
{
	struct cli *c = arg;

	if (c->tty && !c->quiet) {
		cli_progress_done(c);   /* not at the end of a progress line */
		cli_err(c, "%s", what);
	}
}

static void human(char *buf, size_t len, double v)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void progress(void *arg, uint64_t done, uint64_t total)
{
	struct cli *c = arg;
	int64_t now = cli_now_ns();
	double secs = (now - c->start_ns) / 1e9;
	char d[32], t[32] = "", eta[32] = "";

	if (!c->tty || c->quiet || (now - c->last_ns < 100000000 && done != total))
		return;
	c->last_ns = now;
	human(d, sizeof(d), (double)done);
	if (total) {
		human(t, sizeof(t), (double)total);
		if (done > 0 && secs > 0) {
			double left = (double)(total - done) * secs / (double)done;

			snprintf(eta, sizeof(eta), " ETA %d:%02d", (int)left / 60, (int)left % 60);
		}
		fprintf(stderr, "\r%s: %s / %s %3d%% %7.1f MB/s%s  ", c->label, d, t,
			(int)(done * 100 / total), secs > 0 ? done / secs / 1e6 : 0.0, eta);
	} else {
		fprintf(stderr, "\r%s: %s %7.1f MB/s  ", c->label, d,
			secs > 0 ? done / secs / 1e6 : 0.0);
	}
	c->drew = true;
}

void cli_progress_done(struct cli *c)
{
	if (c->drew)
		fputc('\n', stderr);
	c->drew = false;
}

void cli_init(struct cli *c, const char *prog)
{
	memset(c, 0, sizeof(*c));
	nshm_crc32_use(getenv("NSHM_CRC")); /* a measurement switch (nshm-put(1)); bad names: auto */
	c->prog = prog;
	c->tty = isatty(STDERR_FILENO);
	c->params.cancel = &cli_cancel;
	c->params.waiting = waiting;
	c->params.progress = progress;
	c->params.arg = c;
	cli_set_label(c, prog);
	c->start_ns = cli_now_ns();
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	}
	if (shift && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
		end += strlen(end);
	if (*end || v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

int parse_seconds(const char *s, int64_t *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < 0 || v > 1e9)
		return -1;
	*ms = (int64_t)(v * 1000 + 0.5);
	return 0;
}

int cli_common_option(struct cli *c, int opt, const char *arg)
{
	switch (opt) {
	case OPT_TIMEOUT:
		if (parse_seconds(arg, &c->params.timeout_ms) == 0)
			return 1;
		cli_err(c, "bad --timeout '%s': give seconds", arg);
		return -1;
	case OPT_PEER_TIMEOUT:
		if (parse_seconds(arg, &c->params.peer_timeout_ms) == 0 &&
		    c->params.peer_timeout_ms > 0)
			return 1;
		cli_err(c, "bad --peer-timeout '%s': give seconds above 0", arg);
		return -1;
	case OPT_MAP:
		if (strcmp(arg, "wc") == 0)
			c->map_flags = NSHM_MAP_WC;
		else if (strcmp(arg, "uc") == 0)
			c->map_flags = NSHM_MAP_UC;
		else if (strcmp(arg, "wb") == 0)
			c->map_flags = NSHM_MAP_WB;
		else {
			cli_err(c, "bad --map '%s': use uc, wc or wb", arg);
			return -1;
		}
		return 1;
	case OPT_JSON:
		c->json = true;
		return 1;
	case OPT_DIGEST:
		if (strcmp(arg, "sha256") != 0) {
			cli_err(c, "bad --digest '%s': sha256 is the one there is", arg);
			return -1;
		}
		c->digest = true;
		c->params.flags |= NSHM_P_DIGEST;
		return 1;
	case 'q':
		c->quiet = true;
		return 1;
	}
	return 0;
}

void cli_set_label(struct cli *c, const char *name)
{
	nshm_escape(c->label, sizeof(c->label), name, 0);
}

void cli_on_entry(void *arg, const char *name)
{
	cli_set_label(arg, name);
}

/* Messages may carry names from the peer (in the library's why too):
 * whatever they hold, escape it on the way to the terminal. */
void cli_err(const struct cli *c, const char *fmt, ...)
{
	int saved = errno;
	char msg[2048], esc[4096];
	size_t n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	nshm_escape(esc, sizeof(esc), msg, NSHM_ESCAPE_MESSAGE);
	fprintf(stderr, "%s: %s\n", c->prog, esc);
	n = strnlen(msg, sizeof(last_err) - 1);   /* cut, for --json only */
	memcpy(last_err, msg, n);
	last_err[n] = '\0';
	errno = saved;
}

int cli_exit_status(int rc)
{
	switch (rc) {
	case 0:
		return EXIT_OK;
	case -NSHM_ENOENDPOINT: case -NSHM_ENODEVICE: case -NSHM_EMANYDEVICES:
	case -NSHM_ETOOSMALL: case -NSHM_EMAGIC: case -NSHM_EVERSION:
	case -NSHM_EBUSY: case -EACCES: case -EPERM: case -EINVAL:
		return EXIT_ENDPOINT;
	case -NSHM_EREFUSED: case -EEXIST:
		return EXIT_REFUSED;
	case -ETIMEDOUT:
		return EXIT_TIMEOUT;
	case -ECANCELED:
		return EXIT_INTERRUPTED;
	default:
		return EXIT_FAILED;
	}
}

void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* One line for a person on a TTY, or one JSON object for scripts. */
void cli_summary(struct cli *c, const char *name, uint64_t bytes, uint32_t crc,
		 const char *extra_json)
{
	double secs = (cli_now_ns() - c->start_ns) / 1e9;
	double mbps = secs > 0 ? bytes / secs / 1e6 : 0;

	cli_progress_done(c);
	if (c->json) {
		printf("{\"event\":\"done\",\"name\":");
		json_string(stdout, name);
		/* crc32_impl: which implementation this side ran (make demo
		 * reports it; NSHM_CRC and the timing choose it). */
		printf(",\"bytes\":%llu,\"seconds\":%.6f,\"mbps\":%.1f,"
		       "\"crc32\":\"%08x\",\"crc32_impl\":\"%s\"%s%s",
		       (unsigned long long)bytes, secs, mbps, crc, nshm_crc32_impl(),
		       extra_json ? "," : "", extra_json ? extra_json : "");
		if (c->sha256[0])
			printf(",\"sha256\":\"%s\"", c->sha256);
		printf("}\n");
		fflush(stdout);
	} else {
		char esc[1024];

		nshm_escape(esc, sizeof(esc), name, 0);
		if (!c->quiet && (c->tty || c->log))
			fprintf(stderr, "%s: %s: %llu bytes in %.2f s (%.1f MB/s), crc32 %08x\n",
				c->prog, esc, (unsigned long long)bytes, secs, mbps, crc);
		/* Asked for by name: said even with --quiet, in sha256sum's form. */
		if (c->sha256[0])
			fprintf(stderr, "%s  %s\n", c->sha256, esc);
	}
	c->sha256[0] = '\0';
}

void cli_set_digest(struct cli *c, int rc, const unsigned char d[32])
{
	c->sha256[0] = '\0';
	if (rc < 0)
		return;
	for (int i = 0; i < 32; i++)
		snprintf(c->sha256 + 2 * i, 3, "%02x", d[i]);
}

void cli_event(struct cli *c, const char *event, const struct nshm_meta *m)
{
	static const char *const kinds[] = { "none", "push-to", "pull", "reply" };

	if (!c->json)
		return;
	printf("{\"event\":\"%s\",\"name\":", event);
	json_string(stdout, m->name);
	printf(",\"size\":%llu,\"size_known\":%s,\"archive\":%s",
	       (unsigned long long)m->size, m->size_known ? "true" : "false",
	       m->archive ? "true" : "false");
	if (m->request && m->request < sizeof(kinds) / sizeof(kinds[0])) {
		printf(",\"request\":\"%s\",\"path\":", kinds[m->request]);
		json_string(stdout, m->path ? m->path : "");
	}
	printf("}\n");
	fflush(stdout);
}

void cli_event_failed(struct cli *c, int rc, const char *why)
{
	if (!c->json)
		return;
	printf("{\"event\":\"failed\",\"error\":");
	json_string(stdout, nshm_strerror(rc));
	printf(",\"message\":");
	json_string(stdout, why && *why ? why : *last_err ? last_err : nshm_strerror(rc));
	printf("}\n");
	fflush(stdout);
	last_err[0] = '\0';
}

/* nanosleep, cut short by a signal (cli_cancel is then set). */
void cli_sleep_ns(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };

	nanosleep(&ts, NULL);
}

int cli_std_option(const struct cli *c, int opt, const char *usage)
{
	if (opt == 'h') {
		fputs(usage, stdout);
		exit(EXIT_OK);
	}
	if (opt == 'V') {
		printf("%s %s (protocol %d, crc32 %s)\n", c->prog, NSHM_LIB_VERSION,
		       NSHM_PROTOCOL_VERSION, nshm_crc32_impl());
		exit(EXIT_OK);
	}
	fputs(usage, stderr);
	return EXIT_USAGE;
}
