/* libFuzzer harness: weir_h1_parse_request. Invariants checked:
 *  - the result is a length <= the input, NEED_MORE, or ERROR with one of the
 *    documented statuses and a reason;
 *  - every slice lies in the header block (->path may also be the '/' of the
 *    "HTTP/1.x" in the request line, which is in it as well);
 *  - nheaders <= max, names are non-empty tokens, values have no OWS at
 *    either end and no CR/LF, kinds and body are in range;
 *  - parsing is stateless and prefix-consistent: the block alone gives the
 *    same result, and a prefix gives NEED_MORE or the same verdict. */
#include <string.h>

#include "fuzz.h"
#include "weir/h1.h"

static struct weir_h1_request req, req2;

static void in_block(weir_slice_t s, const char *p, int ret)
{
	if (s.ptr == NULL) {
		FUZZ_ASSERT(s.len == 0);
		return;
	}
	FUZZ_ASSERT(s.ptr >= p && s.ptr + s.len <= p + ret);
	FUZZ_ASSERT(memchr(s.ptr, '\r', s.len) == NULL && memchr(s.ptr, '\n', s.len) == NULL);
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void check_ok(const char *p, size_t size, int ret)
{
	FUZZ_ASSERT((size_t)ret <= size);
	FUZZ_ASSERT(ret >= 16); /* "G / HTTP/1.0\r\n\r\n" is the shortest */
	FUZZ_ASSERT(p[ret - 1] == '\n' && p[ret - 2] == '\r' && p[ret - 3] == '\n');
	FUZZ_ASSERT(req.nheaders <= WEIR_H1_MAX_HEADERS);
	FUZZ_ASSERT(req.minor_version == 0 || req.minor_version == 1);
	FUZZ_ASSERT(req.method.len > 0 && req.target.len > 0 && req.path.len > 0);
	in_block(req.method, p, ret);
	in_block(req.target, p, ret);
	in_block(req.path, p, ret);
	in_block(req.host, p, ret);
	FUZZ_ASSERT(req.method_id != WEIR_M_CONNECT);
	if (req.method_id != WEIR_M_OTHER) {
		const char *n = weir_h1_method_name(req.method_id);

		FUZZ_ASSERT(strlen(n) == req.method.len && memcmp(n, req.method.ptr, req.method.len) == 0);
	}
	if (req.flags & WEIR_H1_F_ABSOLUTE_FORM)
		FUZZ_ASSERT(req.host.len > 0);
	else
		FUZZ_ASSERT(req.path.ptr == req.target.ptr && req.path.len == req.target.len);
	if (req.minor_version == 1) {
		/* exactly one Host field (its value may be empty) */
		size_t nhost = 0;

		for (size_t i = 0; i < req.nheaders; i++)
			nhost += req.kind[i] == WEIR_H_HOST;
		FUZZ_ASSERT(nhost == 1);
	}
	if (req.minor_version == 0 && !(req.flags & WEIR_H1_F_CONN_KEEPALIVE))
		FUZZ_ASSERT(req.flags & WEIR_H1_F_CONN_CLOSE);
	FUZZ_ASSERT(req.body <= WEIR_H1_BODY_CHUNKED);
	if (req.body == WEIR_H1_BODY_LENGTH)
		FUZZ_ASSERT(req.content_length > 0 && req.content_length <= (1ull << 53));
	else
		FUZZ_ASSERT(req.content_length == 0);
	if (req.body == WEIR_H1_BODY_CHUNKED)
		FUZZ_ASSERT(req.minor_version == 1);
	for (size_t i = 0; i < req.nheaders; i++) {
		const struct weir_h1_header *h = &req.headers[i];

		in_block(h->name, p, ret);
		in_block(h->value, p, ret);
		FUZZ_ASSERT(h->name.len > 0 && h->name.ptr != NULL);
		FUZZ_ASSERT(memchr(h->name.ptr, ':', h->name.len) == NULL);
		if (h->value.len > 0)
			FUZZ_ASSERT(!is_ows(h->value.ptr[0]) && !is_ows(h->value.ptr[h->value.len - 1]));
		FUZZ_ASSERT(req.kind[i] <= WEIR_H_VIA);
		if (req.body == WEIR_H1_BODY_CHUNKED)
			FUZZ_ASSERT(req.kind[i] != WEIR_H_CONTENT_LENGTH);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	int ret = weir_h1_parse_request(p, size, &req);
	uint64_t h;

	if (ret == WEIR_H1_ERROR) {
		int e = req.error;

		FUZZ_ASSERT(e == 400 || e == 414 || e == 431 || e == 501 || e == 505 || e == 417);
		FUZZ_ASSERT(req.reason != NULL && req.reason[0] != 0);
	} else if (ret != WEIR_H1_NEED_MORE) {
		FUZZ_ASSERT(ret > 0);
		check_ok(p, size, ret);
		/* the block alone parses the same */
		FUZZ_ASSERT(weir_h1_parse_request(p, (size_t)ret, &req2) == ret);
		FUZZ_ASSERT(req2.nheaders == req.nheaders && req2.flags == req.flags &&
			    req2.body == req.body && req2.content_length == req.content_length &&
			    req2.host.ptr == req.host.ptr && req2.host.len == req.host.len &&
			    req2.path.ptr == req.path.ptr && req2.path.len == req.path.len);
		FUZZ_ASSERT(memcmp(req2.kind, req.kind, req.nheaders) == 0);
	}
	/* prefixes: need more, or the same verdict */
	h = fuzz_hash(data, size);
	for (int k = 0; k < 3 && size > 0; k++) {
		size_t n = k == 0 ? size - 1 : (size_t)((h >> (k * 20)) % size);
		int r = weir_h1_parse_request(p, n, &req2);

		FUZZ_ASSERT(r == WEIR_H1_NEED_MORE || r == ret);
		if (r == WEIR_H1_ERROR)
			FUZZ_ASSERT(req2.error == req.error);
	}
	return 0;
}
