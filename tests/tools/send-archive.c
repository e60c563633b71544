/* SPDX-License-Identifier: BSD-2-Clause */
/* Test tool: sends FILE's bytes as an archive stream, whatever they hold,
 * so tests can feed the receiver crafted (hostile) archives.
 * usage: send-archive FILE ENDPOINT */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "nshm.h"

int main(int argc, char **argv)
{
	struct nshm_region *r;
	struct nshm_tx *tx = NULL;
	struct nshm_meta m = { .archive = 1, .mode = 0644 };
	struct nshm_params p = { .timeout_ms = 20000, .peer_timeout_ms = 5000 };
	char msg[1024];
	int fd, rc;

	if (argc != 3) {
		fprintf(stderr, "usage: send-archive FILE ENDPOINT\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || nshm_open(&r, argv[2], 0, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "send-archive: cannot open %s or %s\n", argv[1], argv[2]);
		return 3;
	}
	strcpy(m.name, "crafted");
	rc = nshm_tx_begin(r, &m, &p, &tx);
	if (rc == 0)
		rc = nshm_tx_from_fd(tx, fd);
	if (rc == 0)
		rc = nshm_tx_end(tx);
	if (rc)
		fprintf(stderr, "send-archive: %s\n", *nshm_tx_why(tx) ? nshm_tx_why(tx)
								 : nshm_strerror(rc));
	nshm_tx_close(tx, NSHM_R_IO);
	nshm_close(r);
	close(fd);
	return rc ? 1 : 0;
}
