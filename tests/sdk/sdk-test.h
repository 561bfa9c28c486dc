/* Helpers shared by the libweir-agent tests: checks, MessagePack payload
 * building (msgpuck), and reading back what the SDK encodes. */
#ifndef WEIR_TEST_SDK_H
#define WEIR_TEST_SDK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <msgpuck.h>

#include "weir/agent-sdk.h"

static int failures;

#define CHECK(c)                                                                         \
	do {                                                                             \
		if (!(c)) {                                                              \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			failures++;                                                      \
		}                                                                        \
	} while (0)

#define CHECK_INT(got, want)                                                               \
	do {                                                                               \
		long long g_ = (long long)(got), w_ = (long long)(want);                   \
		if (g_ != w_) {                                                            \
			fprintf(stderr, "%s:%d: %s: got %lld, want %lld\n", __FILE__, __LINE__, \
				#got, g_, w_);                                             \
			failures++;                                                        \
		}                                                                          \
	} while (0)

#define CHECK_STR(s, lit)                                                                   \
	do {                                                                                \
		struct weir_agent_str s_ = (s);                                             \
		const char *w_ = (lit);                                                     \
		if (s_.len != strlen(w_) || (s_.len != 0 && memcmp(s_.ptr, w_, s_.len) != 0)) { \
			fprintf(stderr, "%s:%d: %s: got \"%.*s\", want \"%s\"\n", __FILE__,  \
				__LINE__, #s, (int)s_.len, s_.ptr != NULL ? s_.ptr : "", w_); \
			failures++;                                                         \
		}                                                                           \
	} while (0)

static inline void hexdump(const char *what, const void *p, size_t n)
{
	const unsigned char *u = p;

	fprintf(stderr, "%s (%zu bytes):", what, n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "%s%02x", i % 16 == 0 ? "\n  " : " ", u[i]);
	fputc('\n', stderr);
}

#define CHECK_BYTES(got, gotlen, want, wantlen)                                              \
	do {                                                                                 \
		if ((gotlen) != (wantlen) || memcmp((got), (want), (wantlen)) != 0) {        \
			fprintf(stderr, "%s:%d: bytes differ\n", __FILE__, __LINE__);        \
			hexdump("got", (got), (gotlen));                                     \
			hexdump("want", (want), (wantlen));                                  \
			failures++;                                                          \
		}                                                                            \
	} while (0)

/* Decodes a hex string ("00 0a ff", blanks ignored) into out; its length. */
static inline size_t unhex(const char *s, unsigned char *out)
{
	size_t n = 0;
	int hi = -1;

	for (; *s != '\0'; s++) {
		int v;

		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else
			continue;
		if (hi < 0) {
			hi = v;
		} else {
			out[n++] = (unsigned char)(hi << 4 | v);
			hi = -1;
		}
	}
	return n;
}

/* ---- payload building ---------------------------------------------------- */

static inline char *kuint(char *w, unsigned k, uint64_t v)
{
	return mp_encode_uint(mp_encode_uint(w, k), v);
}

static inline char *kstr(char *w, unsigned k, const char *s)
{
	return mp_encode_str(mp_encode_uint(w, k), s, (uint32_t)strlen(s));
}

static inline char *kbin(char *w, unsigned k, const void *p, size_t n)
{
	return mp_encode_bin(mp_encode_uint(w, k), p, (uint32_t)n);
}

/* A whole frame: header + payload [p, p + n). Returns its size. */
static inline size_t frame(char *dst, uint8_t type, uint8_t flags, uint64_t id, const char *p,
			   size_t n)
{
	uint32_t len = (uint32_t)(12 + n);

	dst[0] = (char)(len >> 24);
	dst[1] = (char)(len >> 16);
	dst[2] = (char)(len >> 8);
	dst[3] = (char)len;
	dst[4] = (char)type;
	dst[5] = (char)flags;
	dst[6] = dst[7] = 0;
	for (int i = 0; i < 8; i++)
		dst[8 + i] = (char)(id >> (56 - 8 * i));
	memmove(dst + 16, p, n);
	return 16 + n;
}

/* ---- reading what the SDK sent (trusted: produced by the code under test,
 * so msgpuck's unchecked decoders are fine after one mp_check) ---------- */

/* The value of key k in the map at p (n bytes), or NULL. */
static inline const char *map_get(const char *p, size_t n, uint64_t k)
{
	const char *q = p, *end = p + n;
	uint32_t count;

	if (mp_check(&q, end) != 0 || q != end || mp_typeof(*p) != MP_MAP)
		return NULL;
	q = p;
	count = mp_decode_map(&q);
	for (uint32_t i = 0; i < count; i++) {
		uint64_t key = mp_decode_uint(&q);

		if (key == k)
			return q;
		mp_next(&q);
	}
	return NULL;
}

static inline int64_t map_uint(const char *p, size_t n, uint64_t k)
{
	const char *v = map_get(p, n, k);

	if (v == NULL)
		return -1;
	if (mp_typeof(*v) != MP_UINT)
		return -2;
	return (int64_t)mp_decode_uint(&v);
}

/* The str (or bin) at key k as a slice; {NULL, 0} when absent. */
static inline struct weir_agent_str map_str(const char *p, size_t n, uint64_t k)
{
	const char *v = map_get(p, n, k);
	struct weir_agent_str s = { NULL, 0 };
	uint32_t len;

	if (v == NULL)
		return s;
	if (mp_typeof(*v) == MP_STR)
		s.ptr = mp_decode_str(&v, &len);
	else if (mp_typeof(*v) == MP_BIN)
		s.ptr = mp_decode_bin(&v, &len);
	else
		return s;
	s.len = len;
	return s;
}

#endif
