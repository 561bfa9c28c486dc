/* weir: common definitions shared by every module.
 *
 * weir_slice_t is the one {ptr,len} type used for every byte range (h2o's
 * h2o_iovec_t, HAProxy's ist). A slice never owns its bytes: its lifetime is
 * the lifetime of the buffer it points into, which the caller documents.
 */
#ifndef WEIR_COMMON_H
#define WEIR_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	const char *ptr;
	size_t len;
} weir_slice_t;

#define WEIR_SLICE(lit) ((weir_slice_t){ (lit), sizeof(lit) - 1 })
#define WEIR_SLICE_NULL ((weir_slice_t){ NULL, 0 })

static inline weir_slice_t weir_slice(const char *p, size_t n)
{
	return (weir_slice_t){ p, n };
}

/* Case-insensitive ASCII comparison of a slice with a NUL-terminated literal. */
static inline int weir_slice_ieq(weir_slice_t s, const char *lit, size_t litlen)
{
	if (s.len != litlen)
		return 0;
	for (size_t i = 0; i < litlen; i++) {
		unsigned char a = (unsigned char)s.ptr[i], b = (unsigned char)lit[i];
		if (a >= 'A' && a <= 'Z')
			a += 32;
		if (b >= 'A' && b <= 'Z')
			b += 32;
		if (a != b)
			return 0;
	}
	return 1;
}
#define WEIR_SLICE_IEQ(s, lit) weir_slice_ieq((s), (lit), sizeof(lit) - 1)

static inline int weir_slice_eq(weir_slice_t a, weir_slice_t b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

#define weir_likely(x) __builtin_expect(!!(x), 1)
#define weir_unlikely(x) __builtin_expect(!!(x), 0)

#define WEIR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define WEIR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define WEIR_MAX(a, b) ((a) > (b) ? (a) : (b))

#define weir_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Graded assertions (HAProxy's BUG_ON): WEIR_BUG_ON is always on and guards
 * invariants whose violation would corrupt data; WEIR_DBG_BUG_ON compiles away
 * in release builds and may sit on hot paths. */
#define WEIR_BUG_ON(cond)                                                        \
	do {                                                                     \
		if (weir_unlikely(cond)) {                                       \
			fprintf(stderr, "weir: BUG at %s:%d: %s\n", __FILE__,   \
				__LINE__, #cond);                                \
			abort();                                                 \
		}                                                                \
	} while (0)
#ifdef NDEBUG
#define WEIR_DBG_BUG_ON(cond) ((void)0)
#else
#define WEIR_DBG_BUG_ON(cond) WEIR_BUG_ON(cond)
#endif

#endif
