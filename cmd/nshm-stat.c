/* SPDX-License-Identifier: BSD-2-Clause */
/* nshm-stat: what a region holds right now. Reads only. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
"usage: nshm-stat [OPTIONS] [ENDPOINT]\n"
"Show what the ivshmem region ENDPOINT holds: its size and protocol, each\n"
"side's state and heartbeat, and the transfer in progress. Reads only.\n"
"ENDPOINT: pci (default), pci:DDDD:BB:DD.F, NAME (/dev/shm/NAME) or a path.\n"
"\n"
"  -w, --watch             refresh until interrupted\n"
"  -i, --interval SECONDS  time between samples (default 1)\n"
CLI_USAGE_MAP
"      --json              print one JSON object per sample\n"
CLI_USAGE_HELP
"\n"
"Exit status: 0 shown, 2 usage error, 3 region unusable.\n";

static const char *liveness(const struct nshm_side_stat *s)
{
	if (!s->claimed)
		return "free";
	if (s->alive > 0)
		return "alive";
	if (s->asleep)
		return "asleep until rung";
	return s->same_host ? "dead (stale, will be taken over)"
			    : "silent (taken over once still for 2 s, or the peer timeout)";
}

/* The sender stays in "offer" through the data phase; once the receiver
 * has accepted, it is sending. */
static const char *tx_state(const struct nshm_stat *st)
{
	if (st->tx.state == 1 && st->rx.state == 2)
		return "sending";
	return nshm_tx_state_name(st->tx.state);
}

static void side_text(const char *role, const struct nshm_side_stat *s, const char *state)
{
	printf("%-9s %s", role, s->present ? "" : "(none) ");
	if (!s->present) {
		printf("\n");
		return;
	}
	printf("%s, %s, pid %u%s, heartbeat %llu", state,
	       liveness(s), s->pid, s->same_host ? "" : " (other side)",
	       (unsigned long long)s->heartbeat);
	/* Who rings it: its ivshmem peer ID, or nobody (it polls). */
	if (s->bell)
		printf(", doorbell id %u\n", s->bell - 1);
	else
		printf(", no doorbell\n");
}

static void side_json(const char *role, const struct nshm_side_stat *s, const char *state)
{
	printf("\"%s\":{\"present\":%s,\"version\":%u,\"claimed\":%s,\"pid\":%u,"
	       "\"same_host\":%s,\"alive\":%d,\"state\":\"%s\",\"reason\":%u,"
	       "\"heartbeat\":%llu,\"asleep\":%s,\"doorbell_id\":", role,
	       s->present ? "true" : "false", s->version, s->claimed ? "true" : "false",
	       s->pid, s->same_host ? "true" : "false", s->alive, state, s->reason,
	       (unsigned long long)s->heartbeat, s->asleep ? "true" : "false");
	if (s->bell)
		printf("%u}", s->bell - 1);
	else
		printf("null}");
}

/* How the region is mapped and how the peer wakes us (nshm_open's choice). */
static const char *mapping, *doorbell;

static void show(const struct cli *c, const char *ep, const struct nshm_stat *st,
		 double rate)
{
	if (c->json) {
		printf("{\"endpoint\":");
		json_string(stdout, ep);
		printf(",\"size\":%zu,\"protocol\":%d,\"slots\":%u,\"chunk\":%u,",
		       st->size, NSHM_PROTOCOL_VERSION, st->slots, st->chunk);
		side_json("sender", &st->tx, tx_state(st));
		putchar(',');
		side_json("receiver", &st->rx, nshm_rx_state_name(st->rx.state));
		printf(",\"session\":\"%016llx\",\"name\":", (unsigned long long)st->session);
		json_string(stdout, st->name);
		printf(",\"total\":%llu,\"size_known\":%s,\"archive\":%s,\"bytes\":%llu,"
		       "\"rate_mbps\":%.1f}\n", (unsigned long long)st->total,
		       st->size_known ? "true" : "false", st->archive ? "true" : "false",
		       (unsigned long long)st->bytes, rate / 1e6);
		fflush(stdout);
		return;
	}
	printf("region    %s, %zu bytes, protocol %d", ep, st->size, NSHM_PROTOCOL_VERSION);
	if (st->slots)
		printf(", %u slots of %u bytes", st->slots, st->chunk);
	printf("\n");
	printf("mapping   %s\ndoorbell  %s\n", mapping, doorbell);
	side_text("sender", &st->tx, tx_state(st));
	side_text("receiver", &st->rx, nshm_rx_state_name(st->rx.state));
	if (st->session && st->name[0]) {
		char name[1024];

		/* The peer wrote it: escaped, like every name it chose. */
		nshm_escape(name, sizeof(name), st->name, 0);
		printf("transfer  %s%s: %llu", name, st->archive ? " (archive)" : "",
		       (unsigned long long)st->bytes);
		if (st->size_known)
			printf(" of %llu", (unsigned long long)st->total);
		printf(" bytes, %.1f MB/s\n", rate / 1e6);
	}
	fflush(stdout);
}

/* What the command line asks for: the endpoint, --watch, --interval. */
struct stat_args {
	const char *ep;
	int64_t interval_ms;
	bool watch;
};

/* 0, or the exit status of a usage error (already said), or of --help. */
static int parse_args(struct cli *c, int argc, char **argv, struct stat_args *a)
{
	static const struct option longs[] = {
		{ "watch", no_argument, NULL, 'w' },
		{ "interval", required_argument, NULL, 'i' },
		/* Not COMMON_LONG_OPTIONS: no transfer here, so no timeouts. */
		{ "map", required_argument, NULL, OPT_MAP },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int opt, rc;

	*a = (struct stat_args){ .ep = "pci", .interval_ms = 1000 };
	while ((opt = getopt_long(argc, argv, "wi:hV", longs, NULL)) != -1) {
		rc = cli_common_option(c, opt, optarg);
		if (rc < 0)
			return EXIT_USAGE;
		if (rc > 0)
			continue;
		if (opt == 'w') {
			a->watch = true;
		} else if (opt == 'i') {
			if (parse_seconds(optarg, &a->interval_ms) || a->interval_ms < 10) {
				cli_err(c, "bad --interval '%s'", optarg);
				return EXIT_USAGE;
			}
		} else {
			return cli_std_option(c, opt, usage);
		}
	}
	if (argc - optind > 1) {
		cli_err(c, "at most one ENDPOINT");
		return EXIT_USAGE;
	}
	if (argc - optind == 1)
		a->ep = argv[optind];
	return 0;
}

int main(int argc, char **argv)
{
	struct stat_args a;
	struct cli c;
	struct nshm_region *r;
	struct nshm_stat st;
	int rc;

	cli_init(&c, "nshm-stat");
	rc = parse_args(&c, argc, argv, &a);
	if (rc)
		return rc;
	cli_signals();
	cli_catch_sigbus(&c, "the region", NULL, NULL);
	rc = cli_open(&c, a.ep, &r);
	if (rc)
		return rc;
	/* Two snapshots this far apart judge heartbeats (beaten every 50 ms)
	 * and the rate; --watch samples over its own interval. */
	mapping = nshm_region_mapping(r);
	doorbell = nshm_region_doorbell(r);
	nshm_stat(r, &st, 200);
	do {
		show(&c, a.ep, &st, (double)st.rate);
		if (!a.watch || cli_cancel)
			break;
		if (!c.json)
			printf("\n");
		nshm_stat(r, &st, (int)a.interval_ms);
	} while (!cli_cancel);
	nshm_close(r);
	return EXIT_OK;
}
