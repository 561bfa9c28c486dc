/* HTTP/1.1 codec: request and response head parsing, chunked decoding, field
 * lookup in a parsed head (src/http, include/weir/h1.h). */
#include <stdlib.h>

#include "weir/common.h"
#include "weir/h1.h"
#include "wb.h"

/* A browser-like request (a Chrome fetch of a script): 703 bytes, 14 fields. */
static const char browser_req[] =
	"GET /static/js/app.3f9c2d1e.js?v=20241103 HTTP/1.1\r\n"
	"Host: shop.example.com\r\n"
	"Connection: keep-alive\r\n"
	"sec-ch-ua: \"Chromium\";v=\"130\", \"Google Chrome\";v=\"130\", \"Not?A_Brand\";v=\"99\"\r\n"
	"sec-ch-ua-mobile: ?0\r\n"
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
	"Chrome/130.0.0.0 Safari/537.36\r\n"
	"sec-ch-ua-platform: \"Linux\"\r\n"
	"Accept: */*\r\n"
	"Sec-Fetch-Site: same-origin\r\n"
	"Sec-Fetch-Mode: no-cors\r\n"
	"Sec-Fetch-Dest: script\r\n"
	"Referer: https://shop.example.com/products/garden/tools?page=2\r\n"
	"Accept-Encoding: gzip, deflate, br, zstd\r\n"
	"Accept-Language: en-GB,en;q=0.9,de;q=0.8\r\n"
	"Cookie: session=6f1c0a9e2b7d4c3f8e5a1b0d9c8e7f6a; cart=3; "
	"consent=analytics%3D0%2Cads%3D0; theme=dark; lang=en; ab=7\r\n"
	"\r\n";
_Static_assert(sizeof(browser_req) - 1 == 703, "the browser-like request is 703 bytes");

/* What wrk and most load generators send. */
static const char minimal_req[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

/* An origin's response head: 10 fields. */
static const char origin_res[] =
	"HTTP/1.1 200 OK\r\n"
	"Date: Tue, 05 Nov 2024 10:12:44 GMT\r\n"
	"Server: origin/1.0\r\n"
	"Content-Type: application/javascript; charset=utf-8\r\n"
	"Content-Length: 48213\r\n"
	"Cache-Control: public, max-age=31536000, immutable\r\n"
	"ETag: \"5f2a-19c3e8b0d21\"\r\n"
	"Last-Modified: Sun, 03 Nov 2024 08:00:00 GMT\r\n"
	"Vary: Accept-Encoding\r\n"
	"Connection: keep-alive\r\n"
	"\r\n";

static void parse_request(struct wb *b, const char *buf, size_t len)
{
	static struct weir_h1_request req;

	if (weir_h1_parse_request(buf, len, &req) != (int)len) {
		wb_fail(b, "request did not parse: %s", req.reason);
		return;
	}
	wb_set_bytes(b, len);
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		wb_clobber();
		wb_sink((uint64_t)weir_h1_parse_request(buf, len, &req));
	}
}

WB_BENCH(h1_request_browser)
{
	parse_request(b, browser_req, sizeof(browser_req) - 1);
}

WB_BENCH(h1_request_minimal)
{
	parse_request(b, minimal_req, sizeof(minimal_req) - 1);
}

WB_BENCH(h1_response)
{
	static struct weir_h1_response res;
	size_t len = sizeof(origin_res) - 1;

	if (weir_h1_parse_response(origin_res, len, false, &res) != (int)len) {
		wb_fail(b, "response did not parse: %s", res.reason);
		return;
	}
	wb_set_bytes(b, len);
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		wb_clobber();
		wb_sink((uint64_t)weir_h1_parse_response(origin_res, len, false, &res));
	}
}

/* A chunked body of b->arg data bytes in 4 KiB chunks (weir-origin's default
 * chunk size), decoded whole each time, with the 16 spans weir passes. */
WB_BENCH_ARGS(chunked_decode, 1024, 4096, 16384, 65536)
{
	static char *enc;
	static size_t enc_len;
	static uint64_t enc_for;
	uint64_t size = b->arg;

	if (enc_for != size) {
		size_t cap = size + (size / 4096 + 2) * 16 + 8, off = 0;

		free(enc);
		enc = malloc(cap);
		if (enc == NULL) {
			wb_fail(b, "out of memory");
			return;
		}
		for (uint64_t left = size; left > 0;) {
			size_t c = left < 4096 ? (size_t)left : 4096;

			off += (size_t)snprintf(enc + off, cap - off, "%zx\r\n", c);
			memset(enc + off, 'x', c);
			off += c;
			memcpy(enc + off, "\r\n", 2);
			off += 2;
			left -= c;
		}
		memcpy(enc + off, "0\r\n\r\n", 5);
		enc_len = off + 5;
		enc_for = size;
	}
	wb_set_bytes(b, size);
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		struct weir_chunked d;
		size_t off = 0, data = 0;

		weir_chunked_init(&d);
		wb_clobber();
		while (!d.done) {
			weir_slice_t spans[16];
			size_t ns = 16;
			ssize_t used = weir_chunked_decode(&d, enc + off, enc_len - off, spans, &ns);

			if (used < 0 || (used == 0 && !d.done)) {
				wb_fail(b, "chunked body did not decode");
				return;
			}
			off += (size_t)used;
			for (size_t s = 0; s < ns; s++)
				data += spans[s].len;
		}
		if (data != size) {
			wb_fail(b, "decoded %zu bytes, expected %zu", data, (size_t)size);
			return;
		}
		wb_sink(data);
	}
}

/* Field lookup by name in a parsed head. weir has no lookup function of its
 * own yet (the parser classifies the fields it needs while parsing); this is
 * the scan a module would write with the common.h helpers: case-insensitive,
 * last occurrence wins. Replace it with the real API when one lands. */
static int find_field(const struct weir_h1_request *req, const char *name, size_t len)
{
	for (size_t i = req->nheaders; i-- > 0;)
		if (weir_slice_ieq(req->headers[i].name, name, len))
			return (int)i;
	return -1;
}

static void lookup(struct wb *b, const char *name, int expect)
{
	static struct weir_h1_request req;
	size_t len = strlen(name);

	weir_h1_parse_request(browser_req, sizeof(browser_req) - 1, &req);
	if ((find_field(&req, name, len) >= 0) != (expect >= 0)) {
		wb_fail(b, "lookup of %s: unexpected result", name);
		return;
	}
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		wb_clobber();
		wb_sink((uint64_t)find_field(&req, name, len));
	}
}

/* "user-agent" is the 5th of 14 fields (scanned from the end: 10 compares). */
WB_BENCH(header_lookup_hit)
{
	lookup(b, "user-agent", 1);
}

/* A miss scans all 14. */
WB_BENCH(header_lookup_miss)
{
	lookup(b, "x-request-id", -1);
}
