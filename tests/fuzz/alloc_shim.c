/* weir/alloc.h over libc malloc, for the harnesses that link src/proxy/msg.c:
 * mimalloc's blocks are invisible to AddressSanitizer, libc's are not, so a
 * head written past its computed size is caught at the write. */
#include <stdlib.h>
#include <string.h>

#include "weir/alloc.h"

__thread uint64_t weir_alloc_count;

void weir_alloc_thread_init(void)
{
}

void *weir_malloc(size_t size)
{
	weir_alloc_count++;
	return malloc(size != 0 ? size : 1);
}

void *weir_calloc(size_t n, size_t size)
{
	weir_alloc_count++;
	return calloc(n != 0 ? n : 1, size != 0 ? size : 1);
}

void *weir_realloc(void *p, size_t size)
{
	weir_alloc_count++;
	return realloc(p, size != 0 ? size : 1);
}

void weir_free(void *p)
{
	free(p);
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
