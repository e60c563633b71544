/* SPDX-License-Identifier: BSD-2-Clause */
/* nshm_sha256 against FIPS 180-4's examples and sha256sum's answers. */
#include <stdio.h>
#include <string.h>

#include "util/util.h"
#include "tap.h"

static void hex(const unsigned char d[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The digest of len bytes of msg, fed in pieces of step bytes. */
static void digest(const void *msg, size_t len, size_t step, char out[65])
{
	struct nshm_sha256 s;
	unsigned char d[32];

	nshm_sha256_init(&s);
	for (size_t off = 0; off < len; off += step)
		nshm_sha256_update(&s, (const char *)msg + off, len - off < step ? len - off : step);
	nshm_sha256_final(&s, d);
	hex(d, out);
}

int main(void)
{
	static unsigned char million[1000000];
	char got[65];
	const char *abc2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

	digest("", 0, 1, got);
	ok(!strcmp(got, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
	   "empty: %s", got);
	digest("abc", 3, 3, got);
	ok(!strcmp(got, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
	   "abc: %s", got);
	digest(abc2, strlen(abc2), 7, got);
	ok(!strcmp(got, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
	   "two blocks, fed in pieces of 7: %s", got);
	memset(million, 'a', sizeof(million));
	digest(million, sizeof(million), 4093, got);
	ok(!strcmp(got, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
	   "a million 'a' in odd pieces: %s", got);
	digest(million, 55, 55, got);
	ok(!strcmp(got, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"),
	   "55 bytes (padding in one block): %s", got);
	digest(million, 56, 56, got);
	ok(!strcmp(got, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"),
	   "56 bytes (padding spills over): %s", got);
	return done_testing();
}
