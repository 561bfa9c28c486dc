/* Runs a program with io_uring_setup(2) failing with the errno given, the
 * way a container's seccomp profile or io_uring_disabled makes it fail:
 *   no-uring EPERM|ENOSYS PROGRAM [ARGS...]
 * Used to check that weir explains a missing io_uring instead of crashing. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int err;

	if (argc < 3) {
		fprintf(stderr, "usage: no-uring EPERM|ENOSYS PROGRAM [ARGS...]\n");
		return 2;
	}
	err = strcmp(argv[1], "ENOSYS") == 0 ? ENOSYS : EPERM;

	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof(filter) / sizeof(filter[0])),
		.filter = filter,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
		perror("no-uring: seccomp");
		return 77;
	}
	execv(argv[2], argv + 2);
	perror("no-uring: exec");
	return 2;
}
