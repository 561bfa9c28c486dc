/* Heads weir writes (src/proxy/msg.c): one heap block each, so these show
 * the allocation counters at work (1 allocation per operation). */
#include "weir/alloc.h"
#include "weir/h1.h"
#include "weir/proxy.h"
#include "wb.h"

static const char req_text[] =
	"GET /static/js/app.3f9c2d1e.js?v=20241103 HTTP/1.1\r\n"
	"Host: shop.example.com\r\n"
	"Connection: keep-alive\r\n"
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
	"Chrome/130.0.0.0 Safari/537.36\r\n"
	"Accept: */*\r\n"
	"Referer: https://shop.example.com/products/garden/tools?page=2\r\n"
	"Accept-Encoding: gzip, deflate, br, zstd\r\n"
	"Accept-Language: en-GB,en;q=0.9,de;q=0.8\r\n"
	"Cookie: session=6f1c0a9e2b7d4c3f8e5a1b0d9c8e7f6a; cart=3\r\n"
	"\r\n";

static const char res_text[] = "HTTP/1.1 200 OK\r\n"
			       "Content-Type: application/octet-stream\r\n"
			       "Content-Length: 16384\r\n"
			       "X-Origin-Conn: 17\r\n"
			       "\r\n";

/* The upstream request head for a parsed browser request (hop-by-hop fields
 * dropped, X-Forwarded-For/Proto and Via added). */
WB_BENCH(msg_request_head)
{
	static struct weir_h1_request req;
	uint32_t len;

	if (weir_h1_parse_request(req_text, sizeof(req_text) - 1, &req) <= 0) {
		wb_fail(b, "request did not parse: %s", req.reason);
		return;
	}
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		char *h = weir__build_request_head(&req, "192.0.2.44", WEIR_FRAME_NONE, 0, &len);

		wb_sink(len);
		weir_free(h);
	}
}

/* The client response head for a parsed origin response. */
WB_BENCH(msg_response_head)
{
	static struct weir_h1_response res;
	uint32_t len;

	if (weir_h1_parse_response(res_text, sizeof(res_text) - 1, false, &res) <= 0) {
		wb_fail(b, "response did not parse: %s", res.reason);
		return;
	}
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		char *h = weir__build_response_head(&res, 1, false, WEIR_FRAME_LENGTH, false, &len);

		wb_sink(len);
		weir_free(h);
	}
}
