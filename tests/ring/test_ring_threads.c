/* Two threads, one ring: every record arrives once, in order, intact.
 * Exercises wrap-around, padding, batching and the sleep / wake-up flags
 * (an eventfd per side, as weir and the SDK use them). Built into the
 * ThreadSanitizer build too (meson setup -Db_sanitize=thread). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ring_test.h"

#define RING_SIZE 4096u

struct shared {
	struct weir_ring_ctl ctl;
	unsigned char data[RING_SIZE];
};

static struct shared sh __attribute__((aligned(128)));
static uint64_t nitems = 2000000;
static int efd_cons, efd_prod;
static struct weir_ring ring;

static void *producer(void *arg)
{
	(void)arg;
	rt_producer(&ring, efd_cons, efd_prod, nitems);
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	rt_consumer(&ring, efd_cons, efd_prod, nitems);
	return NULL;
}


int main(int argc, char **argv)
{
	pthread_t tp, tc;

	if (argc > 1)
		nitems = strtoull(argv[1], NULL, 10);
	if (weir_ring_init(&ring, &sh.ctl, sh.data, RING_SIZE, RT_MAX_REC) != 0)
		FAIL("init");
	efd_cons = eventfd(0, 0);
	efd_prod = eventfd(0, 0);
	if (efd_cons < 0 || efd_prod < 0)
		FAIL("eventfd: %s", strerror(errno));
	if (pthread_create(&tc, NULL, consumer, NULL) != 0 ||
	    pthread_create(&tp, NULL, producer, NULL) != 0)
		FAIL("pthread_create");
	pthread_join(tp, NULL);
	pthread_join(tc, NULL);
	if (sh.ctl.prod != sh.ctl.cons)
		FAIL("indices differ at the end: %llu %llu", (unsigned long long)sh.ctl.prod,
		     (unsigned long long)sh.ctl.cons);
	printf("ring-threads: %llu items, %lu wake-ups, %llu bytes through\n",
	       (unsigned long long)nitems, rt_wakes, (unsigned long long)sh.ctl.prod);
	return 0;
}
