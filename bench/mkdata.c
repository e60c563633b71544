/* SPDX-License-Identifier: BSD-2-Clause */
/* mkdata: write incompressible, non-repeating test data fast.
 *
 *   mkdata SIZE [SEED]                 one stream of SIZE bytes on stdout
 *   mkdata -d DIR -n COUNT SIZE [SEED] COUNT files DIR/f00000... of SIZE bytes
 *
 * Why not /dev/urandom: it gives about 0.25 GB/s here, so a 1 GiB source would
 * cost seconds of the 5-minute budget.  Why not a repeated random block: a
 * repeating pattern would let a transfer that reorders or duplicates whole
 * chunks still pass its checksum.  xorshift64* never repeats within any size
 * we use and runs at memory speed.  SIZE takes K, M, G suffixes (powers of 2).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "size.h"

#define BUF (1u << 20)

static uint64_t state;

static uint64_t next(void)
{
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return state * 0x2545F4914F6CDD1DULL;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int emit(int fd, unsigned long long size, unsigned char *buf)
{
	while (size) {
		size_t n = size < BUF ? (size_t)size : BUF;
		size_t i;

		for (i = 0; i + 8 <= n; i += 8) {
			uint64_t x = next();
			memcpy(buf + i, &x, 8);
		}
		if (i < n) {
			uint64_t x = next();
			memcpy(buf + i, &x, n - i);
		}
		if (write_all(fd, buf, n))
			return -1;
		size -= n;
	}
	return 0;
}

static void usage(void)
{
	fputs("usage: mkdata SIZE [SEED]\n"
	      "       mkdata -d DIR -n COUNT SIZE [SEED]\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	unsigned long long count = 0, size, seed = 1, i;
	unsigned char *buf;
	int opt;

	while ((opt = getopt(argc, argv, "d:n:")) != -1) {
		switch (opt) {
		case 'd': dir = optarg; break;
		case 'n':
			if (parse_size(optarg, &count))
				usage();
			break;
		default: usage();
		}
	}
	if (optind >= argc || argc - optind > 2 || (dir != NULL) != (count != 0))
		usage();
	if (parse_size(argv[optind], &size))
		usage();
	if (argc - optind == 2 && parse_size(argv[optind + 1], &seed))
		usage();
	state = seed * 0x9E3779B97F4A7C15ULL + 1; /* never 0: xorshift would stick */

	buf = malloc(BUF);
	if (!buf) {
		perror("mkdata: malloc");
		return 1;
	}
	if (!dir) {
		if (emit(STDOUT_FILENO, size, buf)) {
			perror("mkdata: write");
			return 1;
		}
		return 0;
	}
	for (i = 0; i < count; i++) {
		char path[4096];
		int fd;

		if (snprintf(path, sizeof path, "%s/f%05llu", dir, i) >= (int)sizeof path) {
			fputs("mkdata: path too long\n", stderr);
			return 1;
		}
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || emit(fd, size, buf) || close(fd)) {
			perror(path);
			return 1;
		}
	}
	free(buf);
	return 0;
}
