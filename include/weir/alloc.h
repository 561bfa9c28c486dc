/* weir: the one allocator indirection (Valkey's zmalloc idea) in front of
 * mimalloc.
 *
 * Each reactor thread calls weir_alloc_thread_init() once; from then on its
 * allocations come from its own mimalloc heap, so reactors never contend on
 * allocator state. Memory may be freed from any thread (mimalloc hands it back
 * to the owning heap), but on the data path it never is.
 *
 * weir_alloc_count counts allocations made by the calling thread; benchmarks
 * read it to report allocations per operation.
 *
 * Built with WEIR_ALLOC_STATS defined (bench/micro compiles its own copy of
 * src/core/alloc.c that way), weir_alloc_bytes also counts the bytes the
 * calling thread requested (malloc size, calloc n * size, realloc new size).
 * Without it the counter does not exist and costs nothing.
 */
#ifndef WEIR_ALLOC_H
#define WEIR_ALLOC_H

#include <stddef.h>
#include <stdint.h>

extern __thread uint64_t weir_alloc_count;
#ifdef WEIR_ALLOC_STATS
extern __thread uint64_t weir_alloc_bytes;
#endif

void weir_alloc_thread_init(void);
void *weir_malloc(size_t size);
void *weir_calloc(size_t n, size_t size);
void *weir_realloc(void *p, size_t size);
void weir_free(void *p);
char *weir_strndup(const char *s, size_t n);

#endif
