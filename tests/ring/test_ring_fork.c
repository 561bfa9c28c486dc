/* Two processes, one ring in a memfd (as weir and an agent share it):
 * the child produces, the parent consumes; every record arrives once, in
 * order, intact. */
#include <errno.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ring_test.h"

#define RING_SIZE 8192u

int main(int argc, char **argv)
{
	uint64_t nitems = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
	size_t sz = WEIR_RING_CTL_SIZE + RING_SIZE;
	int fd = memfd_create("weir-ring-test", MFD_CLOEXEC), st;
	int efd_cons = eventfd(0, 0), efd_prod = eventfd(0, 0);
	struct weir_ring r;
	unsigned char *m;
	pid_t pid;

	if (fd < 0 || efd_cons < 0 || efd_prod < 0 || ftruncate(fd, (off_t)sz) != 0)
		FAIL("memfd / eventfd: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		FAIL("fork: %s", strerror(errno));
	/* each process maps the memfd on its own, as two programs would */
	m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		FAIL("mmap: %s", strerror(errno));
	if (weir_ring_init(&r, m, m + WEIR_RING_CTL_SIZE, RING_SIZE, RT_MAX_REC) != 0)
		FAIL("init");
	if (pid == 0) {
		rt_producer(&r, efd_cons, efd_prod, nitems);
		_exit(0);
	}
	rt_consumer(&r, efd_cons, efd_prod, nitems);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		FAIL("producer process failed (status 0x%x)", st);
	if (((struct weir_ring_ctl *)m)->prod != ((struct weir_ring_ctl *)m)->cons)
		FAIL("indices differ at the end");
	printf("ring-fork: %llu items across processes, %llu bytes\n", (unsigned long long)nitems,
	       (unsigned long long)((struct weir_ring_ctl *)m)->prod);
	return 0;
}
