/* SPDX-License-Identifier: BSD-2-Clause */
/* gbench: micro-measurements of what nshm-get does per byte, meant to run
 * inside a (TCG) guest, side by side in one boot. See README.md here.
 *
 *   gbench cpu [MIB] [REPS]        memcpy, zlib crc32, ISA-L crc32_gzip_refl
 *                                  (dispatched, base, by8 when the CPU has it)
 *   gbench bar PATH [MIB] [REPS]   the receiver's loop on a mapping of PATH
 *                                  (BAR2's resource2 / resource2_wc, or a file)
 *   gbench wait [REPS]             nanosleep / sched_yield / pause / clock costs
 *   gbench time CMD [ARG...]       run CMD, print "wall_s=..." (CLOCK_MONOTONIC)
 *
 * Output: one line per figure, "name value unit", easy to grep and median.
 * Build: cc -O2 -o gbench gbench.c $(pkg-config --libs zlib libisal)
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <isa-l/crc.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmpd);
	return v[n / 2];
}

static void fill(unsigned char *p, size_t n)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < n; i += 8) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		memcpy(p + i, &x, n - i < 8 ? n - i : 8);
	}
}

static volatile uint32_t sink;

typedef uint32_t (*crcfn)(uint32_t, const unsigned char *, size_t);

static uint32_t crc_zlib(uint32_t c, const unsigned char *p, size_t n) { return (uint32_t)crc32(c, p, (uInt)n); }
static uint32_t crc_isal(uint32_t c, const unsigned char *p, size_t n) { return crc32_gzip_refl(c, p, n); }
static uint32_t crc_isal_base(uint32_t c, const unsigned char *p, size_t n) { return crc32_gzip_refl_base(c, (unsigned char *)p, n); }
uint32_t crc32_gzip_refl_by8(uint32_t, const unsigned char *, uint64_t);
static uint32_t crc_isal_by8(uint32_t c, const unsigned char *p, size_t n) { return crc32_gzip_refl_by8(c, p, n); }
static uint32_t crc_none(uint32_t c, const unsigned char *p, size_t n) { (void)p; (void)n; return c; }

static int has_pclmul_sse41(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	return (c & bit_PCLMUL) && (c & bit_SSE4_1);
}

static void cpuflags(void)
{
	unsigned a = 0, b = 0, c = 0, d = 0, b7 = 0, c7 = 0, d7 = 0;

	__get_cpuid(1, &a, &b, &c, &d);
	__get_cpuid_count(7, 0, &a, &b7, &c7, &d7);
	printf("cpuid sse4.1=%d sse4.2=%d pclmul=%d avx=%d avx2=%d erms=%d fsrm=%d avx512f=%d vpclmul=%d\n",
	       !!(c & bit_SSE4_1), !!(c & bit_SSE4_2), !!(c & bit_PCLMUL), !!(c & bit_AVX),
	       !!(b7 & bit_AVX2), !!(b7 & (1u << 9)), !!(d7 & (1u << 4)), !!(b7 & bit_AVX512F),
	       !!(c7 & (1u << 10)));
}

/* MB/s of f over len bytes, median of reps. */
static double rate(const char *name, int reps, size_t len, void (*f)(void *), void *arg)
{
	double v[64];

	if (reps > 64)
		reps = 64;
	f(arg);  /* warm-up: page faults, translation */
	for (int i = 0; i < reps; i++) {
		double t = now();

		f(arg);
		v[i] = len / (now() - t) / 1e6;
	}
	double m = median(v, reps);
	printf("%s %.1f MB/s\n", name, m);
	fflush(stdout);
	return m;
}

struct cpuarg {
	unsigned char *src, *dst;
	size_t len, piece;
	crcfn crc;
};

static void do_memcpy(void *a)
{
	struct cpuarg *c = a;

	for (size_t off = 0; off < c->len; off += c->piece)
		memcpy(c->dst + (c->piece == c->len ? off : 0), c->src + off, c->piece);
}

static void do_crc(void *a)
{
	struct cpuarg *c = a;
	uint32_t v = 0;

	for (size_t off = 0; off < c->len; off += c->piece)
		v = c->crc(v, c->src + off, c->piece);
	sink = v;
}

/* The same small buffer again and again: in-cache speed. */
static void do_crc_hot(void *a)
{
	struct cpuarg *c = a;
	uint32_t v = 0;

	for (size_t off = 0; off < c->len; off += c->piece)
		v = c->crc(v, c->src, c->piece);
	sink = v;
}

static int cmd_cpu(int argc, char **argv)
{
	size_t mib = argc > 2 ? strtoul(argv[2], NULL, 0) : 16;
	int reps = argc > 3 ? atoi(argv[3]) : 5;
	size_t len = mib << 20;
	struct cpuarg c = { 0 };

	cpuflags();
	c.src = aligned_alloc(4096, len);
	c.dst = aligned_alloc(4096, len);
	fill(c.src, len);
	memset(c.dst, 1, len);
	c.len = len;
	/* Check the implementations agree (and that by8 works) first. */
	uint32_t z = crc_zlib(0, c.src, len), i = crc_isal(0, c.src, len), b = crc_isal_base(0, c.src, len);
	printf("check zlib=%08x isal=%08x isal_base=%08x%s\n", z, i, b, z == i && i == b ? "" : " MISMATCH");
	c.piece = len;
	rate("memcpy_16M", reps, len, do_memcpy, &c);
	c.piece = 256 << 10;
	rate("memcpy_256K_pieces", reps, len, do_memcpy, &c);
	struct { const char *name; crcfn f; } impl[] = {
		{ "zlib", crc_zlib }, { "isal", crc_isal }, { "isal_base", crc_isal_base },
		{ "isal_by8", crc_isal_by8 },
	};
	for (unsigned k = 0; k < sizeof(impl) / sizeof(impl[0]); k++) {
		char name[64];

		if (impl[k].f == crc_isal_by8 && !has_pclmul_sse41()) {
			printf("crc_isal_by8_16M n/a (no PCLMULQDQ/SSE4.1)\n");
			continue;
		}
		c.crc = impl[k].f;
		c.piece = len;
		snprintf(name, sizeof(name), "crc_%s_16M", impl[k].name);
		rate(name, reps, len, do_crc, &c);
		c.piece = 256 << 10;
		snprintf(name, sizeof(name), "crc_%s_256K_hot", impl[k].name);
		rate(name, reps, len, do_crc_hot, &c);
	}
	return 0;
}

/* The receiver's loop (lib/proto/rx.c nshm_rx_to_fd) on a mapping: for each
 * piece, copy it out of the mapping, checksum the copy, write() the copy. */
struct bararg {
	const unsigned char *map;
	unsigned char *buf;
	size_t len, piece;
	crcfn crc;
	int copy, write;       /* copy out first; write() at all */
	const char *out;
};

static void do_bar(void *a)
{
	struct bararg *b = a;
	int fd = -1;
	uint32_t v = 0;

	if (b->write) {
		unlink(b->out);
		fd = open(b->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0) { perror(b->out); exit(1); }
	}
	for (size_t off = 0; off < b->len; off += b->piece) {
		const unsigned char *p = b->map + off;

		if (b->copy) {
			memcpy(b->buf, p, b->piece);
			p = b->buf;
		}
		v = b->crc(v, p, b->piece);
		if (fd >= 0) {
			size_t done = 0;

			while (done < b->piece) {
				ssize_t n = write(fd, p + done, b->piece - done);

				if (n < 0) { perror("write"); exit(1); }
				done += (size_t)n;
			}
		}
	}
	sink = v;
	if (fd >= 0)
		close(fd);
}

static int cmd_bar(int argc, char **argv)
{
	const char *path = argv[2];
	size_t mib = argc > 3 ? strtoul(argv[3], NULL, 0) : 64;
	int reps = argc > 4 ? atoi(argv[4]) : 3;
	const char *only = argc > 5 ? argv[5] : NULL;
	int fd = open(path, O_RDWR);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) != 0) { perror(path); return 1; }
	size_t len = (size_t)st.st_size < (mib << 20) ? (size_t)st.st_size : mib << 20;
	unsigned char *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) { perror("mmap"); return 1; }
	close(fd);
	/* A private copy of the same bytes: RAM, for comparison with BAR2. */
	unsigned char *ram = aligned_alloc(4096, len);
	memcpy(ram, map, len);
	unsigned char *buf = aligned_alloc(4096, 16u << 20);
	memset(buf, 0, 16u << 20);
	struct bararg b = { .map = map, .buf = buf, .len = len, .out = "/tmp/gbench.out" };
	struct { const char *name; crcfn f; } impl[] = {
		{ "none", crc_none }, { "zlib", crc_zlib }, { "isal", crc_isal },
	};
	size_t pieces[] = { 64 << 10, 256 << 10, 1 << 20, 4 << 20 };
	char name[96];

	printf("bar_len %zu bytes\n", len);
	/* Just reading it out: memcpy from BAR2 vs from RAM. */
	b.copy = 1; b.crc = crc_none; b.write = 0;
	for (unsigned p = 0; p < 4; p++) {
		b.piece = pieces[p];
		b.map = map;
		snprintf(name, sizeof(name), "copy_bar_%zuK", pieces[p] >> 10);
		if (!only || strstr(name, only)) rate(name, reps, len, do_bar, &b);
		b.map = ram;
		snprintf(name, sizeof(name), "copy_ram_%zuK", pieces[p] >> 10);
		if (!only || strstr(name, only)) rate(name, reps, len, do_bar, &b);
	}
	/* write() straight from the mapping (the vm-recipe note's baseline). */
	b.copy = 0; b.write = 1; b.map = map;
	b.piece = 4 << 20;
	if (!only || strstr("write_bar_4096K", only)) rate("write_bar_4096K", reps, len, do_bar, &b);
	b.piece = 256 << 10;
	if (!only || strstr("write_bar_256K", only)) rate("write_bar_256K", reps, len, do_bar, &b);
	/* The receiver's loop: copy + crc + write, per piece size and crc. */
	b.copy = 1;
	for (unsigned k = 0; k < 3; k++) {
		b.crc = impl[k].f;
		for (unsigned p = 0; p < 4; p++) {
			b.piece = pieces[p];
			snprintf(name, sizeof(name), "rx_%s_%zuK", impl[k].name, pieces[p] >> 10);
			if (!only || strstr(name, only)) rate(name, reps, len, do_bar, &b);
		}
	}
	unlink(b.out);
	return 0;
}

static int cmd_wait(int argc, char **argv)
{
	int reps = argc > 2 ? atoi(argv[2]) : 200;
	long ns[] = { 10000, 20000, 80000, 320000, 1000000 };
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/devices/system/clocksource/clocksource0/current_clocksource");
	if ((f = fopen(path, "r"))) {
		char cs[64] = "";

		if (fgets(cs, sizeof(cs), f))
			cs[strcspn(cs, "\n")] = 0;
		printf("clocksource %s\n", cs);
		fclose(f);
	}
	double t = now();
	for (int i = 0; i < 100000; i++)
		now();
	printf("clock_gettime %.3f us\n", (now() - t) / 100000 * 1e6);
	t = now();
	for (int i = 0; i < 100000; i++)
		__builtin_ia32_pause();
	printf("pause %.3f us\n", (now() - t) / 100000 * 1e6);
	t = now();
	for (int i = 0; i < 20000; i++)
		sched_yield();
	printf("sched_yield %.3f us\n", (now() - t) / 20000 * 1e6);
	t = now();
	for (int i = 0; i < 20000; i++)
		getppid();
	printf("syscall_getppid %.3f us\n", (now() - t) / 20000 * 1e6);
	for (unsigned k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		double v[1000];
		int n = reps > 1000 ? 1000 : reps;

		if (ns[k] >= 320000 && n > 50)
			n = 50;
		for (int i = 0; i < n; i++) {
			struct timespec ts = { 0, ns[k] };
			double t0 = now();

			nanosleep(&ts, NULL);
			v[i] = (now() - t0) * 1e6;
		}
		double m = median(v, n);
		printf("nanosleep_%ldus %.1f us (max %.1f)\n", ns[k] / 1000, m, v[n - 1]);
	}
	return 0;
}

static int cmd_time(int argc, char **argv)
{
	double t = now();
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		execvp(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	fprintf(stderr, "wall_s=%.4f\n", now() - t);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && strcmp(argv[1], "cpu") == 0)
		return cmd_cpu(argc, argv);
	if (argc > 2 && strcmp(argv[1], "bar") == 0)
		return cmd_bar(argc, argv);
	if (argc > 1 && strcmp(argv[1], "wait") == 0)
		return cmd_wait(argc, argv);
	if (argc > 2 && strcmp(argv[1], "time") == 0)
		return cmd_time(argc, argv);
	fprintf(stderr, "usage: gbench cpu|bar PATH|wait|time CMD...\n");
	return 2;
}
