/* weir: per-connection receive and send queues over pool buffers.
 *
 * weir_inq: bytes received and not yet consumed, as (buffer id, offset,
 * length) segments in arrival order. It holds one reference on each buffer
 * it names; consuming past the end of a segment drops that reference.
 *
 * weir_outq: bytes waiting to be sent, as segments that are either
 *  - a reference into a pool buffer (zero-copy forwarding; the queue holds a
 *    buffer reference until the bytes are sent or the queue is cleared),
 *  - an owned heap block (freed with weir_free once sent),
 *  - static bytes (never freed), or
 *  - up to WEIR_OSEG_INLINE bytes stored in the segment itself (chunk-size
 *    lines).
 * weir_outq_iov() describes the head of the queue as iovecs for one sendmsg;
 * the queue must not be modified at its head while that send is in flight
 * (appending is fine: iovecs point at the bytes, not at the segments).
 */
#ifndef WEIR_IOBUF_H
#define WEIR_IOBUF_H

#include <stdbool.h>
#include <sys/uio.h>

#include "weir/bufpool.h"

struct weir_rseg {
	uint32_t off;
	uint32_t len;
	uint16_t bid;
};

struct weir_inq {
	struct weir_rseg *segs;
	uint32_t head, count, cap;      /* ring; cap is a power of two */
	size_t bytes;
};

#define WEIR_OSEG_INLINE 24
#define WEIR_OSEG_NOBUF (-1)

struct weir_oseg {
	const char *ptr;                /* NULL: bytes are in inl */
	uint32_t len;
	int32_t bid;                    /* pool buffer referenced, or WEIR_OSEG_NOBUF */
	void *owned;                    /* heap block to free once sent */
	char inl[WEIR_OSEG_INLINE];
};

struct weir_outq {
	struct weir_oseg *segs;
	uint32_t head, count, cap;
	uint32_t head_off;              /* bytes of the head segment already sent */
	size_t bytes;                   /* unsent bytes */
	void *retired;                  /* outgrown arrays, freed at the next consume */
};

int weir_inq_push(struct weir_inq *q, uint16_t bid, uint32_t len);

/* Like weir_inq_push, but a small segment (<= WEIR_INQ_COMPACT_MAX bytes) is
 * copied behind the tail segment's bytes when its buffer has room, and its
 * own buffer is returned at once. This bounds the buffers a connection can
 * pin by trickling bytes (one header byte per second pins one 16 KiB buffer
 * per byte otherwise) at the cost of copying small receives only. The
 * receive queue must be the only writer of the tail buffer's free space —
 * true for buffers weir received into. */
#define WEIR_INQ_COMPACT_MAX 1024u
int weir_inq_push_compact(struct weir_inq *q, struct weir_bufpool *p, uint16_t bid, uint32_t len);
/* The head segment's bytes; returns 0 when the queue is empty. */
static inline size_t weir_inq_peek(const struct weir_inq *q, const struct weir_bufpool *p,
				   const char **ptr, uint16_t *bid)
{
	const struct weir_rseg *s;

	if (q->count == 0)
		return 0;
	s = &q->segs[q->head];
	*ptr = weir_buf_ptr(p, s->bid) + s->off;
	if (bid != NULL)
		*bid = s->bid;
	return s->len;
}
/* i-th segment (0 = head). */
static inline const struct weir_rseg *weir_inq_seg(const struct weir_inq *q, uint32_t i)
{
	return &q->segs[(q->head + i) & (q->cap - 1)];
}
void weir_inq_consume(struct weir_inq *q, struct weir_bufpool *p, size_t n);
void weir_inq_clear(struct weir_inq *q, struct weir_bufpool *p);
void weir_inq_free(struct weir_inq *q, struct weir_bufpool *p);

/* All return 0, or -1 when out of memory (the caller closes the connection;
 * for push_owned the block is freed either way). */
int weir_outq_push_ref(struct weir_outq *q, struct weir_bufpool *p, const char *ptr,
		       uint32_t len, uint16_t bid);
int weir_outq_push_owned(struct weir_outq *q, void *block, const char *ptr, uint32_t len);
int weir_outq_push_static(struct weir_outq *q, const char *ptr, uint32_t len);
int weir_outq_push_inline(struct weir_outq *q, const char *bytes, uint32_t len);
unsigned weir_outq_iov(const struct weir_outq *q, struct iovec *iov, unsigned max);
void weir_outq_consume(struct weir_outq *q, struct weir_bufpool *p, size_t n);
void weir_outq_clear(struct weir_outq *q, struct weir_bufpool *p);
void weir_outq_free(struct weir_outq *q, struct weir_bufpool *p);

#endif
