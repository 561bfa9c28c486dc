/* libFuzzer harness: weir_h1_parse_response, for a GET and for a HEAD.
 * Invariants: the result is a length <= the input, NEED_MORE or ERROR with
 * 502; slices lie in the header block; nheaders <= max; status 100-599;
 * bodiless statuses and HEAD have no body; the block length does not depend
 * on is_head; prefixes give NEED_MORE or the same verdict. */
#include <string.h>

#include "fuzz.h"
#include "weir/h1.h"

static struct weir_h1_response res, res2;

static void in_block(weir_slice_t s, const char *p, int ret)
{
	if (s.ptr == NULL) {
		FUZZ_ASSERT(s.len == 0);
		return;
	}
	FUZZ_ASSERT(s.ptr >= p && s.ptr + s.len <= p + ret);
	FUZZ_ASSERT(memchr(s.ptr, '\r', s.len) == NULL && memchr(s.ptr, '\n', s.len) == NULL);
}

static int parse(const char *p, size_t size, bool is_head)
{
	int ret = weir_h1_parse_response(p, size, is_head, &res);

	if (ret == WEIR_H1_ERROR) {
		FUZZ_ASSERT(res.error == 502 && res.reason != NULL);
		return ret;
	}
	if (ret == WEIR_H1_NEED_MORE)
		return ret;
	FUZZ_ASSERT(ret > 0 && (size_t)ret <= size);
	FUZZ_ASSERT(p[ret - 1] == '\n' && p[ret - 2] == '\r');
	FUZZ_ASSERT(res.status >= 100 && res.status <= 599);
	FUZZ_ASSERT(res.minor_version == 0 || res.minor_version == 1);
	FUZZ_ASSERT(res.nheaders <= WEIR_H1_MAX_HEADERS);
	in_block(res.reason_phrase, p, ret);
	FUZZ_ASSERT(res.body <= WEIR_H1_BODY_CLOSE);
	if (is_head || res.status < 200 || res.status == 204 || res.status == 304)
		FUZZ_ASSERT(res.body == WEIR_H1_BODY_NONE);
	else
		FUZZ_ASSERT(res.body != WEIR_H1_BODY_NONE);
	if (res.body == WEIR_H1_BODY_LENGTH)
		FUZZ_ASSERT(res.content_length <= (1ull << 53));
	for (size_t i = 0; i < res.nheaders; i++) {
		in_block(res.headers[i].name, p, ret);
		in_block(res.headers[i].value, p, ret);
		FUZZ_ASSERT(res.headers[i].name.len > 0);
		FUZZ_ASSERT(res.kind[i] <= WEIR_H_VIA);
		if (res.body == WEIR_H1_BODY_CHUNKED)
			FUZZ_ASSERT(res.kind[i] != WEIR_H_CONTENT_LENGTH);
	}
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	int get = parse(p, size, false);
	int head = parse(p, size, true);
	uint64_t h = fuzz_hash(data, size);

	FUZZ_ASSERT(get == head);
	if (get > 0)
		FUZZ_ASSERT(weir_h1_parse_response(p, (size_t)get, true, &res2) == get);
	for (int k = 0; k < 3 && size > 0; k++) {
		size_t n = k == 0 ? size - 1 : (size_t)((h >> (k * 20)) % size);
		int r = weir_h1_parse_response(p, n, false, &res2);

		FUZZ_ASSERT(r == WEIR_H1_NEED_MORE || r == get);
	}
	return 0;
}
