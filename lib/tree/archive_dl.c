/* SPDX-License-Identifier: BSD-2-Clause */
/* Loads libarchive on first use (see archive_dl.h for why). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#define NSHM_ARCHIVE_DL_NO_RENAME
#include "archive_dl.h"
#include "proto/proto.h"
#include "tree.h"

/* The soname this build was compiled against (Makefile), else Debian's. */
#ifndef NSHM_LIBARCHIVE_SONAME
#define NSHM_LIBARCHIVE_SONAME "libarchive.so.13"
#endif

struct nshm_la nshm_la;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int load_rc;
static char load_why[NSHM_WHY_LEN];

static void load(void)
{
	/* Lazy: libarchive's own imports (ICU, libxml2, ...) bind when first
	 * called, and most never are (1.7M fewer instructions, callgrind). */
	void *h = dlopen(NSHM_LIBARCHIVE_SONAME, RTLD_LAZY | RTLD_LOCAL);

	if (!h) {
		load_rc = -ENOTSUP;
		snprintf(load_why, sizeof(load_why), "sets of files need libarchive "
			 "(%s: %s); install it (Debian: apt-get install libarchive13)",
			 NSHM_LIBARCHIVE_SONAME, dlerror());
		return;
	}
	/* dlsym returns void *: POSIX lets it become a function pointer,
	 * ISO C does not, so the store goes through a void ** (what POSIX's
	 * own dlsym example does) to keep -Wpedantic quiet. */
#define LA_LOAD(f) \
	*(void **)(&nshm_la.f) = dlsym(h, #f); \
	if (!nshm_la.f) { \
		load_rc = -ENOTSUP; \
		snprintf(load_why, sizeof(load_why), "%s lacks %s", NSHM_LIBARCHIVE_SONAME, #f); \
		return; \
	}
	LA_FUNCS(LA_LOAD)
#undef LA_LOAD
}

int nshm_la_load(char *why)
{
	pthread_once(&once, load);
	if (load_rc < 0 && why)
		snprintf(why, NSHM_WHY_LEN, "%s", load_why);
	return load_rc;
}

int nshm_la_ready(struct side *s)
{
	char why[NSHM_WHY_LEN];

	if (nshm_la_load(why) < 0)
		return side_fail(s, -ENOTSUP, NSHM_R_UNSUPPORTED, "%s", why);
	return 0;
}
