/* SPDX-License-Identifier: BSD-2-Clause */
/* libarchive, loaded when a set of files is first sent or received.
 *
 * libarchive brings 17 shared libraries (ICU and libxml2 among them): a
 * program that loaded them at start-up paid about 2 ms for every single
 * file it moved. Included after <archive.h> and <archive_entry.h>, this
 * header turns each libarchive call of the including file into a call
 * through a table that nshm_la_load() fills with dlopen/dlsym, so the
 * source reads as plain libarchive. A call to a function not listed here
 * fails the link (the programs do not link libarchive): add it to LA_FUNCS.
 */
#ifndef NSHM_ARCHIVE_DL_H
#define NSHM_ARCHIVE_DL_H

#include <archive.h>
#include <archive_entry.h>

#define LA_FUNCS(X) \
	X(archive_entry_copy_pathname) X(archive_entry_filetype) \
	X(archive_entry_free) X(archive_entry_hardlink) X(archive_entry_linkify) \
	X(archive_entry_linkresolver_free) X(archive_entry_linkresolver_new) \
	X(archive_entry_linkresolver_set_strategy) X(archive_entry_new) \
	X(archive_entry_pathname) X(archive_entry_perm) X(archive_entry_size) \
	X(archive_entry_symlink) X(archive_error_string) X(archive_format) \
	X(archive_read_data_block) X(archive_read_disk_descend) \
	X(archive_read_disk_new) X(archive_read_disk_open) \
	X(archive_read_disk_set_behavior) X(archive_read_disk_set_standard_lookup) \
	X(archive_read_disk_set_symlink_physical) X(archive_read_free) \
	X(archive_read_new) X(archive_read_next_header) X(archive_read_next_header2) \
	X(archive_read_open) X(archive_read_support_format_tar) X(archive_set_error) \
	X(archive_write_close) X(archive_write_data) X(archive_write_finish_entry) \
	X(archive_write_free) X(archive_write_header) X(archive_write_new) \
	X(archive_write_open) X(archive_write_set_bytes_per_block) \
	X(archive_write_set_format_pax_restricted) X(archive_entry_clear) \
	X(archive_entry_copy_stat) X(archive_entry_copy_symlink) \
	X(archive_entry_copy_uname) X(archive_entry_copy_gname) \
	X(archive_entry_set_size) X(archive_entry_sparse_add_entry) \
	X(archive_entry_mtime) X(archive_entry_mtime_nsec) \
	X(archive_entry_mtime_is_set) X(archive_entry_atime) \
	X(archive_entry_atime_nsec) X(archive_entry_atime_is_set) \
	X(archive_entry_uid) X(archive_entry_gid) X(archive_entry_uname) \
	X(archive_entry_gname) LA_FUNCS_MORE(X)

/* Room for files that need a few more (defined before this header). */
#ifndef LA_FUNCS_MORE
#define LA_FUNCS_MORE(X)
#endif

struct nshm_la {
#define LA_FIELD(f) __typeof__(f) *f;
	LA_FUNCS(LA_FIELD)
#undef LA_FIELD
};
extern struct nshm_la nshm_la;

/* 0 once the table is filled (the first call loads), or -ENOTSUP with a
 * message in why (NSHM_WHY_LEN bytes) saying what to install. */
int nshm_la_load(char *why);
struct side;
/* nshm_la_load for a side: 0, or -ENOTSUP recorded as its failure. */
int nshm_la_ready(struct side *s);

#endif

/* Every call below goes through the table (outside the include guard on
 * purpose: the renaming must follow the declarations). */
#ifndef NSHM_ARCHIVE_DL_NO_RENAME
#define archive_entry_copy_pathname (nshm_la.archive_entry_copy_pathname)
#define archive_entry_filetype (nshm_la.archive_entry_filetype)
#define archive_entry_free (nshm_la.archive_entry_free)
#define archive_entry_hardlink (nshm_la.archive_entry_hardlink)
#define archive_entry_linkify (nshm_la.archive_entry_linkify)
#define archive_entry_linkresolver_free (nshm_la.archive_entry_linkresolver_free)
#define archive_entry_linkresolver_new (nshm_la.archive_entry_linkresolver_new)
#define archive_entry_linkresolver_set_strategy (nshm_la.archive_entry_linkresolver_set_strategy)
#define archive_entry_new (nshm_la.archive_entry_new)
#define archive_entry_pathname (nshm_la.archive_entry_pathname)
#define archive_entry_perm (nshm_la.archive_entry_perm)
#define archive_entry_size (nshm_la.archive_entry_size)
#define archive_entry_symlink (nshm_la.archive_entry_symlink)
#define archive_error_string (nshm_la.archive_error_string)
#define archive_format (nshm_la.archive_format)
#define archive_read_data_block (nshm_la.archive_read_data_block)
#define archive_read_disk_descend (nshm_la.archive_read_disk_descend)
#define archive_read_disk_new (nshm_la.archive_read_disk_new)
#define archive_read_disk_open (nshm_la.archive_read_disk_open)
#define archive_read_disk_set_behavior (nshm_la.archive_read_disk_set_behavior)
#define archive_read_disk_set_standard_lookup (nshm_la.archive_read_disk_set_standard_lookup)
#define archive_read_disk_set_symlink_physical (nshm_la.archive_read_disk_set_symlink_physical)
#define archive_read_free (nshm_la.archive_read_free)
#define archive_read_new (nshm_la.archive_read_new)
#define archive_read_next_header (nshm_la.archive_read_next_header)
#define archive_read_next_header2 (nshm_la.archive_read_next_header2)
#define archive_read_open (nshm_la.archive_read_open)
#define archive_read_support_format_tar (nshm_la.archive_read_support_format_tar)
#define archive_set_error (nshm_la.archive_set_error)
#define archive_write_close (nshm_la.archive_write_close)
#define archive_write_data (nshm_la.archive_write_data)
#define archive_write_finish_entry (nshm_la.archive_write_finish_entry)
#define archive_write_free (nshm_la.archive_write_free)
#define archive_write_header (nshm_la.archive_write_header)
#define archive_write_new (nshm_la.archive_write_new)
#define archive_write_open (nshm_la.archive_write_open)
#define archive_write_set_bytes_per_block (nshm_la.archive_write_set_bytes_per_block)
#define archive_write_set_format_pax_restricted (nshm_la.archive_write_set_format_pax_restricted)
#define archive_entry_clear (nshm_la.archive_entry_clear)
#define archive_entry_copy_stat (nshm_la.archive_entry_copy_stat)
#define archive_entry_copy_symlink (nshm_la.archive_entry_copy_symlink)
#define archive_entry_copy_uname (nshm_la.archive_entry_copy_uname)
#define archive_entry_copy_gname (nshm_la.archive_entry_copy_gname)
#define archive_entry_set_size (nshm_la.archive_entry_set_size)
#define archive_entry_sparse_add_entry (nshm_la.archive_entry_sparse_add_entry)
#define archive_entry_mtime (nshm_la.archive_entry_mtime)
#define archive_entry_mtime_nsec (nshm_la.archive_entry_mtime_nsec)
#define archive_entry_mtime_is_set (nshm_la.archive_entry_mtime_is_set)
#define archive_entry_atime (nshm_la.archive_entry_atime)
#define archive_entry_atime_nsec (nshm_la.archive_entry_atime_nsec)
#define archive_entry_atime_is_set (nshm_la.archive_entry_atime_is_set)
#define archive_entry_uid (nshm_la.archive_entry_uid)
#define archive_entry_gid (nshm_la.archive_entry_gid)
#define archive_entry_uname (nshm_la.archive_entry_uname)
#define archive_entry_gname (nshm_la.archive_entry_gname)
#endif
