/* SPDX-License-Identifier: BSD-2-Clause */
/* curl-get: the libcurl baseline -- download files over HTTP with libcurl.
 *
 *   curl-get [-q] BASEURL DESTDIR [NAME...]
 *
 * Fetches BASEURL/NAME into DESTDIR/basename(NAME) for each NAME (read one per
 * line from stdin when none are given, so 1000 small files need no long
 * command line).  One easy handle is reused for every file, so a server that
 * keeps connections alive is reused too: that is what a real client written
 * against libcurl does, and it keeps the baseline honest for many small files.
 * Exits 0 only if every file came back with HTTP 200 and was written whole.
 * Prints "files bytes seconds" on stdout unless -q.
 *
 * The receive buffer is raised from libcurl's 16 KiB default to 512 KiB:
 * anyone who cares about throughput sets it, and a baseline should not lose
 * to a knob nobody would leave at its default.
 */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct sink {
	int fd;
	long long bytes;
	int failed;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nmemb, left = n;

	while (left) {
		ssize_t w = write(s->fd, p, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			s->failed = errno;
			return 0; /* tells libcurl to abort this transfer */
		}
		p += w;
		left -= (size_t)w;
	}
	s->bytes += (long long)n;
	return n;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fetch(CURL *h, const char *base, const char *destdir, const char *name,
		 long long *total)
{
	char url[8192], path[4096];
	const char *slash = strrchr(name, '/');
	const char *leaf = slash ? slash + 1 : name;
	size_t blen = strlen(base);
	struct sink s = { -1, 0, 0 };
	CURLcode rc;
	long code = 0;

	if (snprintf(url, sizeof url, "%s%s%s", base,
		     blen && base[blen - 1] == '/' ? "" : "/", name) >= (int)sizeof url ||
	    snprintf(path, sizeof path, "%s/%s", destdir, leaf) >= (int)sizeof path) {
		fprintf(stderr, "curl-get: name too long: %s\n", name);
		return -1;
	}
	s.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (s.fd < 0) {
		fprintf(stderr, "curl-get: %s: %s\n", path, strerror(errno));
		return -1;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (close(s.fd) != 0 && !s.failed)
		s.failed = errno;
	if (rc != CURLE_OK || code != 200 || s.failed) {
		fprintf(stderr, "curl-get: %s: %s (HTTP %ld)%s%s\n", url,
			curl_easy_strerror(rc), code, s.failed ? ": " : "",
			s.failed ? strerror(s.failed) : "");
		return -1;
	}
	*total += s.bytes;
	return 0;
}

int main(int argc, char **argv)
{
	int quiet = 0, argi = 1, files = 0, bad = 0;
	long long total = 0;
	const char *base, *destdir;
	double t0;
	CURL *h;

	if (argi < argc && strcmp(argv[argi], "-q") == 0) {
		quiet = 1;
		argi++;
	}
	if (argc - argi < 2) {
		fputs("usage: curl-get [-q] BASEURL DESTDIR [NAME...]\n", stderr);
		return 2;
	}
	base = argv[argi++];
	destdir = argv[argi++];

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(h = curl_easy_init())) {
		fputs("curl-get: libcurl init failed\n", stderr);
		return 1;
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* The benchmark never uses a proxy; an inherited http_proxy must not
	 * send traffic anywhere but the loopback server. */
	curl_easy_setopt(h, CURLOPT_PROXY, "");

	t0 = now();
	if (argi < argc) {
		for (; argi < argc; argi++, files++)
			bad |= fetch(h, base, destdir, argv[argi], &total);
	} else {
		char line[4096];

		while (fgets(line, sizeof line, stdin)) {
			line[strcspn(line, "\r\n")] = '\0';
			if (!*line)
				continue;
			bad |= fetch(h, base, destdir, line, &total);
			files++;
		}
	}
	if (!quiet)
		printf("%d %lld %.6f\n", files, total, now() - t0);
	curl_easy_cleanup(h);
	curl_global_cleanup();
	return bad ? 1 : 0;
}
