/* Shared by the proxy-path harnesses: a growable byte buffer, and the check
 * that a chunked body is complete and canonical as weir writes it. */
#ifndef WEIR_FUZZ_CANON_H
#define WEIR_FUZZ_CANON_H

#include <stdbool.h>
#include <string.h>
#include <sys/types.h>

#include "fuzz.h"
#include "weir/h1.h"

struct fuzz_buf {
	char *p;
	size_t len, cap;
};

static inline void fuzz_put(struct fuzz_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		FUZZ_ASSERT(b->p != NULL);
		b->cap = cap;
	}
	if (n != 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static inline bool fuzz_slice_is(weir_slice_t s, const char *p, size_t n)
{
	return s.len == n && (n == 0 || memcmp(s.ptr, p, n) == 0);
}

/* A chunked body as weir writes it: size lines [1-9a-f][0-9a-f]* CRLF, the
 * data, CRLF; then "0" CRLF CRLF: no extension, no trailer, no leading zero.
 * Returns the bytes it spans (its data appended to out, as weir's decoder
 * finds it), or -1 when p does not start with one such complete body. */
static inline ssize_t fuzz_canonical_chunked(const char *p, size_t len, struct fuzz_buf *out)
{
	struct weir_chunked d;
	weir_slice_t spans[16];
	size_t off = 0;

	for (;;) {
		size_t s = off;
		uint64_t n = 0;

		while (off < len && ((p[off] >= '0' && p[off] <= '9') || (p[off] >= 'a' && p[off] <= 'f'))) {
			n = n * 16 + (uint64_t)(p[off] <= '9' ? p[off] - '0' : p[off] - 'a' + 10);
			if (++off - s > 14)
				return -1;
		}
		if (off == s || len - off < 2 || p[off] != '\r' || p[off + 1] != '\n')
			return -1;
		if (n == 0) {
			if (off - s != 1 || len - off < 4 || p[off + 2] != '\r' || p[off + 3] != '\n')
				return -1;
			off += 4;
			break;
		}
		if (p[s] == '0')
			return -1;
		off += 2;
		if (len - off < n + 2 || p[off + n] != '\r' || p[off + n + 1] != '\n')
			return -1;
		off += (size_t)n + 2;
	}
	/* weir's own decoder agrees on the data and on the end */
	weir_chunked_init(&d);
	for (size_t at = 0; at < off && !d.done;) {
		size_t ns = WEIR_ARRAY_SIZE(spans);
		ssize_t n = weir_chunked_decode(&d, p + at, off - at, spans, &ns);

		FUZZ_ASSERT(n >= 0);
		for (size_t i = 0; i < ns; i++)
			fuzz_put(out, spans[i].ptr, spans[i].len);
		at += (size_t)n;
	}
	FUZZ_ASSERT(d.done);
	return (ssize_t)off;
}

#endif
