/* Tiny check helpers shared by the src/http unit tests. */
#ifndef WEIR_TEST_HTTP_CHECK_H
#define WEIR_TEST_HTTP_CHECK_H

#include <stdio.h>
#include <string.h>

#include "weir/common.h"

static int failures;

#define CHECK(c)                                                                         \
	do {                                                                             \
		if (!(c)) {                                                              \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			failures++;                                                      \
		}                                                                        \
	} while (0)

#define CHECK_INT(got, want, what)                                                         \
	do {                                                                               \
		long long g_ = (long long)(got), w_ = (long long)(want);                   \
		if (g_ != w_) {                                                            \
			fprintf(stderr, "%s:%d: %s: got %lld, want %lld\n", __FILE__, __LINE__, \
				(what), g_, w_);                                           \
			failures++;                                                        \
		}                                                                          \
	} while (0)

/* the slice equals the NUL-terminated string */
#define CHECK_SLICE(s, str)                                                                \
	do {                                                                               \
		weir_slice_t s_ = (s);                                                     \
		const char *w_ = (str);                                                    \
		if (s_.len != strlen(w_) || (s_.len != 0 && memcmp(s_.ptr, w_, s_.len) != 0)) { \
			fprintf(stderr, "%s:%d: %s: got \"%.*s\", want \"%s\"\n", __FILE__, \
				__LINE__, #s, (int)s_.len, s_.ptr ? s_.ptr : "", w_);     \
			failures++;                                                        \
		}                                                                          \
	} while (0)

/* Printable form of a test input, for failure messages. */
static inline const char *show(const char *p, size_t n)
{
	static char out[200];
	size_t o = 0;

	for (size_t i = 0; i < n && o + 5 < sizeof(out); i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r') {
			out[o++] = '\\';
			out[o++] = 'r';
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c < 0x20 || c >= 0x7f) {
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = 0;
	return out;
}

static inline int report(const char *name)
{
	if (failures != 0) {
		fprintf(stderr, "%s: %d failure(s)\n", name, failures);
		return 1;
	}
	printf("%s: ok\n", name);
	return 0;
}

#endif
