/* SPDX-License-Identifier: BSD-2-Clause */
/* Who we are, written beside each claim: a process on the same kernel and
 * pid namespace can then tell at once that a claim's owner is dead. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto.h"

static struct nshm_self self;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* boot_id is a UUID: 32 hex digits and dashes. */
static void read_boot_id(uint64_t boot[2])
{
	char buf[64] = "";
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	int n = 0;

	boot[0] = boot[1] = 0;
	if (!f)
		return;
	if (fgets(buf, sizeof(buf), f)) {
		for (const char *p = buf; *p && n < 32; p++) {
			int v = hexval(*p);

			if (v < 0)
				continue;
			boot[n / 16] = boot[n / 16] << 4 | (uint64_t)v;
			n++;
		}
	}
	fclose(f);
	if (n != 32)
		boot[0] = boot[1] = 0;
}

/* The name (field 2) may hold spaces and parentheses: the fields that
 * follow start after its last ')'. State is field 3, start time 22. */
static int read_stat(const char *path, char *state, uint64_t *start)
{
	char buf[1024], *p;
	int fd, rc = 0;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		rc = errno == ESRCH ? -ESRCH : -errno;
	close(fd);
	if (rc < 0)
		return rc;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -EINVAL;
	*state = p[2];
	p += 3;
	/* Fields 4 to 21, then the start time. */
	for (int field = 4; field <= 21; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EINVAL;
		p++;
	}
	errno = 0;
	*start = strtoull(p, NULL, 10);
	return errno ? -EINVAL : 0;
}

int nshm_proc_stat(uint32_t pid, char *state, uint64_t *start)
{
	char path[32];

	/* /proc mounted for another pid namespace names other processes by
	 * these numbers. */
	if (!nshm_self()->proc_ours)
		return -ENOSYS;
	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/stat", pid);
	return read_stat(path, state, start);
}

static void init_self(void)
{
	struct stat st;
	char state, link[32];
	ssize_t n;

	self.pid = (uint32_t)getpid();
	if (stat("/proc/self/ns/pid", &st) == 0)
		self.pidns = (uint64_t)st.st_ino;
	read_boot_id(self.boot);
	if (read_stat("/proc/self/stat", &state, &self.start) < 0)
		self.start = 0;
	/* /proc/self names us by our number in /proc's pid namespace. */
	n = readlink("/proc/self", link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = '\0';
		self.proc_ours = strtoul(link, NULL, 10) == self.pid;
	}
}

const struct nshm_self *nshm_self(void)
{
	pthread_once(&self_once, init_self);
	return &self;
}
