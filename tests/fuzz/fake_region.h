/* SPDX-License-Identifier: BSD-2-Clause */
/* What the protocol harnesses share: a region in a memfd that
 * nshm_open maps through /proc/self/fd/N, the peer's own mapping of it,
 * small waits that keep the fake peer's heartbeat moving, and a capped
 * nshm_sleep_ns (linked with -Wl,--wrap=nshm_sleep_ns) so that joining the
 * library's heartbeat thread costs a millisecond, not up to 50.
 *
 * A harness that defines FAKE_PEER_COROUTINE before including this runs
 * its fake peer (peer_start, peer_finish) without a thread, by default: the
 * peer is a coroutine of the calling thread (on x86-64 a switch of our own
 * without system calls, nshm_fz_switch; elsewhere ucontext), and time is
 * virtual. The library's nshm_sleep_ns advances the clock and hands the
 * peer its turns (once as each sleep begins, so it reacts to what the
 * library just wrote, then every virtual millisecond, so its heartbeat
 * moves), nshm_now_ns reads the virtual clock, and the library's
 * heartbeat thread is not started (the peer never looks at it). Nothing
 * waits for real time: an input costs what its code costs, and the same
 * input always runs the same way. What that cannot find is a race inside
 * a step (the peer writing between two of the library's instructions):
 * NSHM_FUZZ_THREADS=1 runs the peer as a thread in real time, as before.
 * A peer that is the library itself (fuzz_tree's sender) sleeps through
 * the same wrapper: its sleeps hand the turn back; with pe.eager each side
 * also hands it over after a few looks at the clock in a spin (see
 * EAGER_LOOKS); pe_on_clock lets the harness beat the heartbeats that the
 * threads not started would have. fuzz_tree's input costs no thread and
 * no real wait either.
 * The build (tests/fuzz/build.sh) links such a harness with
 * --wrap=nshm_now_ns,--wrap=pthread_create,--wrap=pthread_join,
 * --wrap=sched_yield,--wrap=kill,--wrap=nshm_proc_stat. */
#ifndef NSHM_FUZZ_FAKE_REGION_H
#define NSHM_FUZZ_FAKE_REGION_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "proto/proto.h"

#define FAIL(...)                                                          \
	do {                                                               \
		fprintf(stderr, "%s:%d: invariant failed: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                              \
		fputc('\n', stderr);                                       \
		abort();                                                   \
	} while (0)
#define CHECK(c) do { if (!(c)) FAIL("%s", #c); } while (0)

#define RLX(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)
#define REL(x, v) atomic_store_explicit(&(x), (v), memory_order_release)
#define GET(x)    atomic_load_explicit(&(x), memory_order_acquire)

void __real_nshm_sleep_ns(int64_t ns);
void __wrap_nshm_sleep_ns(int64_t ns);

/* Sleeps in the library are "up to": an early return is allowed. */
static void capped_sleep(int64_t ns)
{
	static int real = -1;

	if (real < 0)
		real = getenv("NSHM_FUZZ_REAL_SLEEP") != NULL;
	if (!real && ns > 1000000)
		ns = 1000000;
	__real_nshm_sleep_ns(ns);
}

#ifdef FAKE_PEER_COROUTINE
#include <pthread.h>
#include <ucontext.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>

#define VMS 1000000ll                   /* a virtual millisecond */

int64_t __real_nshm_now_ns(void);
int64_t __wrap_nshm_now_ns(void);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __real_pthread_join(pthread_t t, void **ret);
int __wrap_pthread_join(pthread_t t, void **ret);

/* The switch between the library and the peer. glibc's swapcontext saves
 * and restores the signal mask (a system call each way), and ASan's
 * interceptor of it re-clears the shadow of the whole target stack at each
 * switch (an mmap and two madvise for a 1 MiB stack): together 90 % of an
 * input's system calls and more than half its CPU. On x86-64 a dozen
 * instructions do the same: push the callee-saved registers and the
 * floating-point control words, swap stack pointers, pop. The signal mask
 * is never changed by anything here, so nothing is lost by not saving it.
 * Elsewhere: ucontext, as before. */
#if defined(__x86_64__) && !defined(NSHM_FUZZ_UCONTEXT)
#define FZ_OWN_SWITCH 1
void nshm_fz_switch(void **save_sp, void *load_sp);
__asm__(".text\n"
	".p2align 4\n"
	".type nshm_fz_switch, @function\n"
	"nshm_fz_switch:\n"
	"\tpushq %rbp\n"
	"\tpushq %rbx\n"
	"\tpushq %r12\n"
	"\tpushq %r13\n"
	"\tpushq %r14\n"
	"\tpushq %r15\n"
	"\tsubq $8, %rsp\n"
	"\tstmxcsr (%rsp)\n"
	"\tfnstcw 4(%rsp)\n"
	"\tmovq %rsp, (%rdi)\n"
	"\tmovq %rsi, %rsp\n"
	"\tldmxcsr (%rsp)\n"
	"\tfldcw 4(%rsp)\n"
	"\taddq $8, %rsp\n"
	"\tpopq %r15\n"
	"\tpopq %r14\n"
	"\tpopq %r13\n"
	"\tpopq %r12\n"
	"\tpopq %rbx\n"
	"\tpopq %rbp\n"
	"\tret\n"
	".size nshm_fz_switch, .-nshm_fz_switch\n");
struct fz_ctx { void *sp; };
#else
struct fz_ctx { ucontext_t uc; };
#endif

static struct {
	bool threads;           /* NSHM_FUZZ_THREADS: the peer is a real thread */
	bool active;            /* an input's library call is running */
	bool in_peer;           /* the peer's code is running (coroutine) */
	bool finished;          /* the peer's function returned */
	bool react;             /* resume the peer as the next sleep begins */
	bool eager;             /* a turn also while a side spins (pe_eager) */
	unsigned looks;         /* clock reads since the last switch */
	int64_t clock, wake;    /* virtual ns; the peer's next turn */
	void (*fn)(void *);
	void *arg;
	pthread_t thread;
	struct fz_ctx lib, peer;
	void *lib_fake_stack, *peer_fake_stack;   /* ASan's fiber records */
	const void *lib_bottom;
	size_t lib_size;
} pe = { .clock = 1000000000ll };

/* The peer's stack, the same for every input. 256 KiB: the deepest peer
 * (fuzz_tree's sender, the real library under ASan) uses far less. */
static char peer_stack[256 << 10] __attribute__((aligned(64)));
static char dummy_thread;               /* the heartbeat thread not started */

static void fz_switch(struct fz_ctx *from, struct fz_ctx *to)
{
#ifdef FZ_OWN_SWITCH
	nshm_fz_switch(&from->sp, to->sp);
#else
	swapcontext(&from->uc, &to->uc);
#endif
}

static void peer_entry(void);

/* A fresh peer context on peer_stack that starts in peer_entry. */
static void fz_make_peer(struct fz_ctx *c)
{
#ifdef FZ_OWN_SWITCH
	/* As nshm_fz_switch leaves it: 8 bytes of control words, six
	 * registers, then the "return address" peer_entry, entered with the
	 * stack as a call leaves it (rsp + 8 a multiple of 16); below that a
	 * zero return address ends any unwinding. */
	uintptr_t top = ((uintptr_t)peer_stack + sizeof(peer_stack)) & ~(uintptr_t)15;
	uint64_t *sp = (uint64_t *)(top - 16);

	sp[1] = 0;
	*--sp = (uint64_t)(uintptr_t)peer_entry;
	sp -= 6;
	memset(sp, 0, 6 * sizeof(*sp));
	*--sp = 0x1f80 | (uint64_t)0x037f << 32;   /* MXCSR, x87 control word */
	c->sp = sp;
#else
	getcontext(&c->uc);
	c->uc.uc_stack.ss_sp = peer_stack;
	c->uc.uc_stack.ss_size = sizeof(peer_stack);
	c->uc.uc_link = NULL;
	makecontext(&c->uc, peer_entry, 0);
#endif
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	if (!pe.threads)
		return pe.clock;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Called whenever the virtual clock moves: a harness whose peer is the
 * real library beats the claims' heartbeats here (fuzz_tree), as the
 * heartbeat threads that are not started would. */
static void (*pe_on_clock)(void);

static void clock_to(int64_t t)
{
	pe.clock = t;
	if (pe_on_clock)
		pe_on_clock();
}

static void peer_yield(int64_t ns);

/* Peer side: back to the library; the next turn after us microseconds
 * (a short pause is a poll: then also as soon as the library sleeps). */
static void pause_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	if (pe.threads) {
		nanosleep(&ts, NULL);
		return;
	}
	if (pe.in_peer)
		peer_yield(us * 1000ll);
}

static void peer_yield(int64_t ns)
{
	pe.react = ns < VMS;
	pe.wake = pe.clock + (ns < VMS ? VMS : ns);
	pe.in_peer = false;
	pe.looks = 0;
	__sanitizer_start_switch_fiber(&pe.peer_fake_stack, pe.lib_bottom, pe.lib_size);
	fz_switch(&pe.peer, &pe.lib);
	__sanitizer_finish_switch_fiber(pe.peer_fake_stack, &pe.lib_bottom, &pe.lib_size);
	pe.in_peer = true;
}

static void peer_entry(void)
{
	__sanitizer_finish_switch_fiber(NULL, &pe.lib_bottom, &pe.lib_size);
	pe.in_peer = true;
	pe.fn(pe.arg);
	pe.in_peer = false;
	pe.finished = true;
	/* NULL: this fiber ends here (it is made anew for the next input). */
	__sanitizer_start_switch_fiber(NULL, pe.lib_bottom, pe.lib_size);
	fz_switch(&pe.peer, &pe.lib);
	abort();
}

/* Library side: give the peer its turn. */
static void peer_turn(void)
{
	if (pe.finished || pe.in_peer)
		return;
	pe.looks = 0;
	__sanitizer_start_switch_fiber(&pe.lib_fake_stack, peer_stack, sizeof(peer_stack));
	fz_switch(&pe.lib, &pe.peer);
	__sanitizer_finish_switch_fiber(pe.lib_fake_stack, NULL, NULL);
}

static void *peer_thread(void *arg)
{
	(void)arg;
	pe.fn(pe.arg);
	return NULL;
}

/* Before the library call: the peer starts at once (its first turn runs
 * up to its first wait). */
static void peer_start(void (*fn)(void *), void *arg)
{
	static int threads = -1;

	if (threads < 0)
		threads = getenv("NSHM_FUZZ_THREADS") != NULL;
	pe.threads = threads;
	pe.fn = fn;
	pe.arg = arg;
	pe.finished = false;
	if (pe.threads) {
		if (__real_pthread_create(&pe.thread, NULL, peer_thread, NULL) != 0)
			abort();
		return;
	}
	/* The last input's peer may have left its frames' redzones
	 * poisoned (ASan's swapcontext interceptor cleared them at every
	 * switch; nshm_fz_switch is not intercepted): clear them once. */
	ASAN_UNPOISON_MEMORY_REGION(peer_stack, sizeof(peer_stack));
	fz_make_peer(&pe.peer);
	pe.active = true;
	pe.react = false;
	pe.wake = pe.clock;
	peer_turn();
}

/* After the library call returned: the peer runs to its end. */
static void peer_finish(void)
{
	if (pe.threads) {
		__real_pthread_join(pe.thread, NULL);
		return;
	}
	for (long i = 0; !pe.finished; i++) {
		if (i > 100000000)
			FAIL("the fake peer did not end (virtual clock %lld ns)", (long long)pe.clock);
		if (pe.wake > pe.clock)
			clock_to(pe.wake);
		peer_turn();
	}
	pe.active = false;
}

/* With pe.eager (a harness whose peer is the library too), the other
 * side also gets its turn after EAGER_LOOKS reads of the clock without a
 * switch: every wait of the library reads the clock once a round, and
 * spins SPINS rounds, then yields YIELDS, before it sleeps (lib/bell.c),
 * all in no virtual time. Two library sides that hand each other the turn
 * only as they sleep spent nine tenths of an input in those rounds. A real
 * peer runs during our spin, so this is one of the orders a thread could
 * take, not a new one. */
#define EAGER_LOOKS 8

int64_t __wrap_nshm_now_ns(void)
{
	if (!pe.active)
		return __real_nshm_now_ns();
	if (pe.eager && ++pe.looks >= EAGER_LOOKS) {
		if (pe.in_peer)
			peer_yield(0);
		else if (pe.react || pe.wake <= pe.clock)
			peer_turn();
	}
	return pe.clock;
}

void __wrap_nshm_sleep_ns(int64_t ns)
{
	int64_t end;

	if (!pe.active) {
		capped_sleep(ns);
		return;
	}
	if (pe.in_peer) {               /* a peer that is the library (fuzz_tree) */
		peer_yield(ns);
		return;
	}
	end = pe.clock + (ns > 1000 ? ns : 1000);
	if (pe.react || pe.wake <= pe.clock)
		peer_turn();
	while (pe.clock < end) {
		int64_t step = end - pe.clock;

		if (step > VMS)
			step = VMS;
		if (!pe.finished && pe.wake > pe.clock && pe.wake - pe.clock < step)
			step = pe.wake - pe.clock;
		clock_to(pe.clock + step);
		if (pe.wake <= pe.clock)
			peer_turn();
	}
}

/* The library's heartbeat thread: only the peer would read the beat, and
 * this peer does not. Other threads (libFuzzer's, the tree harness's
 * sender) start as ever. */
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
	if (pe.active) {
		*t = (pthread_t)(uintptr_t)&dummy_thread;
		return 0;
	}
	return __real_pthread_create(t, a, fn, arg);
}

/* The library's spin phase yields the CPU to a peer that might be about
 * to write; this peer only runs on the library's sleeps, and on a loaded
 * machine each real yield can cost a whole time slice. */
int __real_sched_yield(void);
int __wrap_sched_yield(void);

int __wrap_sched_yield(void)
{
	return pe.active ? 0 : __real_sched_yield();
}

/* The library asks the kernel whether the peer's pid lives at each look;
 * this peer is this process, and the question cost a third of an input's
 * system calls. */
int __real_kill(pid_t pid, int sig);
int __wrap_kill(pid_t pid, int sig);

int __wrap_kill(pid_t pid, int sig)
{
	static pid_t me;

	if (!me)
		me = getpid();
	if (pe.active && sig == 0 && pid == me)
		return 0;
	return __real_kill(pid, sig);
}

/* Whether our own pid still is the process that claimed: the library
 * reads /proc/PID/stat at each look at a same-kernel peer; the peer is
 * this process (fuzz_tree), whose start time does not change. */
int __real_nshm_proc_stat(uint32_t pid, char *state, uint64_t *start);
int __wrap_nshm_proc_stat(uint32_t pid, char *state, uint64_t *start);

int __wrap_nshm_proc_stat(uint32_t pid, char *state, uint64_t *start)
{
	const struct nshm_self *me = nshm_self();

	if (pe.active && pid == me->pid && me->start != 0 && me->proc_ours) {
		*state = 'R';
		*start = me->start;
		return 0;
	}
	return __real_nshm_proc_stat(pid, state, start);
}

int __wrap_pthread_join(pthread_t t, void **ret)
{
	if (t == (pthread_t)(uintptr_t)&dummy_thread)
		return 0;
	return __real_pthread_join(t, ret);
}
#else
void __wrap_nshm_sleep_ns(int64_t ns)
{
	capped_sleep(ns);
}
#endif

/* A futex sleep (bell.c, a polling receiver's wait for an offer) is a
 * sleep here: the fake peer moves only in the sleeps it sees (coroutine),
 * and wakes no futex. "Up to ns" allows the time-out. */
int __wrap_nshm_sleep_on(const void *addr, uint32_t v, int64_t ns);
int __wrap_nshm_sleep_on(const void *addr, uint32_t v, int64_t ns)
{
	(void)addr;
	(void)v;
	__wrap_nshm_sleep_ns(ns);
	return -ETIMEDOUT;
}

static int region_fd = -1;
static char region_path[64];

/* A fresh, zeroed region of size bytes; returns the peer's mapping. */
static unsigned char *region_new(size_t size)
{
	void *p;

	if (region_fd < 0) {
		region_fd = memfd_create("nshm-fuzz", MFD_CLOEXEC);
		if (region_fd < 0) {
			perror("memfd_create");
			abort();
		}
		snprintf(region_path, sizeof(region_path), "/proc/self/fd/%d", region_fd);
	}
	if (ftruncate(region_fd, 0) != 0 || ftruncate(region_fd, (off_t)size) != 0) {
		perror("ftruncate");
		abort();
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, region_fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		abort();
	}
	return p;
}

static struct nshm_region *region_open(void)
{
	struct nshm_region *r;
	char msg[256];

	if (nshm_open(&r, region_path, 0, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "nshm_open: %s\n", msg);
		abort();
	}
	return r;
}

/* A claimed line of this process: alive as long as its heartbeat moves. */
static void fake_head(struct line_head *l, uint64_t owner)
{
	const struct nshm_self *me = nshm_self();

	RLX(l->id.pid, me->pid);
	RLX(l->id.pidns, me->pidns);
	RLX(l->id.boot[0], me->boot[0]);
	RLX(l->id.boot[1], me->boot[1]);
	RLX(l->owner, owner);
	RLX(l->version, NSHM_VERSION);
	RLX(l->magic, NSHM_MAGIC);
}

#ifndef FAKE_PEER_COROUTINE
static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pause_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}
#endif

/* Tiny deterministic generator for slot contents. */
static uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s ? *s : 0x9e3779b9u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* n bytes of xorshift(seed), one a step. Not instrumented for coverage:
 * the fuzzer learns nothing from a fill loop, and its comparisons, traced
 * per byte, were half of fuzz_receiver's CPU. */
__attribute__((noinline, no_sanitize("coverage")))
static uint32_t fill_xorshift(unsigned char *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)xorshift(&seed);
	return seed;
}

/* IN_SET(rc, a, b, ...): rc is one of the results a harness allows. */
static inline bool in_set(long v, const long *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v == set[i])
			return true;
	return false;
}
#define IN_SET(v, ...) \
	in_set((v), (const long[]){ __VA_ARGS__ }, sizeof((long[]){ __VA_ARGS__ }) / sizeof(long))

#endif
