/* weir: provided-buffer ring with per-buffer reference counts.
 *
 * One pool per reactor (never shared). The kernel picks a free buffer for
 * each multishot recv completion; from then on the buffer belongs to weir
 * until every holder has released it: the receive queue that parsed it, and
 * every pending send that references some of its bytes (zero-copy
 * forwarding). When the count drops to zero the buffer is queued for return;
 * weir_bufpool_flush() publishes the returned buffers to the kernel in one
 * batch (once per event-loop iteration).
 */
#ifndef WEIR_BUFPOOL_H
#define WEIR_BUFPOOL_H

#include <liburing.h>
#include <stdint.h>

#include "weir/common.h"

struct weir_bufpool {
	struct io_uring_buf_ring *br;
	char *mem;
	uint32_t bufsz;
	uint32_t nbufs;                 /* power of two */
	uint16_t bgid;
	uint16_t pending;               /* added to br, not yet advanced */
	uint32_t outstanding;           /* buffers held by weir */
	uint16_t *refs;
	uint64_t exhausted;             /* ENOBUFS seen (metrics) */
};

/* Registers nbufs buffers of bufsz bytes as group bgid. 0 or -errno. */
int weir_bufpool_init(struct weir_bufpool *p, struct io_uring *ring, uint16_t bgid,
		      uint32_t nbufs, uint32_t bufsz);
void weir_bufpool_destroy(struct weir_bufpool *p, struct io_uring *ring);

static inline char *weir_buf_ptr(const struct weir_bufpool *p, uint16_t bid)
{
	return p->mem + (size_t)bid * p->bufsz;
}

/* A recv completion handed buffer bid to weir: one reference. */
static inline void weir_buf_take(struct weir_bufpool *p, uint16_t bid)
{
	WEIR_DBG_BUG_ON(p->refs[bid] != 0);
	p->refs[bid] = 1;
	p->outstanding++;
}

static inline void weir_buf_ref(struct weir_bufpool *p, uint16_t bid)
{
	WEIR_DBG_BUG_ON(p->refs[bid] == 0);
	p->refs[bid]++;
}

static inline void weir_buf_unref(struct weir_bufpool *p, uint16_t bid)
{
	WEIR_BUG_ON(p->refs[bid] == 0);
	if (--p->refs[bid] == 0) {
		io_uring_buf_ring_add(p->br, weir_buf_ptr(p, bid), p->bufsz, bid,
				      io_uring_buf_ring_mask(p->nbufs), p->pending);
		p->pending++;
		p->outstanding--;
	}
}

/* Publish returned buffers to the kernel. Returns how many. */
static inline unsigned weir_bufpool_flush(struct weir_bufpool *p)
{
	unsigned n = p->pending;

	if (n != 0) {
		io_uring_buf_ring_advance(p->br, (int)n);
		p->pending = 0;
	}
	return n;
}

#endif
