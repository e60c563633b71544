/* SPDX-License-Identifier: BSD-2-Clause */
/* Where nshm-server's sockets are: the server makes them, the doorbell
 * client (and nshm-stat) finds them there. */
#include "util.h"

/* Fixed, never from the environment (this runs as root: a variable must
 * not move a root process's sockets). */
const char *nshm_run_dir(void)
{
	return NSHM_RUN_DIR;
}
