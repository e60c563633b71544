/* SPDX-License-Identifier: BSD-2-Clause */
/* race-servers SERVER SOCKET NAME TRIES: issue 20, finding 6. Starts two
 * nshm-servers at once on one socket path, TRIES times, and checks each
 * time that exactly one serves, that the other exits 3 without touching
 * the winner's socket (it still answers once the loser is gone), and that
 * the winner removes its socket when stopped. Prints "N tries, F failures"
 * and exits 1 on any failure (the first few are described). For
 * tests/server.bats; a C loop because 2000 server starts from bash would
 * cost a minute. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

struct srv {
	pid_t pid;
	int out;          /* its stdout */
	bool serving;
	int status;       /* from waitpid, once it exited */
	bool exited;
};

static const char *server, *sock_path, *name;

static int start(struct srv *s)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	s->pid = fork();
	if (s->pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(p[1], 1);
		dup2(null, 2);
		execl(server, server, "--size", "1M", "--socket", sock_path, name, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	s->out = p[0];
	s->serving = s->exited = false;
	return s->pid < 0 ? -1 : 0;
}

/* Reads s's log until it says "serving" or closes (it exited). */
static void settle(struct srv *s)
{
	char buf[4096];
	size_t have = 0;

	for (;;) {
		struct pollfd p = { .fd = s->out, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 20000) != 1)
			return;
		n = read(s->out, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "\nserving ") || strncmp(buf, "serving ", 8) == 0) {
			s->serving = true;
			return;
		}
		if (have == sizeof(buf) - 1)
			have = 0;
	}
	waitpid(s->pid, &s->status, 0);
	s->exited = true;
}

static bool answers(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock_path);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static int one_try(int i, int *described)
{
	struct srv s[2];
	struct stat st;
	const char *why = NULL;
	int winner = -1, nserving;

	if (start(&s[0]) || start(&s[1]))
		return -1;
	settle(&s[0]);
	settle(&s[1]);
	nserving = s[0].serving + s[1].serving;
	if (nserving == 1) {
		winner = s[0].serving ? 0 : 1;
		if (!(WIFEXITED(s[1 - winner].status) && WEXITSTATUS(s[1 - winner].status) == 3))
			why = "the loser did not exit 3";
		else if (!answers())
			why = "the winner's socket is gone or dead after the loser exited";
	} else {
		why = nserving == 2 ? "both serve (one took the other's path)" : "neither serves";
	}
	for (int k = 0; k < 2; k++) {
		if (!s[k].exited) {
			kill(s[k].pid, SIGTERM);
			waitpid(s[k].pid, &s[k].status, 0);
		}
		close(s[k].out);
	}
	if (!why && lstat(sock_path, &st) == 0)
		why = "the winner left its socket behind";
	/* A failed try leaves state behind: start the next one clean. */
	unlink(sock_path);
	if (why && (*described)++ < 5)
		fprintf(stderr, "try %d: %s\n", i, why);
	return why ? 1 : 0;
}

int main(int argc, char **argv)
{
	int tries, failures = 0, described = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: race-servers SERVER SOCKET NAME TRIES\n");
		return 2;
	}
	server = argv[1];
	sock_path = argv[2];
	name = argv[3];
	tries = atoi(argv[4]);
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < tries; i++) {
		int rc = one_try(i, &described);

		if (rc < 0) {
			perror("race-servers");
			return 2;
		}
		failures += rc;
	}
	printf("%d tries, %d failures\n", tries, failures);
	return failures ? 1 : 0;
}
