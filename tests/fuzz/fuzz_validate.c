/* SPDX-License-Identifier: BSD-2-Clause */
/* libFuzzer harness: the checks on values copied out of the region.
 *
 * The input becomes a head snapshot, a layout, an offer snapshot, a
 * request record (through snap_request) and a bare name, each given to
 * its validator; an independent oracle restates what
 * each one must accept, and both directions are asserted: nothing unsafe
 * is accepted, nothing safe is refused. Build and run: tests/fuzz/run.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "input.h"

#define CHECK(c)                                                            \
	do {                                                                \
		if (!(c)) {                                                 \
			fprintf(stderr, "fuzz_validate: %s:%d: invariant failed: %s\n", \
				__FILE__, __LINE__, #c);                    \
			abort();                                            \
		}                                                           \
	} while (0)

/* What a safe single path component is, said again without validate.c. */
static bool name_ok(const char *name, size_t len)
{
	if (len < 1 || len > 255)
		return false;
	if (memchr(name, '\0', len) || name[len] != '\0')
		return false;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '/' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static void check_why(const char *why)
{
	size_t n = strnlen(why, NSHM_WHY_LEN);

	CHECK(n > 0 && n < NSHM_WHY_LEN);
}

static void fuzz_head(struct in *in)
{
	struct head_snap h;
	static struct finding sd;
	char *why = sd.why;
	int rc;

	h.magic = in_u8(in) & 1 ? NSHM_MAGIC : in_u32(in);
	h.version = in_u8(in) & 1 ? NSHM_VERSION : in_u32(in);
	h.owner = in_u64(in);
	h.heartbeat = in_u64(in);
	h.pid = in_u32(in);
	h.pidns = in_u64(in);
	h.boot[0] = in_u64(in);
	h.boot[1] = in_u64(in);
	memset(sd.why, 0xaa, sizeof(sd.why));
	rc = validate_head(&h, &sd);
	CHECK(rc == 1 || rc == 0 || rc == -NSHM_EMAGIC || rc == -NSHM_EVERSION);
	/* No magic: nobody's yet (a claimant may have stored its version). */
	CHECK((rc == 1) == (h.magic == 0));
	CHECK((rc == 0) == (h.magic == NSHM_MAGIC && h.version == NSHM_VERSION));
	if (rc < 0)
		check_why(why);
	(void)head_same_kernel(&h);
}

static void fuzz_layout(struct in *in)
{
	uint8_t sel = in_u8(in);
	uint32_t nslots = sel & 1 ? in_u8(in) % 70 : in_u32(in);
	uint32_t chunk = sel & 2 ? (uint32_t)in_u16(in) * 4096u : in_u32(in);
	size_t size = sel & 4 ? NSHM_DATA_OFF + (size_t)in_u32(in) : (size_t)in_u64(in);
	bool fits_shape = nslots >= 1 && nslots <= NSHM_MAX_SLOTS &&
			  chunk >= NSHM_MIN_CHUNK && chunk <= NSHM_MAX_CHUNK &&
			  chunk % 4096 == 0;
	unsigned __int128 need = (unsigned __int128)nslots * chunk + NSHM_DATA_OFF;
	int rc = validate_layout(nslots, chunk, size);

	CHECK(rc == 0 || rc == -NSHM_EPROTO || rc == -NSHM_ETOOSMALL);
	if (rc == 0) {
		/* An accepted layout fits the region: every slot lies inside. */
		CHECK(fits_shape);
		CHECK(need <= size);
		CHECK((uint64_t)NSHM_DATA_OFF + (uint64_t)(nslots - 1) * chunk + chunk <= size);
	} else {
		CHECK(!fits_shape || need > size);
	}
	CHECK((rc == -NSHM_EPROTO) == !fits_shape);
}

static void fuzz_offer(struct in *in)
{
	struct offer_snap o;
	struct nshm_meta meta;
	static struct finding sd;
	char *why = sd.why;
	uint8_t sel = in_u8(in);
	uint64_t session;
	size_t nl;
	bool expect;
	int rc;

	memset(&o, 0, sizeof(o));
	o.session = in_u64(in);
	o.size = in_u64(in);
	o.flags = sel & 1 ? in_u8(in) & 3 : in_u32(in);
	o.mode = in_u32(in);
	o.mtime_sec = (int64_t)in_u64(in);
	o.mtime_nsec = sel & 2 ? in_u32(in) % 1000000000u : in_u32(in);
	nl = in_u8(in);
	in_bytes(in, o.name, sel & 4 ? nl : sizeof(o.name));
	/* As snap_offer leaves it. */
	o.name[NSHM_NAME_MAX] = '\0';
	o.name_len = sel & 8 ? (uint32_t)strlen(o.name) : sel & 16 ? in_u32(in)
							       : (uint32_t)nl;
	session = sel & 32 ? in_u64(in) : o.session;

	memset(sd.why, 0xaa, sizeof(sd.why));
	memset(&meta, 0xaa, sizeof(meta));
	rc = validate_offer(&o, session, &meta, &sd);
	expect = o.session == session && !(o.flags & ~NSHM_OFFER_FLAGS) &&
		 o.mtime_nsec < 1000000000u && o.name_len <= NSHM_NAME_MAX &&
		 name_ok(o.name, o.name_len);
	CHECK(rc == 0 || rc == -NSHM_EPROTO);
	CHECK((rc == 0) == expect);
	if (rc < 0) {
		check_why(why);
		return;
	}
	/* What the receiver goes on to use. */
	CHECK(strnlen(meta.name, sizeof(meta.name)) < sizeof(meta.name));
	CHECK(strlen(meta.name) == o.name_len);
	CHECK(memcmp(meta.name, o.name, o.name_len) == 0);
	CHECK(name_ok(meta.name, strlen(meta.name)));
	CHECK(!strchr(meta.name, '/'));
	CHECK(strcmp(meta.name, ".") != 0 && strcmp(meta.name, "..") != 0);
	CHECK((meta.mode & ~07777u) == 0);
	CHECK(meta.mtime_nsec < 1000000000u);
	CHECK(meta.size == o.size);
	CHECK(meta.size_known == !!(o.flags & NSHM_OFFER_SIZE_KNOWN));
	CHECK(meta.archive == !!(o.flags & NSHM_OFFER_ARCHIVE));
}

/* A bare name, in a heap block of its exact size so that a read past the
 * terminator is an ASan report. */
static void fuzz_name(struct in *in)
{
	uint8_t sel = in_u8(in);
	size_t len = sel & 1 ? (size_t)in_u64(in) : sel & 2 ? (size_t)in_u16(in) : 0;
	size_t have = in->n;
	char *name = malloc(have + 1);
	int rc;

	in_bytes(in, name, have);
	name[have] = '\0';
	if (!(sel & 3))
		len = strlen(name);
	rc = validate_name(name, len);
	CHECK(rc == 0 || rc == -1);
	/* name_ok reads len + 1 bytes: only where they exist. */
	CHECK((rc == 0) == (len <= have && name_ok(name, len)));
	if (rc == 0) {
		CHECK(len <= NSHM_NAME_MAX && strlen(name) == len);
		CHECK(!strchr(name, '/'));
	}
	free(name);
}

/* What a request path may be, said again without validate.c: no "." or
 * ".." component, no control byte, absolute only when taken under ROOT
 * (not for a push). Only the safe direction is asserted: a stricter
 * receiver is allowed. */
static bool request_path_safe(const char *p, size_t len, bool abs_ok)
{
	if (len == 0 || len > NSHM_REQ_PATH_MAX || strlen(p) != len)
		return false;
	if (p[0] == '/' && !abs_ok)
		return false;
	for (size_t i = 0; i < len;) {
		size_t n = 0;

		while (i + n < len && p[i + n] != '/')
			n++;
		if ((n == 1 && p[i] == '.') || (n == 2 && p[i] == '.' && p[i + 1] == '.'))
			return false;
		for (size_t k = 0; k < n; k++)
			if ((unsigned char)p[i + k] < 0x20 || p[i + k] == 0x7f)
				return false;
		i += n + 1;
	}
	return true;
}

/* The request record (a sender's request to a resident receiver), as it
 * lies in the region, through snap_request (the one copy out) and
 * validate_request. */
static void fuzz_request(struct in *in)
{
	static unsigned char region[NSHM_DATA_OFF];
	struct nshm_region r = { .base = region, .size = sizeof(region) };
	struct request *q = REQUEST(region);
	struct request_snap snap;
	static struct finding sd;
	uint8_t sel = in_u8(in);
	uint64_t session = in_u64(in);
	size_t n;
	int rc;

	memset(q, 0, sizeof(*q));
	atomic_store(&q->session, sel & 1 ? session : in_u64(in));
	atomic_store(&q->kind, sel & 2 ? NSHM_REQ_PUSH_TO + in_u8(in) % 3 : in_u32(in));
	n = sel & 4 ? in_u16(in) % (sizeof(q->path) + 1) : in_u8(in);
	in_bytes(in, (void *)q->path, n);
	/* Whole path buffers with no terminator at all, too. */
	if (sel & 8)
		memset((void *)q->path, 'a', sizeof(q->path));
	atomic_store(&q->path_len, sel & 16 ? (uint32_t)strnlen((const char *)q->path,
							sizeof(q->path)) : in_u32(in));
	snap_request(&r, &snap);
	CHECK(strnlen(snap.path, sizeof(snap.path)) < sizeof(snap.path));
	memset(sd.why, 0xaa, sizeof(sd.why));
	rc = validate_request(&snap, session, &sd);
	CHECK(rc == 0 || rc == -NSHM_EPROTO);
	if (rc < 0) {
		check_why(sd.why);
		return;
	}
	CHECK(snap.session == session);
	CHECK(snap.kind == NSHM_REQ_PUSH_TO || snap.kind == NSHM_REQ_PULL ||
	      snap.kind == NSHM_REQ_REPLY);
	CHECK(snap.path_len == strlen(snap.path));
	CHECK(request_path_safe(snap.path, snap.path_len, snap.kind != NSHM_REQ_PUSH_TO));
}

/* The names of codes, reasons and states: any value gives a string. */
static void fuzz_strings(struct in *in)
{
	uint32_t v = in_u32(in);

	CHECK(nshm_reason_str(v) != NULL);
	CHECK(nshm_tx_state_name(v) != NULL);
	CHECK(nshm_rx_state_name(v) != NULL);
	/* Error codes come from the library, never from the peer: only the
	 * range it returns (negative errno and -NSHM_E*) is exercised. */
	CHECK(nshm_strerror(-(int)(v % (NSHM_ELOST + 2))) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };

	fuzz_head(&in);
	fuzz_layout(&in);
	fuzz_offer(&in);
	fuzz_strings(&in);
	fuzz_request(&in);
	fuzz_name(&in);
	return 0;
}
