/* SPDX-License-Identifier: BSD-2-Clause */
/* Validation of values copied out of the region. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "proto/proto.h"
#include "tap.h"

static struct offer_snap good_offer(void)
{
	struct offer_snap o;

	memset(&o, 0, sizeof(o));
	o.session = 7;
	o.size = 100;
	o.flags = NSHM_OFFER_SIZE_KNOWN;
	o.mode = 0100644;
	o.mtime_sec = 1700000000;
	strcpy(o.name, "file.iso");
	o.name_len = 8;
	return o;
}

/* The offsets man/nshm.7 documents. */
static void documented_offsets(void)
{
	ok(offsetof(struct line_head, owner) == 8 && offsetof(struct line_head, heartbeat) == 16 &&
	   offsetof(struct line_head, id) + offsetof(struct owner_id, pid) == 24 &&
	   offsetof(struct line_head, id) + offsetof(struct owner_id, pidns) == 32 &&
	   offsetof(struct line_head, id) + offsetof(struct owner_id, boot) == 40 &&
	   sizeof(struct line_head) == 56, "head layout as documented");
	ok(offsetof(struct tx_line, session) == 56 && offsetof(struct tx_line, state) == 72 &&
	   offsetof(struct tx_line, produced) == 80 && offsetof(struct tx_line, nslots) == 88 &&
	   offsetof(struct tx_line, chunk) == 92 && offsetof(struct tx_line, total_len) == 96 &&
	   offsetof(struct tx_line, total_crc) == 104, "sender line as documented");
	ok(offsetof(struct rx_line, ready) == 56 && offsetof(struct rx_line, session) == 64 &&
	   offsetof(struct rx_line, state) == 72 && offsetof(struct rx_line, consumed) == 80 &&
	   offsetof(struct rx_line, bytes) == 88, "receiver line as documented");
	ok(offsetof(struct offer, size) == 8 && offsetof(struct offer, flags) == 16 &&
	   offsetof(struct offer, mtime_sec) == 24 && offsetof(struct offer, name_len) == 36 &&
	   offsetof(struct offer, name) == 40 && sizeof(struct slot_desc) == 16,
	   "offer and descriptors as documented");
}

int main(void)
{
	documented_offsets();
	struct finding sd = { 0 };
	char *why = sd.why;   /* what the validators say */
	struct head_snap h;
	struct offer_snap o;
	struct nshm_meta m;
	const char *bad[] = { "", ".", "..", "a/b", "/abs", "x\ny", "tab\there", "del\x7f" };
	const char *goodn[] = { "a", "...", "with space", "caf\xc3\xa9", ".hidden", "-dash" };

	/* Layout */
	ok(validate_layout(2, 4096, NSHM_DATA_OFF + 2 * 4096) == 0, "exact fit");
	ok(validate_layout(2, 4096, NSHM_DATA_OFF + 2 * 4096 - 1) == -NSHM_ETOOSMALL,
	   "one byte short is too small");
	ok(validate_layout(0, 4096, 1 << 20) == -NSHM_EPROTO, "zero slots");
	ok(validate_layout(65, 4096, 1u << 30) == -NSHM_EPROTO, "65 slots");
	ok(validate_layout(2, 4095, 1 << 20) == -NSHM_EPROTO, "chunk not page multiple");
	ok(validate_layout(2, 0, 1 << 20) == -NSHM_EPROTO, "zero chunk");
	ok(validate_layout(64, NSHM_MAX_CHUNK, SIZE_MAX) == 0, "largest layout, no overflow");
	ok(validate_layout(2, 0xfffff000u, 1u << 30) == -NSHM_EPROTO, "huge chunk refused");

	/* Names */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(validate_name(bad[i], strlen(bad[i])) != 0, "name '%s' refused", bad[i]);
	for (size_t i = 0; i < sizeof(goodn) / sizeof(goodn[0]); i++)
		ok(validate_name(goodn[i], strlen(goodn[i])) == 0, "name '%s' taken", goodn[i]);
	ok(validate_name("ab", 3) != 0, "length past the NUL refused");

	/* Heads */
	memset(&h, 0, sizeof(h));
	ok(validate_head(&h, &sd) == 1, "all-zero head is a fresh region");
	h.version = NSHM_VERSION;
	ok(validate_head(&h, &sd) == 1, "a version without magic yet: a claimant mid-way");
	h.magic = 0xdeadbeef;
	ok(validate_head(&h, &sd) == -NSHM_EMAGIC, "foreign magic");
	h.magic = NSHM_MAGIC;
	h.version = NSHM_VERSION + 1;
	{
		char theirs[32], ours[32];

		snprintf(theirs, sizeof(theirs), "version %u", NSHM_VERSION + 1);
		snprintf(ours, sizeof(ours), "version %u", NSHM_VERSION);
		ok(validate_head(&h, &sd) == -NSHM_EVERSION && strstr(why, theirs) &&
		   strstr(why, ours), "newer version named: %s", why);
	}
	h.version = NSHM_VERSION;
	ok(validate_head(&h, &sd) == 0, "our head");

	/* Offers */
	o = good_offer();
	ok(validate_offer(&o, 7, &m, &sd) == 0 && strcmp(m.name, "file.iso") == 0 &&
	   m.size == 100 && m.size_known && m.mode == 0644, "good offer");
	o = good_offer();
	ok(validate_offer(&o, 8, &m, &sd) == -NSHM_EPROTO, "session mismatch");
	o = good_offer();
	o.flags = 0x80;
	ok(validate_offer(&o, 7, &m, &sd) == -NSHM_EPROTO, "unknown flags");
	o = good_offer();
	o.name_len = 300;
	ok(validate_offer(&o, 7, &m, &sd) == -NSHM_EPROTO, "name length beyond the field");
	o = good_offer();
	strcpy(o.name, "../../etc/passwd");
	o.name_len = (uint32_t)strlen(o.name);
	ok(validate_offer(&o, 7, &m, &sd) == -NSHM_EPROTO, "path in name refused");
	o = good_offer();
	o.mtime_nsec = 1000000000u;
	ok(validate_offer(&o, 7, &m, &sd) == -NSHM_EPROTO, "bad nanoseconds");
	o = good_offer();
	memset(o.name, 'a', sizeof(o.name));
	o.name[NSHM_NAME_MAX] = '\0';
	o.name_len = NSHM_NAME_MAX;
	ok(validate_offer(&o, 7, &m, &sd) == 0 && strlen(m.name) == NSHM_NAME_MAX,
	   "255-byte name taken");
	ok(m.reserved[0] == 0 && m.reserved[6] == 0, "a received meta's reserved fields are zero");

	/* Reserved fields of what a caller passes must be zero. */
	struct nshm_params p = { .slots = 2 };
	ok(nshm_check_params(&p) == 0, "cleared params pass");
	p.reserved[5] = 1;
	ok(nshm_check_params(&p) == -EINVAL, "a nonzero reserved param is refused");
	memset(&m, 0, sizeof(m));
	ok(nshm_check_meta(&m) == 0, "cleared meta passes");
	m.reserved[0] = 1;
	ok(nshm_check_meta(&m) == -EINVAL, "a nonzero reserved meta field is refused");
	return done_testing();
}
