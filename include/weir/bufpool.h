/* weir: provided-buffer ring with per-buffer reference counts.
 *
 * One pool per reactor (never shared). The kernel picks a free buffer for
 * each multishot recv completion; from then on the buffer belongs to weir
 * until every holder has released it: the receive queue that parsed it, and
 * every pending send that references some of its bytes (zero-copy
 * forwarding). When the count drops to zero the buffer is queued for return;
 * weir_bufpool_flush() publishes the returned buffers to the kernel in one
 * batch (once per event-loop iteration).
 *
 * Extra groups (weir_bufpool_add_group): more provided-buffer rings over
 * memory the caller owns (a shared-memory agent arena), with buffers of the
 * same size. Their buffer ids follow the main pool's in one id space
 * (global id = group base + the kernel's id), so that every holder (receive
 * queues, send queues, agents) refcounts them the same way. A buffer an
 * agent holds through shared memory is one more reference.
 */
#ifndef WEIR_BUFPOOL_H
#define WEIR_BUFPOOL_H

#include <liburing.h>
#include <stdint.h>

#include "weir/common.h"

#define WEIR_BUFPOOL_MAX_GROUPS 8
#define WEIR_BUFPOOL_MAX_IDS 32768u

struct weir_bufgroup {
	struct io_uring_buf_ring *br;
	char *mem;                      /* the caller's (not unmapped here) */
	uint32_t base, n;               /* global ids [base, base + n) */
	uint16_t bgid;
	uint16_t pending;
};

struct weir_bufpool {
	struct io_uring_buf_ring *br;
	char *mem;
	uint32_t bufsz;
	uint32_t nbufs;                 /* power of two */
	uint16_t bgid;
	uint16_t pending;               /* added to br, not yet advanced */
	uint32_t outstanding;           /* buffers held by weir */
	uint16_t *refs;                 /* WEIR_BUFPOOL_MAX_IDS, every group */
	uint64_t exhausted;             /* ENOBUFS seen (metrics) */
	uint32_t next_id;               /* first global id not yet given to a group */
	unsigned ngroups;
	struct weir_bufgroup groups[WEIR_BUFPOOL_MAX_GROUPS];
};

/* Registers nbufs buffers of bufsz bytes as group bgid. 0 or -errno. */
int weir_bufpool_init(struct weir_bufpool *p, struct io_uring *ring, uint16_t bgid,
		      uint32_t nbufs, uint32_t bufsz);
void weir_bufpool_destroy(struct weir_bufpool *p, struct io_uring *ring);

/* Registers n buffers of p->bufsz bytes at mem (the caller's, alive until
 * weir_bufpool_destroy) as group bgid: the group's index (>= 1; 0 is the
 * main pool) or -errno. */
int weir_bufpool_add_group(struct weir_bufpool *p, struct io_uring *ring, uint16_t bgid,
			   char *mem, uint32_t n);

/* Group g (0: the main pool): its bgid and the global id of its buffer 0. */
static inline uint16_t weir_bufpool_bgid(const struct weir_bufpool *p, unsigned g)
{
	return g == 0 ? p->bgid : p->groups[g - 1].bgid;
}

static inline uint32_t weir_bufpool_base(const struct weir_bufpool *p, unsigned g)
{
	return g == 0 ? 0 : p->groups[g - 1].base;
}

char *weir__bufpool_xptr(const struct weir_bufpool *p, uint16_t bid);
void weir__bufpool_xput(struct weir_bufpool *p, uint16_t bid);

static inline char *weir_buf_ptr(const struct weir_bufpool *p, uint16_t bid)
{
	if (weir_likely(bid < p->nbufs))
		return p->mem + (size_t)bid * p->bufsz;
	return weir__bufpool_xptr(p, bid);
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
		p->outstanding--;
		if (weir_unlikely(bid >= p->nbufs)) {
			weir__bufpool_xput(p, bid);
			return;
		}
		io_uring_buf_ring_add(p->br, weir_buf_ptr(p, bid), p->bufsz, bid,
				      io_uring_buf_ring_mask(p->nbufs), p->pending);
		p->pending++;
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
	for (unsigned g = 0; g < p->ngroups; g++) {
		struct weir_bufgroup *x = &p->groups[g];

		if (x->pending != 0) {
			io_uring_buf_ring_advance(x->br, x->pending);
			n += x->pending;
			x->pending = 0;
		}
	}
	return n;
}

#endif
