/* SPDX-License-Identifier: BSD-2-Clause */
/* Test tool: runs a command on a kernel without openat2, as far as the
 * command can tell: a seccomp filter makes every openat2 fail with ENOSYS
 * (what Linux before 5.6 says) and lets every other system call through.
 * tests/confine.bats uses it to show that a path from a peer is then
 * refused, never resolved by name instead.
 * usage: no-openat2 CMD [ARG...]; execs CMD (exit 127 if it cannot). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#endif

int main(int argc, char **argv)
{
#ifdef ARCH
	struct sock_filter code[] = {
		/* Another architecture's numbers mean other calls: let them be. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(code) / sizeof(code[0]), code };

	if (argc < 2) {
		fprintf(stderr, "usage: no-openat2 CMD [ARG...]\n");
		return 2;
	}
	/* No new privileges: what allows an unprivileged filter. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
		perror("no-openat2: seccomp");
		return 2;
	}
	execvp(argv[1], argv + 1);
	perror("no-openat2: exec");
	return 127;
#else
	(void)argc;
	(void)argv;
	fprintf(stderr, "no-openat2: no seccomp filter for this architecture\n");
	return 2;
#endif
}
