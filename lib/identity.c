/* SPDX-License-Identifier: BSD-2-Clause */
/* Who we are, written beside each claim: a process on the same kernel and
 * pid namespace can then tell at once that a claim's owner is dead. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

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

static void init_self(void)
{
	struct stat st;

	self.pid = (uint32_t)getpid();
	if (stat("/proc/self/ns/pid", &st) == 0)
		self.pidns = (uint64_t)st.st_ino;
	read_boot_id(self.boot);
}

const struct nshm_self *nshm_self(void)
{
	pthread_once(&self_once, init_self);
	return &self;
}
