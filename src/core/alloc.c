#include <mimalloc.h>
#include <string.h>

#include "weir/alloc.h"

__thread uint64_t weir_alloc_count;
#ifdef WEIR_ALLOC_STATS
__thread uint64_t weir_alloc_bytes;
#define COUNT_BYTES(n) (weir_alloc_bytes += (n))
#else
#define COUNT_BYTES(n) ((void)0)
#endif
static __thread mi_heap_t *thread_heap;

void weir_alloc_thread_init(void)
{
	if (thread_heap == NULL)
		thread_heap = mi_heap_new();
}

void *weir_malloc(size_t size)
{
	weir_alloc_count++;
	COUNT_BYTES(size);
	if (thread_heap != NULL)
		return mi_heap_malloc(thread_heap, size);
	return mi_malloc(size);
}

void *weir_calloc(size_t n, size_t size)
{
	weir_alloc_count++;
	COUNT_BYTES(n * size);
	if (thread_heap != NULL)
		return mi_heap_calloc(thread_heap, n, size);
	return mi_calloc(n, size);
}

void *weir_realloc(void *p, size_t size)
{
	weir_alloc_count++;
	COUNT_BYTES(size);
	if (thread_heap != NULL)
		return mi_heap_realloc(thread_heap, p, size);
	return mi_realloc(p, size);
}

void weir_free(void *p)
{
	mi_free(p);
}

char *weir_strndup(const char *s, size_t n)
{
	char *p = weir_malloc(n + 1);

	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}
