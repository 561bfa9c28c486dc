/* weir: big-endian loads and stores for wire formats (the agent protocol's
 * frame header), byte by byte so that alignment never matters. Shared by the
 * proxy side (src/agent) and the agent SDK (src/sdk). */
#ifndef WEIR_BE_H
#define WEIR_BE_H

#include <stdint.h>

static inline void weir_put_be32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}

static inline uint32_t weir_get_be32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

#endif
