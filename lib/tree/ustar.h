/* SPDX-License-Identifier: BSD-2-Clause */
/* A plain ustar header for the common entry, without libarchive. */
#ifndef NSHM_USTAR_H
#define NSHM_USTAR_H

#include <sys/stat.h>

#define NSHM_USTAR_BLOCK 512

/* The header of regular file NAME as libarchive's pax_restricted writer
 * makes it when no field needs a pax record: 0, or -1 when one would (a
 * long or non-ASCII name, a large size, id or time, a long owner name):
 * then the caller lets libarchive write it. uname, gname may be NULL. */
int nshm_ustar_header(unsigned char hdr[NSHM_USTAR_BLOCK], const char *name,
		      const struct stat *st, const char *uname, const char *gname);

#endif
