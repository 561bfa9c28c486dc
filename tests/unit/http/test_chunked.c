/* Chunked decoder: valid bodies decoded one-shot, split at every offset,
 * byte by byte and with a one-span array give the same data and consumed
 * length; errors are errors however the input is split; limits. */
#include <stdlib.h>

#include "check.h"
#include "weir/h1.h"

struct ccase {
	const char *raw;
	size_t len;
	const char *data;       /* decoded data; NULL: a framing error */
	size_t consumed;        /* 0: the whole input */
};
#define OK(s, d) { (s), sizeof(s) - 1, (d), 0 }
#define OKN(s, d, n) { (s), sizeof(s) - 1, (d), (n) }
#define BAD(s) { (s), sizeof(s) - 1, NULL, 0 }

static const struct ccase cases[] = {
	/* REQ-CHUNK-HEX REQ-CHUNK-EXT REQ-CHUNK-WS REQ-CHUNK-TRAILER */
	OK("0\r\n\r\n", ""),
	OK("5\r\nhello\r\n0\r\n\r\n", "hello"),
	OK("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"),
	OK("a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij"),
	OK("00005\r\nhello\r\n000\r\n\r\n", "hello"),
	OK("1\r\n\r\r\n1\r\n\n\r\n0\r\n\r\n", "\r\n"),
	OK("5;a=b\r\nhello\r\n0;last\r\n\r\n", "hello"),
	OK("5 ;a\r\nhello\r\n0\r\n\r\n", "hello"),
	OK("5\t; a = b ; c=\"q\\\"u;o\\\\te\" ;d\t\r\nhello\r\n0\r\n\r\n", "hello"),
	OK("5;a=\"\"\r\nhello\r\n0\r\n\r\n", "hello"),
	OK("5;a=\"\x80\t\"\r\nhello\r\n0\r\n\r\n", "hello"),
	OK("0\r\nX-Trailer: v\r\nY:\r\nZ: a \t b\x80\r\n\r\n", ""),
	OKN("3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "abc", 13),
	OKN("0\r\n\r\n0\r\n\r\n", "", 5),
	/* errors: REQ-CHUNK-SYNTAX REQ-CHUNK-WS REQ-CHUNK-LF REQ-CHUNK-CR REQ-CHUNK-DATA
	 * REQ-CHUNK-OVERFLOW REQ-CHUNK-EXT-BAD REQ-CHUNK-TRAILER-BAD */
	BAD("\r\n"),
	BAD("zz\r\nhello\r\n0\r\n\r\n"),
	BAD("-1\r\nhello\r\n0\r\n\r\n"),
	BAD("+5\r\nhello\r\n0\r\n\r\n"),
	BAD("0x5\r\nhello\r\n0\r\n\r\n"),
	BAD(" 5\r\nhello\r\n0\r\n\r\n"),
	BAD("5 \r\nhello\r\n0\r\n\r\n"),
	BAD("5\nhello\r\n0\r\n\r\n"),
	BAD("5\r\r\nhello\r\n0\r\n\r\n"),
	BAD("5\r\nhelloXX0\r\n\r\n"),
	BAD("5\r\nhello\n0\r\n\r\n"),
	BAD("5\r\nhello\rX0\r\n\r\n"),
	BAD("5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n"),
	BAD("5\r\nhello\r\n\r\n"),
	BAD("ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
	BAD("20000000000001\r\n"),
	BAD("5;\r\nhello\r\n0\r\n\r\n"),
	BAD("5;=b\r\nhello\r\n0\r\n\r\n"),
	BAD("5;a=\r\nhello\r\n0\r\n\r\n"),
	BAD("5;a b\r\nhello\r\n0\r\n\r\n"),
	BAD("5;a=b c\r\nhello\r\n0\r\n\r\n"),
	BAD("5;a=\"b\r\nhello\r\n0\r\n\r\n"),
	BAD("5;a=\"b\x01\"\r\nhello\r\n0\r\n\r\n"),
	BAD("5;a=b\"\r\nhello\r\n0\r\n\r\n"),
	BAD("5;a=\"b\"c\r\nhello\r\n0\r\n\r\n"),
	BAD("5;a@\r\nhello\r\n0\r\n\r\n"),
	BAD("5;a\n\r\nhello\r\n0\r\n\r\n"),
	BAD("0\r\n\n"),
	BAD("0\r\n\r\r"),
	BAD("0\r\n\rX"),
	BAD("0\r\n X: y\r\n\r\n"),
	BAD("0\r\nX-T: v\r\n\tw\r\n\r\n"),
	BAD("0\r\nX : y\r\n\r\n"),
	BAD("0\r\n: y\r\n\r\n"),
	BAD("0\r\nX\r\n\r\n"),
	BAD("0\r\nX: a\nb\r\n\r\n"),
	BAD("0\r\nX: a\x01\r\n\r\n"),
	BAD("0\r\nX: a\r\r\n"),
	BAD("0\r\nX\x80: a\r\n\r\n"),
};

struct result {
	char *data;
	size_t dlen;
	size_t consumed;
	bool done;
	bool error;
};

/* Feeds the input in pieces cut at cuts[0..ncuts) (sorted), with a spans
 * array of cap entries, until done, error or the input is used up. */
static void decode(const char *p, size_t len, const size_t *cuts, size_t ncuts, size_t cap,
		   struct result *r)
{
	struct weir_chunked d;
	weir_slice_t spans[8];
	size_t start = 0;

	weir_chunked_init(&d);
	memset(r, 0, sizeof(*r));
	r->data = malloc(len + 1);
	for (size_t k = 0; k <= ncuts && !r->done && !r->error; k++) {
		size_t stop = k < ncuts ? cuts[k] : len;
		size_t off = start;

		while (off < stop) {
			size_t ns = cap;
			ssize_t n = weir_chunked_decode(&d, p + off, stop - off, spans, &ns);

			if (n < 0) {
				r->error = true;
				break;
			}
			CHECK(ns <= cap);
			for (size_t i = 0; i < ns; i++) {
				CHECK(spans[i].ptr >= p + off && spans[i].len > 0 &&
				      spans[i].ptr + spans[i].len <= p + off + (size_t)n);
				memcpy(r->data + r->dlen, spans[i].ptr, spans[i].len);
				r->dlen += spans[i].len;
			}
			off += (size_t)n;
			r->consumed += (size_t)n;
			if (d.done) {
				r->done = true;
				break;
			}
			if (n == 0) {
				fprintf(stderr, "no progress at offset %zu of \"%s\"\n", off,
					show(p, len));
				failures++;
				r->error = true;
				break;
			}
		}
		start = stop;
	}
}

static bool same(const struct result *a, const struct result *b)
{
	return a->error == b->error && a->done == b->done &&
	       (a->error || (a->consumed == b->consumed && a->dlen == b->dlen &&
			     memcmp(a->data, b->data, a->dlen) == 0));
}

static void check_case(size_t idx, const struct ccase *c)
{
	char *p = malloc(c->len + 1);
	struct result one, other;
	size_t *cuts = malloc((c->len + 1) * sizeof(*cuts));

	memcpy(p, c->raw, c->len);
	decode(p, c->len, NULL, 0, 8, &one);
	if (c->data == NULL) {
		if (!one.error) {
			fprintf(stderr, "case %zu \"%s\": no error\n", idx, show(c->raw, c->len));
			failures++;
		}
	} else {
		size_t want = c->consumed ? c->consumed : c->len;

		if (one.error || !one.done || one.consumed != want || one.dlen != strlen(c->data) ||
		    memcmp(one.data, c->data, one.dlen) != 0) {
			fprintf(stderr, "case %zu \"%s\": error %d done %d consumed %zu data \"%s\"\n",
				idx, show(c->raw, c->len), one.error, one.done, one.consumed,
				show(one.data, one.dlen));
			failures++;
		}
	}
	/* split in two at every offset */
	for (size_t cut = 0; cut <= c->len; cut++) {
		decode(p, c->len, &cut, 1, 8, &other);
		if (!same(&one, &other)) {
			fprintf(stderr, "case %zu \"%s\": differs when cut at %zu\n", idx,
				show(c->raw, c->len), cut);
			failures++;
		}
		free(other.data);
	}
	/* byte by byte, and with a single span slot */
	for (size_t i = 0; i < c->len; i++)
		cuts[i] = i + 1;
	decode(p, c->len, cuts, c->len, 8, &other);
	CHECK(same(&one, &other));
	free(other.data);
	decode(p, c->len, NULL, 0, 1, &other);
	CHECK(same(&one, &other));
	free(other.data);
	decode(p, c->len, cuts, c->len, 1, &other);
	CHECK(same(&one, &other));
	free(other.data);
	free(one.data);
	free(cuts);
	free(p);
}

static void test_state(void)
{
	struct weir_chunked d;
	weir_slice_t spans[4];
	size_t ns = 4;
	static const char big[] = "20000000000000\r\nabc";

	/* a 2^53-byte chunk is accepted, and its data is counted down */
	weir_chunked_init(&d);
	CHECK_INT(weir_chunked_decode(&d, big, sizeof(big) - 1, spans, &ns), sizeof(big) - 1, "big");
	CHECK_INT(ns, 1, "one span");
	CHECK(d.remaining == (1ull << 53) - 3);
	CHECK(!d.done);

	/* after done, nothing more is consumed; after an error, errors */
	weir_chunked_init(&d);
	ns = 4;
	CHECK_INT(weir_chunked_decode(&d, "0\r\n\r\n", 5, spans, &ns), 5, "last chunk");
	CHECK(d.done);
	ns = 4;
	CHECK_INT(weir_chunked_decode(&d, "5\r\n", 3, spans, &ns), 0, "after done");
	CHECK_INT(ns, 0, "no spans after done");
	weir_chunked_init(&d);
	ns = 4;
	CHECK_INT(weir_chunked_decode(&d, "x", 1, spans, &ns), -1, "error");
	ns = 4;
	CHECK_INT(weir_chunked_decode(&d, "0\r\n\r\n", 5, spans, &ns), -1, "sticky error");

	/* a full spans array stops the decoder before the next data */
	weir_chunked_init(&d);
	ns = 1;
	CHECK_INT(weir_chunked_decode(&d, "1\r\na\r\n1\r\nb\r\n", 12, spans, &ns), 9, "spans full");
	CHECK_INT(ns, 1, "one span stored");
	CHECK_SLICE(spans[0], "a");
	ns = 0;
	CHECK_INT(weir_chunked_decode(&d, "b\r\n", 3, spans, &ns), 0, "no span room");
	ns = 1;
	CHECK_INT(weir_chunked_decode(&d, "b\r\n", 3, spans, &ns), 3, "resumed");
	CHECK_SLICE(spans[0], "b");
	CHECK(!d.done);
	/* empty input */
	ns = 1;
	CHECK_INT(weir_chunked_decode(&d, "", 0, spans, &ns), 0, "empty");
}

static void test_limits(void)
{
	char *p = malloc(40000);
	struct result r;
	size_t n;

	/* REQ-CHUNK-EXT-BAD: size line with extensions: 4096 bytes including
	 * the CRLF is fine */
	n = 0;
	p[n++] = '1';
	p[n++] = ';';
	memset(p + n, 'e', 4096 - 4);
	n += 4096 - 4;
	memcpy(p + n, "\r\nx\r\n0\r\n\r\n", 10);
	n += 10;
	decode(p, n, NULL, 0, 8, &r);
	CHECK(r.done && !r.error && r.dlen == 1);
	free(r.data);
	p[2] = 'e';
	memmove(p + 3, p + 2, n - 2);
	n++;
	decode(p, n, NULL, 0, 8, &r);
	CHECK(r.error);
	free(r.data);
	/* ... also for a size line of leading zeros */
	memset(p, '0', 5000);
	decode(p, 5000, NULL, 0, 8, &r);
	CHECK(r.error);
	free(r.data);

	/* REQ-CHUNK-LIMIT: trailer section: 16384 bytes including the final
	 * CRLF is fine */
	memcpy(p, "0\r\nX: ", 6);
	n = 6;
	memset(p + n, 'v', 16384 - 7);
	n += 16384 - 7;
	memcpy(p + n, "\r\n\r\n", 4);
	n += 4;
	decode(p, n, NULL, 0, 8, &r);
	CHECK(r.done && !r.error && r.consumed == n);
	free(r.data);
	memcpy(p + n - 4, "v\r\n\r\n", 5);
	n++;
	decode(p, n, NULL, 0, 8, &r);
	CHECK(r.error);
	free(r.data);
	free(p);
}

int main(void)
{
	for (size_t i = 0; i < WEIR_ARRAY_SIZE(cases); i++)
		check_case(i, &cases[i]);
	test_state();
	test_limits();
	return report("chunked");
}
