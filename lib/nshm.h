/* SPDX-License-Identifier: BSD-2-Clause */
/* libnshm: file transfer through an ivshmem shared-memory region.
 *
 * One side sends (nshm_tx_*), the other receives (nshm_rx_*); which side is
 * the host and which the guest does not matter. Functions return 0 (or a
 * count) on success and a negative code on failure: -errno for system
 * errors, -NSHM_E* for the protocol's own. nshm_strerror() names either;
 * nshm_tx_why() / nshm_rx_why() give the detail of the last failure.
 * The protocol is specified in nshm(7).
 */
#ifndef NSHM_H
#define NSHM_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Only the functions below are exported from libnshm.so. */
#if defined(NSHM_BUILD_SHARED) && defined(__GNUC__)
#define NSHM_API __attribute__((visibility("default")))
#else
#define NSHM_API
#endif

#define NSHM_LIB_VERSION "0.1.0"
#define NSHM_PROTOCOL_VERSION 2

/* Failures of the protocol's own (returned negated). */
enum nshm_error {
	NSHM_EBASE = 1000,
	NSHM_ENOENDPOINT,   /* the shm object or file does not exist */
	NSHM_ENODEVICE,     /* no ivshmem device on PCI */
	NSHM_EMANYDEVICES,  /* several ivshmem devices: name one */
	NSHM_ETOOSMALL,     /* region too small for the chosen slots */
	NSHM_EMAGIC,        /* the region holds something that is not nshm */
	NSHM_EVERSION,      /* the peer speaks another protocol version */
	NSHM_EBUSY,         /* a live process already holds this side */
	NSHM_EREFUSED,      /* the receiver refused the offer */
	NSHM_EPEERGONE,     /* the peer died or stopped responding */
	NSHM_EPEERABORT,    /* the peer aborted the transfer */
	NSHM_ECHECKSUM,     /* data did not match its checksum */
	NSHM_EPROTO,        /* the peer broke the protocol */
	NSHM_EPEERFAIL,     /* the receiver could not store the data */
	NSHM_ELOST,         /* another process took this side over */
};

/* Reasons carried in the region with a refusal, failure or abort. */
enum nshm_reason {
	NSHM_R_NONE = 0,
	NSHM_R_EXISTS,      /* destination exists and --force was not given */
	NSHM_R_BADNAME,     /* the offered name is not a safe file name */
	NSHM_R_PROTO,       /* the peer's values did not validate */
	NSHM_R_IO,          /* a read or write failed */
	NSHM_R_NOSPACE,     /* the destination is full */
	NSHM_R_CHECKSUM,    /* a checksum did not match */
	NSHM_R_CANCELED,    /* interrupted by the user */
	NSHM_R_PERM,        /* permission denied at the destination */
	NSHM_R_TIMEOUT,     /* the peer stopped responding */
	NSHM_R_UNSUPPORTED, /* the receiver cannot take this kind of stream */
	NSHM_R_NOPULL,      /* the receiver does not serve pulls (--allow-pull) */
	NSHM_R_NOTFOUND,    /* what was asked for does not exist */
	NSHM_R_MAX
};

/* Flags for nshm_open(). */
#define NSHM_MAP_WC 0x1u    /* pci endpoints: write-combining (resource2_wc) */
#define NSHM_MAP_UC 0x2u    /* pci endpoints: uncached-minus (resource2) */
#define NSHM_MAP_WB 0x4u    /* pci endpoints: write-back; without the guest
			     * module through /dev/mem (root; carves the MTRRs) */
/* Neither: through the guest module's /dev/nshmN when it is bound
 * (write-back where it can be had), else resource2. */

struct nshm_region;

/* Open and map ENDPOINT: "NAME" (POSIX shm object /NAME), a path with '/',
 * "pci" (the only ivshmem device) or "pci:DDDD:BB:DD.F". On failure a
 * message for a person is left in msg (which may be NULL). */
NSHM_API int nshm_open(struct nshm_region **out, const char *endpoint, unsigned flags,
	      char *msg, size_t msglen);
NSHM_API void nshm_close(struct nshm_region *r);
NSHM_API size_t nshm_region_size(const struct nshm_region *r);
NSHM_API const char *nshm_region_path(const struct nshm_region *r);
/* How the region is mapped, e.g. "write-back (/dev/nshm0, module)",
 * "uncached-minus (resource2)", "shared file". */
NSHM_API const char *nshm_region_mapping(const struct nshm_region *r);
/* How the peer wakes this side: "MSI-X (/dev/nshm0)", "eventfd
 * (nshm-server)" or "polling". */
NSHM_API const char *nshm_region_doorbell(const struct nshm_region *r);

/* The structs below end in reserved fields so that fields can be added
 * before 1.0 without changing their size: a program built before a field
 * existed leaves it zero, which means "the default" or "nothing". Clear a
 * struct the library reads (= { 0 } or memset) before filling it in. */

/* Tuning and hooks shared by both sides; zero fields take defaults. */
struct nshm_params {
	unsigned slots;          /* sender: slot count (default 2) */
	size_t chunk;            /* sender: chunk size (default 2 MiB, fitted) */
	int64_t timeout_ms;      /* wait for the peer to appear; 0 = forever */
	int64_t peer_timeout_ms; /* peer silent this long fails (default 15 s) */
	volatile sig_atomic_t *cancel; /* nonzero: stop waiting, abort */
	void (*waiting)(void *arg, const char *what); /* a wait goes on */
	void (*progress)(void *arg, uint64_t done, uint64_t total);
	void *arg;
	/* receiver: fail a stream that would write more than this; 0 = no
	 * limit (nshm-get --max-bytes) */
	uint64_t max_bytes;
	uint32_t flags;          /* NSHM_P_* */
	uint32_t reserved32;     /* zero */
	uint64_t reserved[6];    /* zero */
};
/* nshm_params.flags */
#define NSHM_P_WAIT_BUSY 0x1u  /* a live holder of our side: wait (up to
				  timeout_ms) for it to let go, not -NSHM_EBUSY */
#define NSHM_P_DIGEST 0x2u     /* compute the stream's SHA-256 (nshm_*_digest) */

/* What the sender offers. size is meaningful only with size_known. */
struct nshm_meta {
	char name[256];
	uint64_t size;
	int size_known;
	int archive;             /* a pax archive stream, not one file */
	uint32_t mode;           /* permission bits (07777) */
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	/* Protocol 2: what the sender asks of a resident receiver, and the
	 * path that goes with it (at most NSHM_REQ_PATH_MAX bytes). Received,
	 * path points into the nshm_rx and lives as long as it. */
	uint32_t request;        /* NSHM_REQ_*, 0 = none */
	const char *path;
	uint64_t reserved[7];    /* zero */
};
#define NSHM_REQ_PATH_MAX 1024
/* The layout a sender may choose: slots of a chunk each. A receiver holds
 * one chunk in private memory, so NSHM_MAX_CHUNK bounds what a sender can
 * make it allocate. */
#define NSHM_MAX_SLOTS 64u
#define NSHM_MIN_CHUNK 4096u
#define NSHM_MAX_CHUNK (64u << 20)
enum nshm_request {
	NSHM_REQ_NONE = 0,
	NSHM_REQ_PUSH_TO = 1,    /* place the stream under DEST/path */
	NSHM_REQ_PULL = 2,       /* send me path (nothing follows this offer) */
	NSHM_REQ_REPLY = 3,      /* this stream answers a pull of path */
};

struct nshm_tx;
/* Claim the sending side, wait for a receiver, offer meta, wait for the
 * answer. -NSHM_EREFUSED carries the reason in nshm_tx_reason(). */
NSHM_API int nshm_tx_begin(struct nshm_region *r, const struct nshm_meta *meta,
		  const struct nshm_params *p, struct nshm_tx **out);
/* Send the rest of fd, checksummed in private pieces, then copied in. */
NSHM_API int nshm_tx_from_fd(struct nshm_tx *tx, int fd);
/* Send len bytes from buf (copied into the slots). */
NSHM_API int nshm_tx_write(struct nshm_tx *tx, const void *buf, size_t len);
/* End the stream and wait until the receiver has verified and stored it. */
NSHM_API int nshm_tx_end(struct nshm_tx *tx);
/* Abort (if not ended), release the sending side and free tx. */
NSHM_API void nshm_tx_close(struct nshm_tx *tx, enum nshm_reason why);
NSHM_API uint64_t nshm_tx_bytes(const struct nshm_tx *tx);
NSHM_API uint32_t nshm_tx_crc(const struct nshm_tx *tx);
NSHM_API uint32_t nshm_tx_reason(const struct nshm_tx *tx);
NSHM_API const char *nshm_tx_why(const struct nshm_tx *tx);
/* With NSHM_P_DIGEST, after nshm_tx_end: SHA-256 of the stream sent. */
NSHM_API int nshm_tx_digest(struct nshm_tx *tx, unsigned char out[32]);

struct nshm_rx;
/* Claim the receiving side, announce readiness, wait for a valid offer. */
NSHM_API int nshm_rx_begin(struct nshm_region *r, const struct nshm_params *p,
		  struct nshm_rx **out, struct nshm_meta *meta);
NSHM_API int nshm_rx_accept(struct nshm_rx *rx);
NSHM_API int nshm_rx_refuse(struct nshm_rx *rx, enum nshm_reason why);
/* Next verified chunk, in private memory valid until the next call;
 * returns its length, 0 at the verified end of the stream, or < 0. */
NSHM_API ssize_t nshm_rx_chunk(struct nshm_rx *rx, const void **buf);
/* Receive the whole stream into fd; 0 once it is written and verified. */
NSHM_API int nshm_rx_to_fd(struct nshm_rx *rx, int fd);
/* Tell the sender the outcome after the data is stored under its final
 * name (ok) or not (reason). */
NSHM_API int nshm_rx_complete(struct nshm_rx *rx, int ok, enum nshm_reason why);
/* Abort (if not completed), release the receiving side and free rx. */
NSHM_API void nshm_rx_close(struct nshm_rx *rx, enum nshm_reason why);
NSHM_API uint64_t nshm_rx_bytes(const struct nshm_rx *rx);
NSHM_API uint32_t nshm_rx_crc(const struct nshm_rx *rx);
NSHM_API uint32_t nshm_rx_reason(const struct nshm_rx *rx);
NSHM_API const char *nshm_rx_why(const struct nshm_rx *rx);
/* With NSHM_P_DIGEST, at the verified end: SHA-256 of the stream. */
NSHM_API int nshm_rx_digest(struct nshm_rx *rx, unsigned char out[32]);

/* Several files or directory trees, sent as one pax archive (libarchive)
 * and extracted under a directory on the other side. */
struct nshm_tree_stats {
	uint64_t entries;        /* files, directories, links */
	uint64_t bytes;          /* regular files' data bytes */
	uint64_t reserved[4];    /* zero */
};
typedef void (*nshm_entry_fn)(void *arg, const char *name);
/* Walk paths without following symlinks: what nshm_tx_tree will send. */
NSHM_API int nshm_tree_measure(char *const paths[], int n, struct nshm_tree_stats *st);
/* Send paths (files, directories, symlinks, hard links, holes) after an
 * offer made with meta.archive set. Each entry's name is its path from
 * the argument's last component: "a/b/dir" sends "dir/...". */
NSHM_API int nshm_tx_tree(struct nshm_tx *tx, char *const paths[], int n,
			  nshm_entry_fn entry, void *arg, struct nshm_tree_stats *sent);

#define NSHM_EXTRACT_FORCE 0x1u  /* replace existing files */
#define NSHM_EXTRACT_OWNER 0x2u  /* restore owners (root only) */
/* Extract an archive stream under destdir; no entry lands outside it. A
 * failure removes the entry in progress and keeps those completed. An offer
 * not answered yet is accepted, or refused (NSHM_R_UNSUPPORTED, -ENOTSUP)
 * where libarchive cannot be loaded. */
NSHM_API int nshm_rx_tree(struct nshm_rx *rx, const char *destdir, unsigned flags,
			  nshm_entry_fn entry, void *arg, struct nshm_tree_stats *got);

/* What a region holds right now (nshm-stat). */
struct nshm_side_stat {
	int present;             /* the line carries nshm's magic */
	uint32_t version;
	int claimed;
	uint32_t pid;            /* as the owner wrote it */
	int same_host;           /* owner runs on this kernel */
	int alive;               /* -1 unknown, 0 dead, 1 alive */
	uint32_t state;
	uint32_t reason;
	uint64_t heartbeat;
	uint32_t bell;           /* its doorbell: ivshmem peer ID + 1, 0 none */
	uint32_t asleep;         /* idle, it sleeps until rung and beats only
				    when rung (nshm(7), DOORBELLS) */
	uint64_t reserved[3];    /* zero */
};
struct nshm_stat {
	size_t size;
	struct nshm_side_stat tx, rx;
	uint64_t session;
	char name[256];
	uint64_t total;          /* offered size, 0 if unknown */
	int size_known, archive;
	uint32_t slots, chunk;
	uint64_t bytes;          /* received so far */
	uint64_t rate;           /* bytes/s over the sampling interval */
	uint64_t reserved[8];    /* zero */
};
/* Sample the region twice, interval_ms apart, to judge heartbeats. */
NSHM_API int nshm_stat(struct nshm_region *r, struct nshm_stat *st, int interval_ms);
NSHM_API const char *nshm_tx_state_name(uint32_t state);
NSHM_API const char *nshm_rx_state_name(uint32_t state);

/* Escape a name from the peer for a terminal or a log, like `ls -b`:
 * control bytes, bytes that are not UTF-8 of a printable character, and
 * backslashes become C escapes (\x1b, \n, \\). With NSHM_ESCAPE_MESSAGE
 * (a whole message of ours) newlines and backslashes pass. The output is
 * cut at an escape boundary to fit outlen; returns its length. */
#define NSHM_ESCAPE_MESSAGE 0x1u
NSHM_API size_t nshm_escape(char *out, size_t outlen, const char *in, unsigned flags);

NSHM_API const char *nshm_strerror(int err);
NSHM_API const char *nshm_reason_str(uint32_t reason);

/* CRC-32 with zlib's values, ISA-L's speed where built with it. */
NSHM_API uint32_t nshm_crc32(uint32_t crc, const void *buf, size_t len);
NSHM_API uint32_t nshm_crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);
NSHM_API const char *nshm_crc32_impl(void);
/* Use "zlib" or "isa-l" (also "isal"), or NULL, "" or "auto" for the faster
 * on this CPU (the default); for measurements. -EINVAL for another name,
 * -ENOTSUP for isa-l in a build without it. */
NSHM_API int nshm_crc32_use(const char *impl);

#ifdef __cplusplus
}
#endif
#endif
