/* SHA-256 (FIPS 180-4) for the test and demo tools (weir-origin, the C
 * test agent): bodies are checked end to end by their digests. Not used by
 * weir itself. */
#ifndef WEIR_TOOLS_SHA256_H
#define WEIR_TOOLS_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	unsigned int blen;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
/* Final digest as 64 lowercase hex digits + NUL. */
void sha256_hex(struct sha256 *s, char out[65]);

#endif
