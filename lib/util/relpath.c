/* SPDX-License-Identifier: BSD-2-Clause */
/* The one syntactic rule for a path from a peer: a request's path (the
 * receiver, validate_request), a push's SUBDIR before it is sent (nshm-put)
 * and when it is resolved (cmd/beneath.c), a pull's PATH. Resolving it
 * beneath a directory fd is cmd/beneath.c's, the one confinement. */
#include <string.h>

#include "util.h"

const char *rel_path_problem(const char *path, size_t len, bool allow_abs)
{
	const char *p = path;

	if (len == 0 || strlen(path) != len)
		return "it is empty or holds a NUL byte";
	if (len > NSHM_REQ_PATH_MAX)
		return "it is too long";
	if (*p == '/') {
		if (!allow_abs)
			return "it is absolute";
		while (*p == '/')
			p++;
	}
	while (*p) {
		size_t n = strcspn(p, "/");

		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return "it has a '.' or '..' component";
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
				return "it holds a control byte";
		p += n;
		while (*p == '/')
			p++;
	}
	return NULL;
}
