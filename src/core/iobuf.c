#include "weir/alloc.h"
#include "weir/iobuf.h"

/* Both queues are rings over a power-of-two array that doubles when full;
 * growing re-packs the live entries at the start of the new array. */
static int ring_grow(void **arr, uint32_t *head, uint32_t count, uint32_t *cap, size_t elem,
		     void **retired)
{
	uint32_t ncap = *cap ? *cap * 2 : 8;
	char *n = weir_malloc(ncap * elem);

	if (n == NULL)
		return -1;
	for (uint32_t i = 0; i < count; i++)
		memcpy(n + i * elem, (char *)*arr + ((*head + i) & (*cap - 1)) * elem, elem);
	if (retired != NULL && *arr != NULL) {
		/* Inline segment bytes may be named by the iovecs of a send in
		 * flight: keep the old array until the next consume. */
		*(void **)*arr = *retired;
		*retired = *arr;
	} else {
		weir_free(*arr);
	}
	*arr = n;
	*head = 0;
	*cap = ncap;
	return 0;
}

int weir_inq_push(struct weir_inq *q, uint16_t bid, uint32_t len)
{
	struct weir_rseg *s;

	if (q->count == q->cap &&
	    ring_grow((void **)&q->segs, &q->head, q->count, &q->cap, sizeof(*q->segs), NULL) != 0)
		return -1;
	s = &q->segs[(q->head + q->count) & (q->cap - 1)];
	s->bid = bid;
	s->off = 0;
	s->len = len;
	q->count++;
	q->bytes += len;
	return 0;
}

int weir_inq_push_compact(struct weir_inq *q, struct weir_bufpool *p, uint16_t bid, uint32_t len)
{
	if (len <= WEIR_INQ_COMPACT_MAX && q->count != 0) {
		struct weir_rseg *t = &q->segs[(q->head + q->count - 1) & (q->cap - 1)];

		/* Bytes after the tail segment's data belong to no one: the kernel
		 * wrote only up to there and weir holds the buffer. */
		if (t->off + t->len + len <= p->bufsz) {
			memcpy(weir_buf_ptr(p, t->bid) + t->off + t->len, weir_buf_ptr(p, bid), len);
			t->len += len;
			q->bytes += len;
			weir_buf_unref(p, bid);
			return 0;
		}
	}
	return weir_inq_push(q, bid, len);
}

void weir_inq_consume(struct weir_inq *q, struct weir_bufpool *p, size_t n)
{
	WEIR_BUG_ON(n > q->bytes);
	q->bytes -= n;
	while (n != 0) {
		struct weir_rseg *s = &q->segs[q->head];

		if (n < s->len) {
			s->off += (uint32_t)n;
			s->len -= (uint32_t)n;
			return;
		}
		n -= s->len;
		weir_buf_unref(p, s->bid);
		q->head = (q->head + 1) & (q->cap - 1);
		q->count--;
	}
	/* Drop fully consumed empty segments too (len 0 never enters). */
}

void weir_inq_clear(struct weir_inq *q, struct weir_bufpool *p)
{
	while (q->count != 0) {
		weir_buf_unref(p, q->segs[q->head].bid);
		q->head = (q->head + 1) & (q->cap - 1);
		q->count--;
	}
	q->bytes = 0;
	q->head = 0;
}

void weir_inq_free(struct weir_inq *q, struct weir_bufpool *p)
{
	weir_inq_clear(q, p);
	weir_free(q->segs);
	q->segs = NULL;
	q->cap = 0;
}

static struct weir_oseg *outq_tail(struct weir_outq *q)
{
	struct weir_oseg *s;

	if (q->count == q->cap &&
	    ring_grow((void **)&q->segs, &q->head, q->count, &q->cap, sizeof(*q->segs),
		      &q->retired) != 0)
		return NULL;
	s = &q->segs[(q->head + q->count) & (q->cap - 1)];
	q->count++;
	s->bid = WEIR_OSEG_NOBUF;
	s->owned = NULL;
	return s;
}

int weir_outq_push_ref(struct weir_outq *q, struct weir_bufpool *p, const char *ptr,
		       uint32_t len, uint16_t bid)
{
	struct weir_oseg *s;

	if (len == 0)
		return 0;
	s = outq_tail(q);
	if (s == NULL)
		return -1;
	weir_buf_ref(p, bid);
	s->ptr = ptr;
	s->len = len;
	s->bid = bid;
	q->bytes += len;
	return 0;
}

int weir_outq_push_owned(struct weir_outq *q, void *block, const char *ptr, uint32_t len)
{
	struct weir_oseg *s;

	if (len == 0) {
		weir_free(block);
		return 0;
	}
	s = outq_tail(q);
	if (s == NULL) {
		weir_free(block);
		return -1;
	}
	s->ptr = ptr;
	s->len = len;
	s->owned = block;
	q->bytes += len;
	return 0;
}

int weir_outq_push_static(struct weir_outq *q, const char *ptr, uint32_t len)
{
	struct weir_oseg *s;

	if (len == 0)
		return 0;
	s = outq_tail(q);
	if (s == NULL)
		return -1;
	s->ptr = ptr;
	s->len = len;
	q->bytes += len;
	return 0;
}

int weir_outq_push_inline(struct weir_outq *q, const char *bytes, uint32_t len)
{
	struct weir_oseg *s;

	WEIR_BUG_ON(len > WEIR_OSEG_INLINE);
	s = outq_tail(q);
	if (s == NULL)
		return -1;
	memcpy(s->inl, bytes, len);
	s->ptr = NULL;
	s->len = len;
	q->bytes += len;
	return 0;
}

unsigned weir_outq_iov(const struct weir_outq *q, struct iovec *iov, unsigned max)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < q->count && n < max; i++) {
		const struct weir_oseg *s = &q->segs[(q->head + i) & (q->cap - 1)];
		const char *base = s->ptr != NULL ? s->ptr : s->inl;
		uint32_t skip = i == 0 ? q->head_off : 0;

		iov[n].iov_base = (void *)(uintptr_t)(base + skip);
		iov[n].iov_len = s->len - skip;
		n++;
	}
	return n;
}

static void free_retired(struct weir_outq *q)
{
	while (q->retired != NULL) {
		void *next = *(void **)q->retired;

		weir_free(q->retired);
		q->retired = next;
	}
}

static void oseg_release(struct weir_oseg *s, struct weir_bufpool *p)
{
	if (s->bid != WEIR_OSEG_NOBUF)
		weir_buf_unref(p, (uint16_t)s->bid);
	if (s->owned != NULL)
		weir_free(s->owned);
}

void weir_outq_consume(struct weir_outq *q, struct weir_bufpool *p, size_t n)
{
	WEIR_BUG_ON(n > q->bytes);
	free_retired(q);
	q->bytes -= n;
	while (n != 0) {
		struct weir_oseg *s = &q->segs[q->head];
		uint32_t left = s->len - q->head_off;

		if (n < left) {
			q->head_off += (uint32_t)n;
			return;
		}
		n -= left;
		oseg_release(s, p);
		q->head_off = 0;
		q->head = (q->head + 1) & (q->cap - 1);
		q->count--;
	}
}

void weir_outq_clear(struct weir_outq *q, struct weir_bufpool *p)
{
	while (q->count != 0) {
		oseg_release(&q->segs[q->head], p);
		q->head = (q->head + 1) & (q->cap - 1);
		q->count--;
	}
	q->head = 0;
	q->head_off = 0;
	q->bytes = 0;
}

void weir_outq_free(struct weir_outq *q, struct weir_bufpool *p)
{
	weir_outq_clear(q, p);
	free_retired(q);
	weir_free(q->segs);
	q->segs = NULL;
	q->cap = 0;
}
