/* SPDX-License-Identifier: BSD-2-Clause */
/* tree: sets of files as one pax stream over a transfer
 * (lib/README.md): libarchive loaded with dlopen (archive_dl.h), our
 * own ustar writer for plain files (ustar.h), the walk (walk.h), and the
 * extraction beneath a directory fd.
 * May include: lib/proto/, lib/endpoint/, lib/util/, lib/nshm.h. */
#ifndef NSHM_TREE_H
#define NSHM_TREE_H

#include "nshm.h"

/* archive_tx.c, archive_rx.c: trees by file descriptor, for what a peer
 * named (cmd/beneath.c resolved it once; no name is looked up again).
 * fd, an open directory, is sent as name/...; a tree is extracted beneath
 * dirfd (the working directory is dirfd's while it runs). */
int tree_measure_fd(int fd, const char *name, struct nshm_tree_stats *st);
int tx_tree_fd(struct nshm_tx *tx, int fd, const char *name, nshm_entry_fn entry,
	       void *arg, struct nshm_tree_stats *sent);
int rx_tree_at(struct nshm_rx *rx, int dirfd, unsigned flags, nshm_entry_fn entry,
	       void *arg, struct nshm_tree_stats *got);

#endif
