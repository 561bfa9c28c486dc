/* Shared by the libFuzzer harnesses and the corpus replay driver. */
#ifndef WEIR_FUZZ_H
#define WEIR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test is broken: say which and abort so
 * that libFuzzer (or the replay test) reports the input. */
#define FUZZ_ASSERT(c)                                                                  \
	do {                                                                            \
		if (!(c)) {                                                             \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                        \
		}                                                                       \
	} while (0)

/* FNV-1a, to pick split points from the input without spending input bytes
 * on them (the corpora stay plain HTTP). */
static inline uint64_t fuzz_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

#endif
