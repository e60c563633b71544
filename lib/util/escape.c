/* SPDX-License-Identifier: BSD-2-Clause */
/* Names a peer chose reach terminals and logs: escape them like `ls -b`,
 * so that a name cannot clear a screen, move the cursor or forge a line.
 * Printable ASCII and valid UTF-8 of printable code points pass; every
 * other byte becomes \xNN (C1 controls too: U+0080..U+009F encoded in
 * UTF-8 act as CSI and friends on some terminals). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* Length of a valid UTF-8 sequence at s for a code point >= U+00A0 that
 * is not a surrogate, else 0. */
static size_t utf8_printable(const unsigned char *s)
{
	uint32_t cp;
	size_t n;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1fu;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07u;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;   /* also stops at the NUL */
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;       /* overlong or out of range */
	if (cp < 0xa0 || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* The escape for byte c, or NULL when it passes as it is. */
static const char *escape_of(unsigned char c, unsigned flags, char buf[5])
{
	bool message = flags & NSHM_ESCAPE_MESSAGE;

	if (c == '\n' && message)
		return NULL;
	if (c == '\\')
		return message ? NULL : "\\\\";
	if (c == '\n')
		return "\\n";
	if (c == '\t')
		return "\\t";
	if (c >= 0x20 && c < 0x7f)
		return NULL;
	snprintf(buf, 5, "\\x%02x", c);
	return buf;
}

size_t nshm_escape(char *out, size_t outlen, const char *in, unsigned flags)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0;

	if (outlen == 0)
		return 0;
	while (*s) {
		char buf[5];
		const char *esc = NULL;
		size_t n = *s >= 0x80 ? utf8_printable(s) : 1;

		if (n == 0) {
			snprintf(buf, sizeof(buf), "\\x%02x", *s);
			esc = buf;
			n = 1;
		} else if (n == 1) {
			esc = escape_of(*s, flags, buf);
		}
		/* Never cut an escape or a character in two. */
		if (esc) {
			size_t len = strlen(esc);

			if (o + len >= outlen)
				break;
			memcpy(out + o, esc, len);
			o += len;
		} else {
			if (o + n >= outlen)
				break;
			memcpy(out + o, s, n);
			o += n;
		}
		s += n;
	}
	out[o] = '\0';
	return o;
}
