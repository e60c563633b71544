/* SPDX-License-Identifier: BSD-2-Clause */
/* The public structs' room to grow before 1.0 (lib/nshm.h): each ends in
 * reserved fields, so a field added later takes reserved space and the
 * struct keeps its size. A program built before the field existed passes
 * zero there, the field's default. That holds only if callers clear what
 * they pass: the begin functions refuse nonzero reserved fields, so a
 * program that forgets fails now, not after an upgrade. */
#include <errno.h>

#include "util.h"

#if UINTPTR_MAX == UINT64_MAX
/* The sizes on LP64: a new field must come out of reserved[], not be
 * appended (which would change the ABI of every program built before). */
_Static_assert(sizeof(struct nshm_params) == 128, "nshm_params: take new fields from reserved");
_Static_assert(sizeof(struct nshm_meta) == 360, "nshm_meta: take new fields from reserved");
_Static_assert(sizeof(struct nshm_tree_stats) == 48, "nshm_tree_stats: take from reserved");
_Static_assert(sizeof(struct nshm_side_stat) == 72, "nshm_side_stat: take from reserved");
_Static_assert(sizeof(struct nshm_stat) == 520, "nshm_stat: take new fields from reserved");
#endif

static int all_zero(const uint64_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] != 0)
			return 0;
	return 1;
}

int nshm_check_params(const struct nshm_params *p)
{
	return p->reserved32 == 0 && (p->flags & ~(NSHM_P_WAIT_BUSY | NSHM_P_DIGEST)) == 0 &&
	       all_zero(p->reserved, sizeof(p->reserved) / sizeof(p->reserved[0]))
	       ? 0 : -EINVAL;
}

int nshm_check_meta(const struct nshm_meta *m)
{
	return all_zero(m->reserved, sizeof(m->reserved) / sizeof(m->reserved[0]))
	       ? 0 : -EINVAL;
}
