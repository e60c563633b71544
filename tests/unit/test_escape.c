/* SPDX-License-Identifier: BSD-2-Clause */
/* nshm_escape: what a peer's name may and may not carry to a terminal. */
#include <string.h>

#include "nshm.h"
#include "tap.h"

static int esc_is(const char *in, unsigned flags, const char *want)
{
	char out[256];

	nshm_escape(out, sizeof(out), in, flags);
	return ok(strcmp(out, want) == 0, "escape \"%s\" -> \"%s\" (want \"%s\")",
		  want, out, want);
}

int main(void)
{
	char small[8];

	esc_is("plain name.txt", 0, "plain name.txt");
	esc_is("a\x1b[2Jb", 0, "a\\x1b[2Jb");
	esc_is("new\nline\ttab\\", 0, "new\\nline\\ttab\\\\");
	esc_is("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0,
	       "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	esc_is("c1\xc2\x9b", 0, "c1\\xc2\\x9b");           /* U+009B, CSI */
	esc_is("bad\xff\xc3", 0, "bad\\xff\\xc3");          /* no UTF-8 */
	esc_is("over\xc0\xaf\xe0\x80\xaf", 0, "over\\xc0\\xaf\\xe0\\x80\\xaf");
	esc_is("sur\xed\xa0\x80", 0, "sur\\xed\\xa0\\x80");  /* a surrogate */
	esc_is("del\x7f", 0, "del\\x7f");
	esc_is("line one\nline \\two\x1b", NSHM_ESCAPE_MESSAGE,
	       "line one\nline \\two\\x1b");
	ok(nshm_escape(small, 5, "ab\x1b" "cd", 0) == 2 &&
	   strcmp(small, "ab") == 0, "an escape that does not fit is left out whole");
	ok(nshm_escape(small, 7, "abcde\xc3\xa9", 0) == 5,
	   "a character that does not fit is left out whole");
	return done_testing();
}
