/* weir: character classes shared by the HTTP/1 parser and the chunked
 * decoder (private to src/http). One table, one load per byte: the scanners
 * test a bit instead of chaining comparisons. */
#ifndef WEIR_HTTP_H1_CTYPE_H
#define WEIR_HTTP_H1_CTYPE_H

#include <stdint.h>

#define WEIR__C_TOKEN   0x01 /* tchar (RFC 9110 5.6.2) */
#define WEIR__C_VALUE   0x02 /* field-value byte: VCHAR, obs-text, SP, HTAB */
#define WEIR__C_TARGET  0x04 /* request-target byte: VCHAR (no CTL, SP, non-ASCII) */
#define WEIR__C_REGNAME 0x08 /* reg-name byte, '%' excluded (RFC 3986 3.2.2) */
#define WEIR__C_HEX     0x10 /* HEXDIG */

static const uint8_t weir__h1_ctype[256] = {
	/* 00 */  0,  0,  0,  0,  0,  0,  0,  0,  0,  2,  0,  0,  0,  0,  0,  0,
	/* 10 */  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
	/* 20 */  2, 15,  6,  7, 15,  7, 15, 15, 14, 14, 15, 15, 14, 15, 15,  6,
	/* 30 */ 31, 31, 31, 31, 31, 31, 31, 31, 31, 31,  6, 14,  6, 14,  6,  6,
	/* 40 */  6, 31, 31, 31, 31, 31, 31, 15, 15, 15, 15, 15, 15, 15, 15, 15,
	/* 50 */ 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,  6,  6,  6,  7, 15,
	/* 60 */  7, 31, 31, 31, 31, 31, 31, 15, 15, 15, 15, 15, 15, 15, 15, 15,
	/* 70 */ 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,  6,  7,  6, 15,  0,
	/* 80 */  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
	/* 90 */  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
	/* a0 */  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
	/* b0 */  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
	/* c0 */  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
	/* d0 */  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
	/* e0 */  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
	/* f0 */  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
};

#define WEIR__IS(c, cls) ((weir__h1_ctype[(uint8_t)(c)] & (cls)) != 0)

#endif
