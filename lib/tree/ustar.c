/* SPDX-License-Identifier: BSD-2-Clause */
/* libarchive's pax writer clones each entry and formats it through several
 * layers: about 17 000 instructions per header, more than half of what the
 * sender spent on a 4 KiB file. A regular file whose fields all fit ustar
 * (what pax_restricted then writes: no extended record) needs none of it. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ustar.h"

/* Printable ASCII only: anything else would get a pax path record. */
static bool plain(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n >= max || (unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e)
			return false;
	return true;
}

/* digits octal digits of v, zero-padded, at p; false if v does not fit. */
static bool octal(char *p, int digits, uint64_t v)
{
	for (int i = digits - 1; i >= 0; i--, v >>= 3)
		p[i] = (char)('0' + (v & 7));
	return v == 0;
}

/* name into the name field, or split at a '/' into prefix and name. */
static bool put_name(char *h, const char *name)
{
	size_t len = strlen(name);
	const char *slash;

	if (len == 0 || !plain(name, 255))
		return false;
	if (len <= 100) {
		memcpy(h, name, len);
		return true;
	}
	/* The last '/' that leaves at most 100 bytes after it and 155 before. */
	for (slash = name + len - 101; slash < name + len && *slash != '/'; slash++)
		;
	if (slash >= name + len - 1 || (size_t)(slash - name) > 155 || slash == name)
		return false;
	memcpy(h + 345, name, (size_t)(slash - name));
	memcpy(h, slash + 1, len - (size_t)(slash - name) - 1);
	return true;
}

int nshm_ustar_header(unsigned char hdr[NSHM_USTAR_BLOCK], const char *name,
		      const struct stat *st, const char *uname, const char *gname)
{
	char *h = (char *)hdr;
	unsigned sum = 0;

	memset(hdr, 0, NSHM_USTAR_BLOCK);
	if (!S_ISREG(st->st_mode) || st->st_size < 0 || st->st_mtime < 0 ||
	    !put_name(h, name) || (uname && !plain(uname, 31)) || (gname && !plain(gname, 31)))
		return -1;
	if (!octal(h + 100, 6, st->st_mode & 07777) || !octal(h + 108, 6, st->st_uid) ||
	    !octal(h + 116, 6, st->st_gid) || !octal(h + 124, 11, (uint64_t)st->st_size) ||
	    !octal(h + 136, 11, (uint64_t)st->st_mtime))
		return -1;
	h[106] = h[114] = h[122] = ' ';
	h[135] = h[147] = ' ';
	memset(h + 148, ' ', 8);          /* the checksum counts as spaces */
	h[156] = '0';                     /* a regular file */
	memcpy(h + 257, "ustar\0" "00", 8);
	if (uname)
		memcpy(h + 265, uname, strlen(uname));
	if (gname)
		memcpy(h + 297, gname, strlen(gname));
	octal(h + 329, 6, 0);
	octal(h + 337, 6, 0);
	h[335] = h[343] = ' ';
	for (int i = 0; i < NSHM_USTAR_BLOCK; i++)
		sum += hdr[i];
	octal(h + 148, 6, sum);
	h[154] = '\0';
	h[155] = ' ';
	return 0;
}
