/* SPDX-License-Identifier: BSD-2-Clause */
/* sendbuf: send a buffer through an nshm region with nothing but the
 * installed public header and library (tests/install.bats builds it with
 * `pkg-config --cflags --libs nshm` against a DESTDIR tree).
 *
 * usage: sendbuf ENDPOINT NAME SIZE COPY
 * Makes SIZE bytes of a fixed pseudo-random pattern, writes them to the
 * file COPY (for the test to compare) and sends them as NAME, mode 0640,
 * mtime 1234567890, in pieces of odd sizes. Exit 0 once the receiver has
 * verified and stored them. */
#include <nshm.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct nshm_params p;
	struct nshm_meta m;
	struct nshm_region *r = NULL;
	struct nshm_tx *tx = NULL;
	unsigned char *buf;
	unsigned long long size;
	uint64_t x = 0x9e3779b97f4a7c15u;
	char msg[1024], *end;
	size_t off, piece;
	FILE *f;
	int rc;

	if (argc != 5) {
		fprintf(stderr, "usage: sendbuf ENDPOINT NAME SIZE COPY\n");
		return 2;
	}
	size = strtoull(argv[3], &end, 10);
	if (*end || strlen(argv[2]) >= sizeof(m.name))
		return 2;
	buf = malloc(size ? size : 1);
	if (!buf)
		return 1;
	for (off = 0; off < size; off++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[off] = (unsigned char)(x >> 24);
	}
	f = fopen(argv[4], "wb");
	if (!f || fwrite(buf, 1, size, f) != size || fclose(f) != 0) {
		perror(argv[4]);
		return 1;
	}

	rc = nshm_open(&r, argv[1], 0, msg, sizeof(msg));
	if (rc < 0) {
		fprintf(stderr, "sendbuf: %s (%s)\n", msg, nshm_strerror(rc));
		return 3;
	}
	memset(&p, 0, sizeof(p));
	p.timeout_ms = 20000;
	memset(&m, 0, sizeof(m));
	strcpy(m.name, argv[2]);
	m.size = size;
	m.size_known = 1;
	m.mode = 0640;
	m.mtime_sec = 1234567890;

	rc = nshm_tx_begin(r, &m, &p, &tx);
	/* Pieces that straddle the slots: 3, 9, 27, ... bytes, up to 1 MiB. */
	for (off = 0, piece = 1; rc == 0 && off < size; off += piece) {
		piece = piece * 3 > (1u << 20) ? 1u << 20 : piece * 3;
		if (piece > size - off)
			piece = size - off;
		rc = nshm_tx_write(tx, buf + off, piece);
	}
	if (rc == 0)
		rc = nshm_tx_end(tx);
	if (rc == 0 && nshm_tx_bytes(tx) != size) {
		fprintf(stderr, "sendbuf: sent %llu bytes of %llu\n",
			(unsigned long long)nshm_tx_bytes(tx), size);
		rc = -1;
	}
	if (rc == 0 && nshm_tx_crc(tx) != nshm_crc32(0, buf, size)) {
		fprintf(stderr, "sendbuf: CRC-32 differs\n");
		rc = -1;
	}
	if (rc < 0 && rc != -1)
		fprintf(stderr, "sendbuf: %s\n", tx && *nshm_tx_why(tx) ? nshm_tx_why(tx)
									: nshm_strerror(rc));
	nshm_tx_close(tx, NSHM_R_IO);
	nshm_close(r);
	free(buf);
	return rc == 0 ? 0 : 1;
}
