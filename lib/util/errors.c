/* SPDX-License-Identifier: BSD-2-Clause */
/* Names for codes and states, for messages a person reads. */
#include <errno.h>
#include <string.h>

#include "util.h"

const char *nshm_strerror(int err)
{
	static const char *const own[] = {
		[NSHM_ENOENDPOINT - NSHM_EBASE] = "no such region",
		[NSHM_ENODEVICE - NSHM_EBASE] = "no ivshmem device",
		[NSHM_EMANYDEVICES - NSHM_EBASE] = "several ivshmem devices",
		[NSHM_ETOOSMALL - NSHM_EBASE] = "region too small",
		[NSHM_EMAGIC - NSHM_EBASE] = "region does not hold nshm's header",
		[NSHM_EVERSION - NSHM_EBASE] = "peer speaks another protocol version",
		[NSHM_EBUSY - NSHM_EBASE] = "region busy",
		[NSHM_EREFUSED - NSHM_EBASE] = "refused by the receiver",
		[NSHM_EPEERGONE - NSHM_EBASE] = "peer went away",
		[NSHM_EPEERABORT - NSHM_EBASE] = "peer aborted",
		[NSHM_ECHECKSUM - NSHM_EBASE] = "checksum mismatch",
		[NSHM_EPROTO - NSHM_EBASE] = "peer broke the protocol",
		[NSHM_EPEERFAIL - NSHM_EBASE] = "receiver failed",
		[NSHM_ELOST - NSHM_EBASE] = "lost the region to another process",
	};
	int e = err < 0 ? -err : err;

	if (e > NSHM_EBASE && e - NSHM_EBASE < (int)(sizeof(own) / sizeof(own[0])) &&
	    own[e - NSHM_EBASE])
		return own[e - NSHM_EBASE];
	return strerror(e);
}

const char *nshm_reason_str(uint32_t reason)
{
	static const char *const names[NSHM_R_MAX] = {
		[NSHM_R_NONE] = "no reason given",
		[NSHM_R_EXISTS] = "the destination exists (use --force to replace it)",
		[NSHM_R_BADNAME] = "the file name is not safe",
		[NSHM_R_PROTO] = "protocol error",
		[NSHM_R_IO] = "I/O error",
		[NSHM_R_NOSPACE] = "no space left at the destination",
		[NSHM_R_CHECKSUM] = "checksum mismatch",
		[NSHM_R_CANCELED] = "interrupted",
		[NSHM_R_PERM] = "permission denied at the destination",
		[NSHM_R_TIMEOUT] = "the peer stopped responding",
		[NSHM_R_UNSUPPORTED] = "the receiver cannot take this kind of stream",
		[NSHM_R_NOPULL] = "the receiver does not serve pulls (see --allow-pull)",
		[NSHM_R_NOTFOUND] = "no such file or directory there",
	};

	return reason < NSHM_R_MAX ? names[reason] : "unknown reason";
}

/* The two state names are a deliberate mirror (one table per line). */
const char *nshm_tx_state_name(uint32_t s)
{
	static const char *const n[] = { "idle", "offering", "ended", "aborted" };

	return s < sizeof(n) / sizeof(n[0]) ? n[s] : "invalid";
}

const char *nshm_rx_state_name(uint32_t s)
{
	static const char *const n[] = { "idle", "ready", "receiving", "refused",
					 "done", "failed", "aborted" };

	return s < sizeof(n) / sizeof(n[0]) ? n[s] : "invalid";
}

uint32_t nshm_errno_reason(int err, uint32_t otherwise)
{
	switch (err) {
	case EEXIST:
		return NSHM_R_EXISTS;
	case ENOSPC: case EDQUOT:
		return NSHM_R_NOSPACE;
	case EACCES: case EPERM: case EROFS:
		return NSHM_R_PERM;
	case ENOENT:
		return NSHM_R_NOTFOUND;
	case ENXIO: case ENOSYS:   /* a FIFO without a reader, a kernel without it */
		return NSHM_R_UNSUPPORTED;
	case ECANCELED:
		return NSHM_R_CANCELED;
	default:
		return otherwise;
	}
}

/* Not nshm_errno_reason: its table names what went wrong at the
 * destination (a sender's own ENOENT or ENOSPC is not "not found" or "full"
 * there). Only a user's interruption is worth a reason of its own. */
uint32_t nshm_stop_reason(int rc)
{
	return rc == -ECANCELED ? NSHM_R_CANCELED : NSHM_R_IO;
}
