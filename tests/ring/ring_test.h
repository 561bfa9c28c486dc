/* Shared by the ring tests: a deterministic record for sequence number i,
 * so that the consumer can check every byte it gets. */
#ifndef WEIR_RING_TEST_H
#define WEIR_RING_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <poll.h>
#include <unistd.h>

#include "weir/spsc.h"

#define RT_MAX_REC 1800u

static unsigned long rt_wakes;

#define FAIL(...)                                                                   \
	do {                                                                        \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                     \
		fprintf(stderr, __VA_ARGS__);                                       \
		fputc('\n', stderr);                                                \
		exit(1);                                                            \
	} while (0)

static inline uint32_t rt_len(uint64_t i)
{
	/* 8..263 bytes, some odd sizes (padding), now and then a big one */
	uint32_t x = (uint32_t)(i * 2654435761u >> 7);

	return (i % 97 == 0) ? 1000 + (x & 511) : 8 + (x & 255);
}

static inline void rt_fill(unsigned char *p, uint64_t i, uint32_t len)
{
	memcpy(p, &i, 8);
	for (uint32_t k = 8; k < len; k++)
		p[k] = (unsigned char)(i * 31 + k);
}

static inline int rt_check(const unsigned char *p, uint64_t i, uint32_t len)
{
	uint64_t got;

	if (len != rt_len(i))
		return -1;
	memcpy(&got, p, 8);
	if (got != i)
		return -1;
	for (uint32_t k = 8; k < len; k++)
		if (p[k] != (unsigned char)(i * 31 + k))
			return -1;
	return 0;
}

static inline void rt_wait_fd(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;

	if (poll(&p, 1, 5000) != 1)
		FAIL("no wake-up within 5 s (lost wake-up)");
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		FAIL("eventfd read");
}

static inline void rt_wake(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one))
		FAIL("eventfd write");
	__atomic_fetch_add(&rt_wakes, 1, __ATOMIC_RELAXED);
}

static inline void rt_producer(struct weir_ring *rp, int efd_cons, int efd_prod, uint64_t nitems)
{
	struct weir_ring r = *rp;
	unsigned char buf[RT_MAX_REC];
	unsigned batch = 0;

	for (uint64_t i = 0; i < nitems;) {
		uint32_t len = rt_len(i);
		int err = 0;
		void *w = weir_ring_reserve(&r, len, &err);

		if (w == NULL) {
			int k;

			if (err != WEIR_RING_EAGAIN)
				FAIL("reserve: %d", err);
			if (weir_ring_publish(&r))
				rt_wake(efd_cons);
			batch = 0;
			k = weir_ring_wait_prepare(&r, len);
			if (k < 0)
				FAIL("consumer index invalid");
			if (k == 1) {
				rt_wait_fd(efd_prod);
				weir_ring_wait_done(&r);
			}
			continue;
		}
		rt_fill(buf, i, len);
		memcpy(w, buf, len);
		weir_ring_commit(&r, len);
		i++;
		/* batches of 1..16 records */
		if (++batch >= 1 + (i % 16)) {
			if (weir_ring_publish(&r))
				rt_wake(efd_cons);
			batch = 0;
		}
	}
	if (weir_ring_publish(&r))
		rt_wake(efd_cons);
}

static inline void rt_consumer(struct weir_ring *rp, int efd_cons, int efd_prod, uint64_t nitems)
{
	struct weir_ring r = *rp;
	unsigned char buf[RT_MAX_REC];
	uint64_t next = 0;

	while (next < nitems) {
		bool got;
		int n = weir_ring_read(&r, buf, sizeof(buf), &got);

		if (n < 0)
			FAIL("read: %d at item %llu", n, (unsigned long long)next);
		if (!got) {
			int k;

			if (weir_ring_release(&r))
				rt_wake(efd_prod);
			k = weir_ring_sleep_prepare(&r);
			if (k < 0)
				FAIL("producer index invalid");
			if (k == 1) {
				rt_wait_fd(efd_cons);
				weir_ring_sleep_done(&r);
			}
			continue;
		}
		if (rt_check(buf, next, (uint32_t)n) != 0)
			FAIL("item %llu corrupted or out of order", (unsigned long long)next);
		next++;
		if ((next & 7) == 0 && weir_ring_release(&r))
			rt_wake(efd_prod);
	}
	if (weir_ring_release(&r))
		rt_wake(efd_prod);
}

#endif
